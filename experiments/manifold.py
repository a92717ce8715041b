"""The 2-D latent manifold of a VAE on MNIST (Kingma & Welling 2014, fig. 4; the TF collection's
VAE picture): train `vae --z-dim 2`, then draw `sample --sheet manifold` into samples/.

    python experiments/manifold.py [--epochs 10] [--dataset mnist]

Resumable: the run lives in runs/manifold-vae-<dataset>; run the script again to continue it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gan_lab import config, runs, runtime, sheets

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"


def main() -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    run_dir = Path("runs") / f"manifold-vae-{args.dataset}"
    cfg = config.make_config("vae", {"dataset": args.dataset, "z_dim": 2, "epochs": args.epochs})
    try:
        if (run_dir / "config.json").exists():
            runs.train_run(runs.resume_config(run_dir, {"epochs": args.epochs}), data_dir=args.data_dir,
                           resume=run_dir)
        else:
            runs.train_run(cfg, out=run_dir, data_dir=args.data_dir)
    except runs.NothingToTrain as done:
        print(done)
    with tempfile.TemporaryDirectory() as scratch:
        made = sheets.manifold(run_dir, out=Path(scratch) / "manifold.png")
        SAMPLES.mkdir(exist_ok=True)
        shutil.copyfile(made, SAMPLES / f"manifold-vae-{args.dataset}.png")
    print(f"wrote samples/manifold-vae-{args.dataset}.png ({runs.load_trained(run_dir).describe()}); "
          f"wall time {(time.perf_counter() - started) / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
