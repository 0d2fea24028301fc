"""Entry point for `python -m core`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for users

from core.cli import main  # noqa: E402 - the environment must be set before TensorFlow loads

code = main()
sys.stdout.flush()
sys.stderr.flush()
# Skip interpreter teardown: TensorFlow's threads occasionally abort it ("terminate called without
# an active exception") after all output is written, turning a success into exit code -6.
os._exit(code)
