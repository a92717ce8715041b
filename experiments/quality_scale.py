"""Does gan_lab.quality's noise-equivalent sigma compare across MNIST and Fashion-MNIST? (issue 27, item 2)

    python experiments/quality_scale.py [--n 5000]      # ~3 min here; no training

Hand-made degraded sets of real training images, the same recipe on both datasets (blur, coarse
pixels, shifts, dropped pixels, fewer classes, a mix with noise), each scored against its dataset's
test set with its dataset's evaluator: FD, class coverage and noise-equivalent sigma. The scale does
its job if the sets come out in the same order on both datasets (Spearman's rho) *and* at similar
values, so that one threshold ("works": sigma <= quality.WORKS_SIGMA and every class) decides alike on
both. Raw FD with one threshold is shown beside it for contrast. Writes
experiments/results/quality_scale.md (included in docs/quality.md) and samples/quality_scale.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

from gan_lab import data, evaluation, metrics, quality, runtime

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from docs_sync import write_result  # noqa: E402  (beside this script)

RESULTS = ROOT / "experiments" / "results" / "quality_scale.md"
# dcgan's learning curves (experiments/learning_curves.py, 5,000 samples): where the reference model falls.
CURVES = ROOT / "experiments" / "out" / "curves" / "w0.5-ev5000"
FIGURE = ROOT / "samples" / "quality_scale.png"
DATASETS = ("mnist", "fashion-mnist")


def blur(sigma):
    return lambda images, labels, rng: ndimage.gaussian_filter(images, (0, sigma, sigma, 0))


def coarse(factor):
    """Average-pool to 28/factor pixels a side, then back up (nearest)."""
    def degrade(images, labels, rng):
        n = images.shape[0]
        pooled = images.reshape(n, 28 // factor, factor, 28 // factor, factor, 1).mean(axis=(2, 4))
        return pooled.repeat(factor, axis=1).repeat(factor, axis=2)
    return degrade


def shifted(pixels):
    def degrade(images, labels, rng):
        moves = rng.integers(-pixels, pixels + 1, size=(len(images), 2))
        return np.stack([np.roll(image, tuple(move), axis=(0, 1)) for image, move in zip(images, moves)])
    return degrade


def dropped(fraction):
    """A random `fraction` of the pixels set to the background (-1)."""
    return lambda images, labels, rng: np.where(rng.random(images.shape) < fraction, -1.0, images)


def classes(keep):
    """Only images of the first `keep` classes (a partial mode collapse), repeated to the same count."""
    def degrade(images, labels, rng):
        kept = images[labels < keep]
        return kept[rng.integers(0, len(kept), size=len(images))]
    return degrade


def half_noise(images, labels, rng):
    """Half the images replaced by uniform noise (half the samples broken)."""
    noisy = rng.uniform(-1, 1, images.shape).astype(np.float32)
    return np.where((np.arange(len(images)) % 2 == 0)[:, None, None, None], images, noisy)


DEGRADATIONS = {
    "real": lambda images, labels, rng: images,
    "blur 0.5 px": blur(0.5), "blur 1 px": blur(1.0), "blur 2 px": blur(2.0),
    "14x14 pixels": coarse(2), "7x7 pixels": coarse(4),
    "shifted up to 2 px": shifted(2), "shifted up to 4 px": shifted(4),
    "10% pixels dropped": dropped(0.1), "30% pixels dropped": dropped(0.3),
    "5 classes": classes(5), "2 classes": classes(2), "1 class": classes(1),
    "half noise": half_noise,
}


def score_sets(dataset: str, n: int, data_dir=None) -> dict[str, dict]:
    images, labels = data.load_split(dataset, "train", data_dir)
    images, labels = data.to_model_range(images[:n]), labels[:n]
    ladder = quality.noise_ladder(dataset, n, data_dir)
    evaluator = metrics.load_evaluator(dataset)
    found = {}
    for name, degrade in DEGRADATIONS.items():
        degraded = quality.quantised(degrade(images, labels, np.random.default_rng(0)).astype(np.float32))
        features, logits = evaluator.features_and_logits(degraded)
        fd = quality.fd_to_test_set(dataset, degraded, data_dir)
        coverage = metrics.class_coverage(np.asarray(logits))
        sigma = quality.noise_equivalent(fd, ladder)
        real = evaluation.reference(dataset, data_dir)
        precision, recall = metrics.precision_recall(real.features, np.asarray(features), real_radii=real.radii)
        found[name] = {"fd": fd, "coverage": coverage, "sigma": sigma, "precision": precision, "recall": recall,
                       "works": quality.works(sigma, coverage)}
    return found, ladder


def figure(results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")  # a program opts into its backend where it starts
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, key, title in ((axes[0], "fd", "FD (each dataset's evaluator)"),
                           (axes[1], "sigma", "noise-equivalent sigma (gan_lab.quality)")):
        x = [results["mnist"][name][key] for name in DEGRADATIONS]
        y = [results["fashion-mnist"][name][key] for name in DEGRADATIONS]
        ax.scatter(x, y)
        for name, xi, yi in zip(DEGRADATIONS, x, y):
            ax.annotate(name, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        top = max(max(x), max(y)) * 1.05
        if key == "fd":
            ax.set_xscale("symlog", linthresh=10)
            ax.set_yscale("symlog", linthresh=10)
        ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--")
        if key == "sigma":
            ax.axvline(quality.WORKS_SIGMA, color="tab:red", lw=0.8)
            ax.axhline(quality.WORKS_SIGMA, color="tab:red", lw=0.8)
        ax.set_xlabel(f"MNIST {title}")
        ax.set_ylabel(f"Fashion-MNIST {title}")
    rho_fd = stats.spearmanr(*[[results[d][name]["fd"] for name in DEGRADATIONS] for d in DATASETS])[0]
    rho_sigma = stats.spearmanr(*[[results[d][name]["sigma"] for name in DEGRADATIONS] for d in DATASETS])[0]
    axes[0].set_title(f"raw FD: Spearman rho {rho_fd:.2f}")
    axes[1].set_title(f"noise-equivalent sigma: rho {rho_sigma:.2f} (red lines: the 'works' bound)")
    fig.suptitle("The same degradations of real images, scored on both datasets")
    fig.tight_layout()
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="images per set (as many as a sweep scores)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    runtime.configure()
    results, ladders = {}, {}
    for dataset in DATASETS:
        results[dataset], ladders[dataset] = score_sets(dataset, args.n, args.data_dir)
    mnist, fashion = results["mnist"], results["fashion-mnist"]
    rho_sigma = stats.spearmanr([mnist[k]["sigma"] for k in DEGRADATIONS], [fashion[k]["sigma"] for k in DEGRADATIONS])[0]
    rho_fd = stats.spearmanr([mnist[k]["fd"] for k in DEGRADATIONS], [fashion[k]["fd"] for k in DEGRADATIONS])[0]
    gap = np.mean([abs(mnist[k]["sigma"] - fashion[k]["sigma"]) for k in DEGRADATIONS])
    agree = sum(mnist[k]["works"] == fashion[k]["works"] for k in DEGRADATIONS)
    # Raw FD with one threshold for both: the same 300 that sigma 0.3 is near on MNIST's ladder.
    fd_bar = dict(ladders["mnist"])[quality.WORKS_SIGMA]
    agree_fd = sum((mnist[k]["fd"] <= fd_bar) == (fashion[k]["fd"] <= fd_bar) for k in DEGRADATIONS)
    rows = ["| set | MNIST FD | sigma | classes | precision | Fashion FD | sigma | classes | precision | works (M / F) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name in DEGRADATIONS:
        m, f = mnist[name], fashion[name]
        rows.append(f"| {name} | {m['fd']:.1f} | {m['sigma']:.2f} | {m['coverage']:.1f} | {m['precision']:.2f} | "
                    f"{f['fd']:.1f} | {f['sigma']:.2f} | {f['coverage']:.1f} | {f['precision']:.2f} | "
                    f"{'yes' if m['works'] else 'no'} / "
                    f"{'yes' if f['works'] else 'no'} |")
    ladder_rows = ["| sigma | " + " | ".join(f"{s:g}" for s, _ in ladders["mnist"]) + " |",
                   "|---|" + "---|" * len(ladders["mnist"])]
    for dataset in DATASETS:
        ladder_rows.append(f"| {dataset} FD | " + " | ".join(f"{v:.1f}" for _, v in ladders[dataset]) + " |")
    references = []
    for dataset in DATASETS:
        curve = CURVES / f"dcgan-{dataset}-seed0" / "curve.json"
        if curve.exists() and args.n == 5000:  # the curves score 5,000 samples, as this ladder
            for point in json.loads(curve.read_text()):
                if point["epochs"] > 0.99 and round(point["epochs"]) in (1, 4):
                    sigma = quality.noise_equivalent(point["fd"], ladders[dataset])
                    references.append(f"dcgan after {round(point['epochs'])} epoch(s) on {dataset}: FD {point['fd']:.1f}, "
                                      f"sigma {sigma:.2f}")
    figure(results)
    reference_lines = "\n".join(f"- {line}" for line in references) or \
        "- (no learning curves of dcgan here: run experiments/learning_curves.py first)"
    write_result(RESULTS, f"""# The noise-equivalent scale on hand-made degraded sets

