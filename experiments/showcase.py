"""The README's showcase sheets: a ghost wardrobe of CGAN on Fashion-MNIST (and MNIST), and the
comparison of dcgan / cgan / vae on both datasets with the same noise.

    python experiments/showcase.py [--epochs 1]

Trains the six runs it needs (or reuses finished ones in experiments/out/showcase-runs with the same
epochs), then writes samples/wardrobe-cgan-fashion-mnist.png, samples/wardrobe-cgan-mnist.png,
samples/interpolate-cgan-fashion-mnist.png and samples/comparison.png, replacing the committed
copies (git keeps the old ones). Prints settings and wall time.

On this 2-core CPU the default (1 epoch per run) took 17 minutes. A GPU user should use the
collections' settings instead: --epochs 25 (DCGAN/CGAN) and the VAE's default 20.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from gan_lab import runs, runtime, sheets

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "experiments" / "out" / "showcase-runs"
SAMPLES = ROOT / "samples"
MODELS = ("dcgan", "cgan", "vae")
DATASETS = ("mnist", "fashion-mnist")


def main() -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the sheets")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"settings: models {', '.join(MODELS)} on {', '.join(DATASETS)}, {args.epochs} epochs each, "
          f"paper hyper-parameters (batch 64 GANs / 128 VAE), full width; runs in {RUNS}")

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        trained = runs.find_or_train(MODELS, DATASETS, RUNS, {"epochs": args.epochs}, data_dir=args.data_dir)
        made = {"comparison.png": sheets.compare(trained, MODELS, DATASETS, scratch / "comparison.png",
                                                 data_dir=args.data_dir, seed=args.seed)}
        for dataset in DATASETS:
            made[f"wardrobe-cgan-{dataset}.png"] = sheets.wardrobe(trained[("cgan", dataset)], args.seed,
                                                                   out=scratch / f"w-{dataset}.png")
        made["interpolate-cgan-fashion-mnist.png"] = sheets.interpolation(trained[("cgan", "fashion-mnist")], args.seed,
                                                                          out=scratch / "i.png")
        SAMPLES.mkdir(exist_ok=True)
        for name, path in made.items():
            shutil.copyfile(path, SAMPLES / name)
            print(f"wrote samples/{name}")
    print(f"wall time: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
