"""The comparison behind the README's quality table: dcgan, cgan and vae on MNIST and Fashion-MNIST,
several seeds each (trained together in one vmapped step), every metric as mean ± std, a real-data
ceiling row, and DCGAN-on-MNIST time-to-quality against the PyTorch reference.

    python experiments/compare_models.py                           # the documented CPU setting (< 90 min)
    python experiments/compare_models.py --width 1 --epochs 25      # a longer run (GPU: the collections' setting)
    python experiments/compare_models.py --quick                   # a smoke run (tiny nets, tiny subset)

Settings by default: half-width networks (--width 0.5: a quarter of the conv/matmul work), paper
hyper-parameters, 1 epoch per model (GANs 937 steps at batch 64, VAE 468 at batch 128), 3 seeds
trained together, 10,000 generated vs the 10,000 test images. Each
(model, dataset) result is saved in experiments/out/compare/ as it finishes, so an interrupted run
continues where it stopped. Writes experiments/results/compare_models.md and samples/compare_models.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

from gan_lab import config, data, evaluation, metrics, registry, runtime, train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "out" / "compare"
RESULTS = ROOT / "experiments" / "results" / "compare_models.md"
PLOT = ROOT / "samples" / "compare_models.png"
MODELS = ("dcgan", "cgan", "vae")
DATASETS = ("mnist", "fashion-mnist")
# KD is on the evaluator's raw features, so its scale is not KID's (~1e-3); shown as is.
SHOWN = [("fd", "FD ↓", 2), ("kd_mean", "KD ↓", 2), ("precision", "precision ↑", 3), ("recall", "recall ↑", 3),
         ("classifier_score", "class. score ↑", 2), ("class_coverage", "coverage ↑", 2),
         ("label_accuracy", "label acc. ↑", 3), ("test_neg_elbo", "test −ELBO (nats) ↓", 1)]


def train_and_score(model_name, dataset, args, test_images) -> dict:
    """Train all seeds of one (model, dataset) together and score each seed; cached on disk."""
    cached = OUT / f"{model_name}-{dataset}-{args.tag}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    overrides = {"dataset": dataset, "epochs": args.epochs, "width": args.width, "subset": args.subset,
                 "log_every": 100}
    cfg = config.make_config(model_name, overrides)
    model = registry.get(model_name).build(cfg)
    images, labels = data.load_split(dataset, "train", args.data_dir)
    images, labels = data.to_device(images[: cfg.subset], labels[: cfg.subset])
    seeds = list(range(args.seeds))
    started = time.perf_counter()
    loop = train.fit(model, cfg, images, labels, seeds=seeds, show_progress=not args.no_progress)
    train_minutes = (time.perf_counter() - started) / 60
    elbo = evaluation.elbo_scorer(cfg, model, args.data_dir)
    per_seed = []
    for index in seeds:
        state = jax.tree.map(lambda leaf: leaf[index], loop.model)
        per_seed.append(evaluation.score(cfg, model, state, test_images, n=args.n_eval, seed=index, elbo=elbo))
    result = {"model": model_name, "dataset": dataset, "epochs": cfg.epochs, "seeds": seeds,
              "train_minutes_all_seeds": train_minutes, "per_seed": per_seed}
    OUT.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, indent=2))
    return result


def real_data_row(dataset, args, test_images) -> dict:
    """The ceiling: n training images scored as if they were generated."""
    train_images, train_labels = data.load_split(dataset, "train", args.data_dir)
    pick = np.random.default_rng(0).choice(len(train_images), args.n_eval, replace=False)
    results = metrics.evaluate_samples(data.to_model_range(train_images[pick]), test_images, dataset,
                                       labels=train_labels[pick])
    return {"model": "real (train vs test)", "dataset": dataset, "per_seed": [results]}


def mean_std(rows, key):
    values = [r[key] for r in rows if key in r]
    if not values:
        return None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(results, fingerprints) -> list[str]:
    header = "| model | dataset | " + " | ".join(name for _, name, _ in SHOWN) + " |"
    lines = [header, "|" + " --- |" * (len(SHOWN) + 2)]
    for result in results:
        cells = []
        for key, _, digits in SHOWN:
            stat = mean_std(result["per_seed"], key)
            if stat is None:
                cells.append("–")
                continue
            mean, std = stat
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}" if len(result["per_seed"]) > 1 else f"{mean:.{digits}f}")
        lines.append(f"| {result['model']} | {result['dataset']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Evaluator fingerprints: " + ", ".join(f"{d} `{f}`" for d, f in fingerprints.items())
                 + " (gan_lab's own classifiers, not Inception: FD/KD are not FID/KID).")
    return lines


def plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (key, name, _) in zip(axes, [SHOWN[0], SHOWN[2], SHOWN[3]]):
        for offset, dataset in enumerate(DATASETS):
            rows = [r for r in results if r["dataset"] == dataset]
            stats = [mean_std(r["per_seed"], key) for r in rows]
            xs = np.arange(len(rows)) + (offset - 0.5) * 0.38
            ax.bar(xs, [s[0] for s in stats], 0.36, yerr=[s[1] for s in stats], capsize=3, label=dataset)
            ax.set_xticks(np.arange(len(rows)), [r["model"].split(" ")[0] for r in rows])
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.3)
        if key == "fd":
            ax.set_yscale("log")
    axes[0].legend()
    fig.suptitle("gan_lab models on MNIST vs Fashion-MNIST (mean ± std over seeds; 'real' = train vs test)")
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def time_to_quality(args) -> list[str]:
    """Wall time (training only, compile included; evaluation excluded) until DCGAN on MNIST reaches
    FD <= target on 2,000 samples, for gan_lab and for the PyTorch reference, same hyper-parameters."""
    import ttq  # beside this script

    return ttq.race(args.target_fd, args.ttq_max_steps, args.ttq_every, args.width, args.data_dir)


def main() -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--n-eval", type=int, default=evaluation.EVAL_SAMPLES)
    # At width 0.5 a DCGAN on MNIST crosses FD 200 (2k samples) after roughly 1,100 steps.
    parser.add_argument("--target-fd", type=float, default=200.0, help="time-to-quality target (FD, 2k samples)")
    parser.add_argument("--ttq-max-steps", type=int, default=2500)
    parser.add_argument("--ttq-every", type=int, default=100)
    parser.add_argument("--skip-ttq", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke run: width 0.125, 512 images, 2 seeds")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.width, args.subset, args.seeds, args.n_eval = 0.125, 512, 2, 1000
        args.ttq_max_steps, args.ttq_every = 40, 20
    args.tag = f"e{args.epochs}-w{args.width}-s{args.subset}-n{args.seeds}-ev{args.n_eval}"

    started = time.perf_counter()
    results, fingerprints = [], {}
    for dataset in DATASETS:
        test_images = data.to_model_range(data.load_split(dataset, "test", args.data_dir)[0])
        results.append(real_data_row(dataset, args, test_images))
        fingerprints[dataset] = results[-1]["per_seed"][0]["evaluator"]
        for model_name in MODELS:
            result = train_and_score(model_name, dataset, args, test_images)
            print(f"{model_name} on {dataset}: trained {args.seeds} seeds together in "
                  f"{result['train_minutes_all_seeds']:.1f} min", flush=True)
            results.append(result)
    results.sort(key=lambda r: (r["dataset"] != "mnist", r["model"].startswith("real") is False, r["model"]))
    lines = table(results, fingerprints)
    if not args.skip_ttq:
        lines += ["", *time_to_quality(args)]
    minutes = (time.perf_counter() - started) / 60
    settings = (f"Settings: {args.epochs} epoch(s) per model, width {args.width}, "
                f"{'all' if args.subset is None else args.subset} training images, {args.seeds} seeds, "
                f"{args.n_eval} generated vs 10,000 test images. Command: `python {' '.join(sys.argv)}`, "
                f"{minutes:.0f} min on this machine.")
    lines = [settings, "", *lines]
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join(lines) + "\n")
        plot(results, PLOT)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