Written by `python experiments/quality_scale.py --n {args.n}`: {args.n:,} training images per set, each
scored against its dataset's test set with its dataset's evaluator. The ladder (FD of training images
with Gaussian pixel noise of each sigma, in the [-1, 1] range):

{chr(10).join(ladder_rows)}

The degraded sets (sigma: where the set's FD falls on its own dataset's ladder; classes: the
evaluator's class coverage; works: sigma <= {quality.WORKS_SIGMA} and every class):

{chr(10).join(rows)}

- Order: Spearman's rho between the two datasets over the {len(DEGRADATIONS)} sets is **{rho_sigma:.2f}** for
  the noise-equivalent sigma and {rho_fd:.2f} for raw FD: the same, as it must be (sigma is a rising function
  of FD within a dataset). What sigma adds is the level: the mean gap between a set's sigma on the two
  datasets is {gap:.2f}.
- One threshold for both: "works" decides alike on both datasets for **{agree} of {len(DEGRADATIONS)}** sets;
  raw FD with one threshold for both ({fd_bar:.0f}, MNIST's FD at sigma {quality.WORKS_SIGMA}) for {agree_fd} of
  {len(DEGRADATIONS)}.

Where the reference model falls on the same ladders (its learning curves, width 0.5, 5,000 samples):
{reference_lines}

![The degraded sets on both datasets, raw FD and sigma](../../samples/quality_scale.png)
""")
    print(f"rho sigma {rho_sigma:.2f}, rho FD {rho_fd:.2f}; works agrees {agree}/{len(DEGRADATIONS)}, "
          f"raw FD {agree_fd}/{len(DEGRADATIONS)}")


if __name__ == "__main__":
    main()
