"""How long a run will take on this machine, from a short measured probe, before it starts.

`python -m core probe --arch ...` builds the run's model and times a few dozen training steps on
random digits of the right shape (`probe`); the result is kept per settings in the cache folder,
so the Train page measures each architecture once and then answers at once (`estimate_seconds`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from core import models, paths

PROBES_FILE = "probes.json"
WARMUP_STEPS = 4  # graph tracing and first-touch costs: not training speed
TIMED_STEPS = 16
START_UP_S = 12.0  # a job's own start: Python, TensorFlow, data, graph (measured by the probe too)
# Raised when training gets faster or slower (2: the fused batch norm and the tf.data feed), so a
# probe kept from before is measured again instead of answering with the old speed.
PROBE_VERSION = 2


def probe_key(settings: dict) -> str:
    """What changes the speed: architecture, batch size, augmentation, and the machine's cores."""
    arch = models.get_architecture(settings["arch"])
    if arch.kind != models.KERAS:
        return f"{arch.name}|cpus={os.cpu_count()}"
    return (f"{arch.name}|batch={int(settings['batch_size'])}|augment={bool(settings.get('augment'))}"
            f"|cpus={os.cpu_count()}|v{PROBE_VERSION}")


def _cache() -> Path:
    return paths.cache_dir() / PROBES_FILE


def cached_probes() -> dict:
    """Every probe measured on this install (a damaged file counts as none)."""
    try:
        found = json.loads(_cache().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def cached_probe(settings: dict) -> dict | None:
    """The probe measured for these settings, if any: `{"images_per_s", "start_up_s", "param_count"}`."""
    found = cached_probes().get(probe_key(settings))
    return found if isinstance(found, dict) and found.get("images_per_s") else None


def measured_busy(measured: dict) -> bool:
    """Whether a probe ran while other work kept every core busy (its speed is then too low)."""
    return float(measured.get("load") or 0.0) >= (os.cpu_count() or 1)


def forget(settings: dict) -> None:
    """Drop the probe of these settings (the page measures again)."""
    probes = cached_probes()
    if probes.pop(probe_key(settings), None) is not None:
        paths.write_atomic(_cache(), json.dumps(probes, indent=1).encode())


def remember(settings: dict, result: dict) -> None:
    probes = cached_probes()
    probes[probe_key(settings)] = result
    paths.write_atomic(_cache(), json.dumps(probes, indent=1).encode())


def probe(settings: dict, *, steps: int = TIMED_STEPS) -> dict:
    """Time `steps` training steps of the run's compiled model (job side: imports TensorFlow)."""
    import keras

    from core import training

    t0 = time.perf_counter()
    load = os.getloadavg()[0]  # other work slows the probe: the page says so when it was busy
    batch = int(settings["batch_size"])
    n = batch * (WARMUP_STEPS + steps)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
    model = training.compiled_model(settings, steps_per_epoch=WARMUP_STEPS + steps)
    marks: list[float] = []
    def mark(*_, **__) -> None:
        marks.append(time.perf_counter())

    timer = keras.callbacks.LambdaCallback(on_train_batch_end=mark)
    model.fit(training.batches(x, training.targets(y, settings), batch), epochs=1, verbose=0,
              shuffle=False, callbacks=[timer])  # the feed a job uses
    timed = marks[-1] - marks[WARMUP_STEPS - 1]
    return {"images_per_s": round(batch * steps / timed, 1),
            "start_up_s": round(marks[WARMUP_STEPS - 1] - t0, 2), "param_count": int(model.count_params()),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": round(load, 2)}


def start_probe(settings: dict) -> subprocess.Popen:
    """Measure these settings in a child process (`python -m core probe`), which remembers the result."""
    cmd = [sys.executable, "-m", "core", "probe", "--arch", settings["arch"], "--batch-size",
           str(int(settings["batch_size"])), "--augment", "on" if settings.get("augment") else "off"]
    proc = subprocess.Popen(cmd, cwd=paths.ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=proc.wait, name="reap-probe", daemon=True).start()  # no zombie left behind
    return proc


def estimate_seconds(settings: dict, n_train: int, n_val: int, measured: dict) -> float:
    """Seconds a Keras run of these settings takes on `n_train` digits: its epochs at the probed
    speed, validation at about three times that (no gradients, no augmentation), and start-up."""
    ips = float(measured["images_per_s"])
    epochs = int(settings["epochs"])
    batches = math.ceil(n_train / int(settings["batch_size"])) * int(settings["batch_size"])
    return epochs * (batches / ips + n_val / (3 * ips)) + START_UP_S
