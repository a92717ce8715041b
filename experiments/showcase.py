"""The README's showcase sheets: a ghost wardrobe of CGAN on Fashion-MNIST (and MNIST), and the
comparison of dcgan / cgan / vae on both datasets with the same noise.

    python experiments/showcase.py [--epochs 1]
    python experiments/showcase.py --full      # the collections' setting: hours on a CPU, resumable

Trains the runs it needs (or reuses finished ones in experiments/out/showcase-runs with the same
settings, and continues ones a kill or a session's end cut short), then writes
samples/wardrobe-cgan-fashion-mnist.png, samples/wardrobe-cgan-mnist.png,
samples/interpolate-cgan-fashion-mnist.png and samples/comparison.png, replacing the committed
copies (git keeps the old ones), each as soon as the runs it is drawn from are done, and records in
experiments/results/showcase.md what made each picture (setting, training time) and how
good its runs are (`gan_lab eval`: FD, precision, recall, class coverage). Prints settings,
each run's training time and the wall time.

On this 2-core CPU the default (dcgan, cgan and vae, 1 epoch per run) took 17 minutes before
the script scored its runs. --full trains cgan and dcgan at the collections' setting: full width,
25 epochs on MNIST and 40 on Fashion-MNIST; once they were trained, scoring the four runs and
redrawing the sheets took 1.0 min.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gan_lab import cli, config, runs, runtime, sheets, study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_field, cpu_model  # noqa: E402  (beside this script)
from docs_sync import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "experiments" / "results" / "showcase.md"
RUNS = ROOT / "experiments" / "out" / "showcase-runs"
SAMPLES = ROOT / "samples"
MODELS = ("dcgan", "cgan", "vae")
DATASETS = ("mnist", "fashion-mnist")
FULL_MODELS = ("cgan", "dcgan")  # the wardrobes' model first
FULL_EPOCHS = {"fashion-mnist": 40, "mnist": 25}  # the collections' setting


def sheet_makers(models, args) -> list[tuple[str, list[tuple[str, str]], object]]:
    """(picture, the (model, dataset) runs it is drawn from, draw(trained runs, out path))."""
    return [
        ("wardrobe-cgan-fashion-mnist.png", [("cgan", "fashion-mnist")],
         lambda trained, out: sheets.wardrobe(trained[("cgan", "fashion-mnist")], args.seed, out=out)),
        ("interpolate-cgan-fashion-mnist.png", [("cgan", "fashion-mnist")],
         lambda trained, out: sheets.interpolation(trained[("cgan", "fashion-mnist")], args.seed, out=out)),
        ("wardrobe-cgan-mnist.png", [("cgan", "mnist")],
         lambda trained, out: sheets.wardrobe(trained[("cgan", "mnist")], args.seed, out=out)),
        ("comparison.png", [(model, dataset) for dataset in DATASETS for model in models],
         lambda trained, out: sheets.compare(trained, models, DATASETS, out, data_dir=args.data_dir, seed=args.seed)),
    ]


@functools.lru_cache(maxsize=None)
def quality(run_dir: Path, data_dir) -> str:
    """The run's scores as `python -m gan_lab eval RUN_DIR` gives them (10,000 samples, noise seed 0,
    against the 10,000 test images; also saved in RUN_DIR/metrics.json)."""
    results, _ = runs.evaluate_run(run_dir, data_dir=data_dir)
    return (f"FD {results['fd']:.1f}, precision {results['precision']:.2f}, recall {results['recall']:.2f}, class "
            f"coverage {results['class_coverage']:.2f} (`gan_lab eval`: {results['n_generated']:,} samples vs the "
            f"test set, evaluator {results['evaluator']})")


def run_line(model: str, dataset: str, run_dir: Path, data_dir=None) -> str:
    """What made a run: its setting, the training time it took here and its scores."""
    cfg = config.load(run_dir / "config.json")
    seconds, sessions = study.training_seconds(run_dir)
    width = cfg.settings.get("width")
    # Wall time counts stretches when the run was paused or shared the machine; the median logged rate
    # does not, so it says what an epoch takes here at full speed.
    rate = statistics.median(r["steps_per_sec"] for r in runs.read_metrics(run_dir) if "steps_per_sec" in r)
    epoch_steps = config.steps_per_epoch(cfg)
    return (f"{model} on {dataset}: {cfg.epochs} epochs, batch {cfg.batch_size}"
            f"{f', width {width:g}' if width is not None else ''}, seed {cfg.seed}; {seconds / 60:.1f} min of wall "
            f"time in {sessions} session{'s' if sessions > 1 else ''}; median rate {rate:.2f} steps/s, i.e. "
            f"{epoch_steps / rate / 60:.1f} min per epoch of {epoch_steps} steps and {cfg.epochs * epoch_steps / rate / 3600:.1f} h "
            f"for the run; {quality(run_dir, data_dir)}; {os.path.relpath(run_dir, ROOT)}")


def write_record(made: dict, pending: list[str], trained: dict, full: bool, data_dir=None) -> None:
    """experiments/results/showcase.md: each picture with the runs it was drawn from, rewritten as
    each picture is made (a session's end between two pictures keeps the record of the first)."""
    lines = ["# The showcase pictures (README and docs/results.md)", "",
             f"Made by `python experiments/showcase.py{' --full' if full else ''}` on {cpu_model()} (family "
             f"{cpu_field('cpu family') or '?'} model {cpu_field('model') or '?'}, {os.cpu_count()} cores), "
             f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}. Wall time adds up each run's training "
             "sessions; it includes stretches when the run was paused (SIGSTOP) or shared the machine with benchmarks "
             "and tests, which the median logged rate leaves out.", ""]
    for name, needs in made.items():
        lines += [f"- `samples/{name}`:", *[f"  - {run_line(model, dataset, trained[(model, dataset)], data_dir)}"
                                          for model, dataset in needs]]
    lines += [f"- `samples/{name}`: not yet made in this setting (its runs are still training)" for name in pending]
    write_result(RECORD, "\n".join(lines) + "\n")


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

    makers, trained, made = sheet_makers(models, args), {}, {}
    SAMPLES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        # One run at a time, model by model, so each picture appears as soon as its runs are done: in
        # --full that is hours per run, and both wardrobes need only the first model.
        for model in models:
            for dataset, dataset_epochs in epochs.items():
                trained.update(runs.find_or_train([model], [dataset], RUNS, {"epochs": dataset_epochs},
                                                  data_dir=args.data_dir))
                print(run_line(model, dataset, trained[(model, dataset)], args.data_dir))
                for name, needs, draw in makers:
                    if name not in made and all(run in trained for run in needs):
                        shutil.copyfile(draw(trained, Path(scratch) / name), SAMPLES / name)
                        made[name] = needs
                        print(f"wrote samples/{name}")
                        write_record(made, [n for n, _, _ in makers if n not in made], trained, args.full, args.data_dir)
    print(f"wall time: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM/SIGHUP deferred by the training loop (a checkpoint is saved)
        sys.exit(f"showcase: stopped by {cli.stopping_signal(stop).name}; run the same command again to continue")
