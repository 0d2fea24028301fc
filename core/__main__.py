"""Entry point for `python -m core`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users

from core.cli import main

sys.exit(main())
