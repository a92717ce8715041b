"""Times the README's quick-start command and keeps its grid as the README's picture.

    python experiments/quickstart.py

Runs `python -m gan_lab train dcgan --epochs 1` (exactly the README's command, into a scratch run
directory), prints the wall time, copies the run's epoch-1 grid to samples/quickstart-dcgan-fashion-mnist.png
and writes experiments/results/quickstart-<cpu vendor>.md. Waits for the machine to be idle first.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_field, cpu_model, publish, vendor_results, wait_for_idle  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "samples" / "quickstart-dcgan-fashion-mnist.png"


def main() -> None:
    idle = wait_for_idle(timeout=600)
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        command = [sys.executable, "-m", "gan_lab", "train", "dcgan", "--epochs", "1", "--out", str(run_dir)]
        # A new user's first run compiles everything: an empty compilation cache, not this machine's.
        cold = {**os.environ, "GAN_LAB_COMPILE_CACHE": str(Path(scratch) / "xla")}
        cold.pop("JAX_COMPILATION_CACHE_DIR", None)
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, env=cold)
        minutes = (time.perf_counter() - started) / 60
        PICTURE.parent.mkdir(exist_ok=True)
        shutil.copyfile(run_dir / "samples" / "epoch_001.png", PICTURE)
    machine = "idle before the run" if idle["idle"] else f"NOT idle: {idle['busy_before']:.2f} cores busy before the run"
    text = (f"`python -m gan_lab train dcgan --epochs 1` took {minutes:.1f} min wall time "
            f"(compile, data loading and 937 steps at batch 64) on {os.cpu_count()} cores of an {cpu_model()} "
            f"(family {cpu_field('cpu family') or '?'} model {cpu_field('model') or '?'}), "
            f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {machine}; grid: {PICTURE.relative_to(ROOT)}\n")
    publish(text, vendor_results("quickstart"))


if __name__ == "__main__":
    main()
