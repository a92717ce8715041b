"""The README's showcase sheets: a ghost wardrobe of CGAN on Fashion-MNIST (and MNIST), and the
comparison of dcgan / cgan / vae on both datasets with the same noise.

    python experiments/showcase.py [--epochs 1]
    python experiments/showcase.py --full      # the collections' setting: hours on a CPU, resumable

Trains the runs it needs (or reuses finished ones in experiments/out/showcase-runs with the same
settings, and continues ones a kill or a session's end cut short), then writes
samples/wardrobe-cgan-fashion-mnist.png, samples/wardrobe-cgan-mnist.png,
samples/interpolate-cgan-fashion-mnist.png and samples/comparison.png, replacing the committed
copies (git keeps the old ones). Prints settings, each run's training time and the wall time.

On this 2-core CPU the default (dcgan, cgan and vae, 1 epoch per run) took 17 minutes. --full trains
cgan and dcgan at the collections' setting: full width, 25 epochs on MNIST and 40 on Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from gan_lab import runs, runtime, sheets, study

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "experiments" / "out" / "showcase-runs"
SAMPLES = ROOT / "samples"
MODELS = ("dcgan", "cgan", "vae")
DATASETS = ("mnist", "fashion-mnist")
FULL_MODELS = ("cgan", "dcgan")  # the wardrobe's model first
FULL_EPOCHS = {"fashion-mnist": 40, "mnist": 25}  # the collections' setting; Fashion-MNIST first


def main() -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="cgan and dcgan at 25 (MNIST) / 40 (Fashion-MNIST) epochs")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the sheets")
    args = parser.parse_args()
    started = time.perf_counter()
    models = FULL_MODELS if args.full else MODELS
    epochs = FULL_EPOCHS if args.full else {dataset: args.epochs for dataset in DATASETS}
    print(f"settings: models {', '.join(models)}, epochs {epochs}, paper hyper-parameters (batch 64 GANs / 128 VAE), "
          f"full width; runs in {RUNS}")

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        trained = {}
        for dataset, dataset_epochs in epochs.items():
            trained.update(runs.find_or_train(models, [dataset], RUNS, {"epochs": dataset_epochs}, data_dir=args.data_dir))
        for (model, dataset), run_dir in trained.items():
            seconds, sessions = study.training_seconds(run_dir)
            print(f"{model} on {dataset}: {epochs[dataset]} epochs, trained in {seconds / 60:.1f} min "
                  f"({sessions} session{'s' if sessions > 1 else ''}): {run_dir}")
        made = {"comparison.png": sheets.compare(trained, models, DATASETS, scratch / "comparison.png",
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
