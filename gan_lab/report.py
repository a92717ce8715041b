"""A study's results page (`gan_lab report STUDY_DIR`): Markdown tables and PNG figures, regenerated
from the jobs' result.json files alone (gan_lab/study.py), so anyone can rebuild it.

What it shows, per dataset and model, with FD (gan_lab's evaluator features) as the headline metric:
  * the variance split: FD mean, its std over training seeds, and its std over sample draws of one
    trained model (averaged over the seeds): a ranking is called only where two models' means differ
    by more than their training-seed stds added ("tied" otherwise);
  * ranking transfer: each model's rank on MNIST against its rank on Fashion-MNIST (a slope chart)
    and Spearman's rho between the two rankings, with its spread over training seeds (rho of each
    seed's FDs, and a bootstrap that redraws each model's seeds);
  * per class: FD and coverage of each class (requested labels for conditional models, the
    evaluator's predictions otherwise), a model x class heat map per dataset, and each model's worst
    class;
  * memorisation: the fraction of samples nearer a training image than any test image is to the
    training set, beside the median distances; and, where the runs are still on disk, a sheet of
    the samples nearest the training set next to their nearest training images.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import numpy as np
import scipy.stats
from matplotlib.figure import Figure  # not pyplot: files only, the importing program's backend is left alone

from gan_lab import data, study
from gan_lab.errors import UserError

DATASETS = ("mnist", "fashion-mnist")
BOOTSTRAP_DRAWS = 2000


# --- reading ---------------------------------------------------------------------------------

def load_results(study_dir: Path) -> list[dict]:
    """Every finished job's result under study_dir."""
    study_dir = Path(study_dir)
    if not (study_dir / study.STUDY_FILE).exists():
        raise UserError(f"{study_dir} is not a study directory (no {study.STUDY_FILE}); give the directory a "
                        "study writes its jobs into, e.g. experiments/out/compare/<setting>")
    loaded = [(path.parent.name, json.loads(path.read_text())) for path in sorted(study_dir.glob(f"*/{study.RESULT_FILE}"))]
    # Each job's own directory only, not a run set aside as stale (<job>.stale-N: study.set_aside_stale),
    # nor a run of a model's former defaults not yet set aside (study.stale_jobs).
    jobs = [study.Job(**result["job"]) for _, result in loaded]
    training = json.loads((study_dir / study.STUDY_FILE).read_text()).get("training")
    stale = study.stale_jobs(study_dir, jobs, training) if training is not None else {}
    results = [result for job, (name, result) in zip(jobs, loaded) if job.name == name and job not in stale]
    if not results:
        raise UserError(f"{study_dir} has no finished job yet; run the study first")
    return results


def by_model(results: list[dict], dataset: str) -> dict[str, list[dict]]:
    """{model: its jobs on `dataset`, ordered by training seed}."""
    grouped: dict[str, list[dict]] = {}
    for result in sorted(results, key=lambda r: r["job"]["seed"]):
        if result["job"]["dataset"] == dataset:
            grouped.setdefault(result["job"]["model"], []).append(result)
    return grouped


def seed_fd(result: dict) -> float:
    """One trained model's FD: the mean over its sample draws."""
    return statistics.mean(score["fd"] for score in result["scores"])


# --- the variance split and the rankings ---------------------------------------------------------

def fd_summary(jobs: list[dict]) -> dict:
    """FD mean over training seeds, the std over training seeds and the mean std over sample draws."""
    fds = [seed_fd(r) for r in jobs]
    draws = [statistics.stdev(s["fd"] for s in r["scores"]) for r in jobs if len(r["scores"]) > 1]
    return {"mean": statistics.mean(fds), "seeds": len(fds),
            "training_std": statistics.stdev(fds) if len(fds) > 1 else None,
            "sampling_std": statistics.mean(draws) if draws else None}


def tied(a: dict, b: dict) -> bool:
    """Two fd_summary's are tied unless their means differ by more than their training-seed stds
    added. With a single seed there is no spread to judge by: nothing is tied, and the page says that
    such ranks are by the means alone."""
    spread = (a["training_std"] or 0.0) + (b["training_std"] or 0.0)
    return abs(a["mean"] - b["mean"]) <= spread


def ranking(summaries: dict[str, dict]) -> list[tuple[str, int]]:
    """(model, rank) by mean FD, best first; a model tied with the one ranked before it shares its rank."""
    ordered = sorted(summaries, key=lambda m: summaries[m]["mean"])
    ranks, rank = [], 0
    for i, model in enumerate(ordered):
        if i == 0 or not tied(summaries[ordered[i - 1]], summaries[model]):
            rank = i + 1
        ranks.append((model, rank))
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho (average ranks for ties); NaN where either side has no spread."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


def ranking_transfer(results: list[dict], seed: int = 0) -> dict:
    """Spearman's rho between the models' MNIST and Fashion-MNIST FDs (models on both): of the seed
    means, of each training seed alone, and a bootstrap over each model's training seeds."""
    mnist, fashion = by_model(results, DATASETS[0]), by_model(results, DATASETS[1])
    models = sorted(set(mnist) & set(fashion))
    if len(models) < 3:
        return {"models": models, "rho": None}
    means = ([statistics.mean(seed_fd(r) for r in mnist[m]) for m in models],
             [statistics.mean(seed_fd(r) for r in fashion[m]) for m in models])
    per_seed = {}
    for k in sorted({r["job"]["seed"] for r in results}):
        pairs = [(next((seed_fd(r) for r in mnist[m] if r["job"]["seed"] == k), None),
                  next((seed_fd(r) for r in fashion[m] if r["job"]["seed"] == k), None)) for m in models]
        if all(a is not None and b is not None for a, b in pairs):
            per_seed[k] = spearman(*zip(*pairs))
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(BOOTSTRAP_DRAWS):
        draw = [[statistics.mean(seed_fd(jobs[i]) for i in rng.integers(len(jobs), size=len(jobs)))
                 for jobs in (mnist[m], fashion[m])] for m in models]
        boot.append(spearman(*zip(*draw)))
    return {"models": models, "rho": spearman(*means), "per_seed": per_seed,
            "bootstrap_ci": [float(np.nanpercentile(boot, 2.5)), float(np.nanpercentile(boot, 97.5))],
            "mnist_fd": means[0], "fashion_fd": means[1]}


# --- figures ---------------------------------------------------------------------------------

def slope_chart(transfer: dict, path: Path) -> Path:
    """Each model's FD rank on MNIST (left) joined to its rank on Fashion-MNIST (right)."""
    models = transfer["models"]
    left = scipy.stats.rankdata(transfer["mnist_fd"])  # average ranks for ties, as rho uses
    right = scipy.stats.rankdata(transfer["fashion_fd"])
    fig = Figure(figsize=(6, 0.42 * len(models) + 1.6))
    ax = fig.subplots()
    for model, a, b in zip(models, left, right):
        moved = abs(a - b) >= 3
        ax.plot([0, 1], [a, b], "-o", color="tab:red" if moved else "tab:gray", alpha=0.9 if moved else 0.6)
        ax.text(-0.04, a, f"{model} ({a:g})", ha="right", va="center", fontsize=9)
        ax.text(1.04, b, f"({b:g}) {model}", ha="left", va="center", fontsize=9)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(len(models) + 0.5, 0.5)
    ax.set_xticks([0, 1], ["MNIST rank", "Fashion-MNIST rank"])
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ci = transfer["bootstrap_ci"]
    ax.set_title(f"FD ranking, MNIST vs Fashion-MNIST\nSpearman rho {transfer['rho']:.2f} "
                 f"(bootstrap 95% [{ci[0]:.2f}, {ci[1]:.2f}])", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def class_heat_map(results: list[dict], dataset: str, path: Path) -> Path:
    """Model x class FD (mean over training seeds; log colour scale); blank where too few samples."""
    grouped = by_model(results, dataset)
    models = sorted(grouped, key=lambda m: fd_summary(grouped[m])["mean"])
    table = np.array([class_means(grouped[m], "fd") for m in models], float)
    fig = Figure(figsize=(9, 0.38 * len(models) + 1.8))
    ax = fig.subplots()
    image = ax.imshow(np.log10(table), cmap="magma_r", aspect="auto")
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            if np.isfinite(table[i, j]):
                ax.text(j, i, f"{table[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if np.log10(table[i, j]) > np.nanmean(np.log10(table)) else "black")
    ax.set_xticks(range(10), data.CLASS_NAMES[dataset], rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=9)
    fig.colorbar(image, ax=ax, label="log10 FD")
    ax.set_title(f"{dataset}: FD per class (lower is better; blank: too few samples of the class)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def class_means(jobs: list[dict], key: str) -> list[float]:
    """Per-class `key` ("fd" or "coverage") averaged over training seeds; NaN where any seed lacks it."""
    rows = [job["scores"][0]["per_class"][key] for job in jobs if "per_class" in job["scores"][0]]
    if not rows:
        return [float("nan")] * 10
    return [float("nan") if any(row[c] is None for row in rows) else statistics.mean(row[c] for row in rows)
            for c in range(10)]


def memorisation_sheet(study_dir: Path, results: list[dict], dataset: str, settings: dict, path: Path,
                       data_dir=None, pairs: int = 4) -> Path | None:
    """Each model's (training seed 0) samples nearest the training set, each beside its nearest training
    image. The samples are drawn again from the run's checkpoint with the scored draw's seed and size
    (the draw is deterministic); None where no run of the dataset is on disk any more."""
    import jax

    from gan_lab import plotting, runs, sampling

    rows, names = [], []
    train_images = None
    for model, jobs in sorted(by_model(results, dataset).items()):
        job, memo = jobs[0], jobs[0]["scores"][0].get("memorisation")
        run_dir = Path(study_dir) / study.Job(**job["job"]).name
        if memo is None or not (run_dir / "checkpoints").is_dir():
            continue
        trained = runs.load_trained(run_dir)
        generated, _ = sampling.export_samples(trained.model, trained.state, jax.random.key(settings["sample_seeds"][0]),
                                               settings["n_eval"])
        if train_images is None:
            train_images = data.load_split(dataset, "train", data_dir)[0]
        row = []
        for sample, neighbour in list(zip(memo["closest_samples"], memo["their_nearest_train"]))[:pairs]:
            row += [generated[sample], train_images[neighbour]]
        rows.append(data.to_model_range(np.stack(row)))
        names.append(model)
    if not rows:
        return None
    return plotting.save_labelled_rows(np.stack(rows), names, path,
                                       f"{dataset}: the samples nearest the training set, each left of its nearest "
                                       "training image (evaluator features)")


# --- the page --------------------------------------------------------------------------------

def _fmt(value, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def cost_cells(jobs) -> str:
    """"minutes | steps/s", the training cost's two table cells, averaged over the jobs the study trained
    itself (study.trained_here); "– | –" where it trained none."""
    timed = study.trained_here(jobs)
    if not timed:
        return "– | –"
    return (f"{statistics.mean(j['train_seconds'] for j in timed) / 60:.1f} | "
            f"{statistics.mean(j['steps_per_sec'] for j in timed):.1f}")


def write(study_dir: Path, out: Path | None = None, data_dir=None) -> Path:
    """Write OUT/report.md and its figures (default OUT: STUDY_DIR/report); returns the Markdown path."""
    study_dir = Path(study_dir)
    results = load_results(study_dir)
    out = Path(out) if out is not None else study_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    settings = json.loads((study_dir / study.STUDY_FILE).read_text())
    shown = os.path.relpath(study_dir)  # as the reader would type it from here, not this machine's absolute path
    lines = ["# Study report", "",
             f"Study directory `{shown}`: {len(results)} finished jobs. Settings: `{json.dumps(settings)}`. "
             f"Regenerate with `python -m gan_lab report {shown}`.", "",
             "FD is on gan_lab's own evaluator features (not Inception). Training-seed std: the spread of FD over "
             "independently trained models; sample-draw std: the spread over several sample draws of one trained "
             "model. A model is ranked apart from its neighbour only where their means differ by more than their "
             "training-seed stds added; otherwise they share a rank (tied).", ""]
    summaries = {}
    for dataset in DATASETS:
        grouped = by_model(results, dataset)
        if not grouped:
            continue
        summaries[dataset] = {m: fd_summary(jobs) for m, jobs in grouped.items()}
        single = sorted(m for m, s in summaries[dataset].items() if s["seeds"] < 2)
        lines += [f"## {dataset}", ""]
        if single:
            lines += [f"Trained with one seed so far: {', '.join(single)}. Their ranks are by the mean alone "
                      "(no training-seed spread to call a tie by).", ""]
        lines += [
                  "| rank | model | seeds | FD mean | training-seed std | sample-draw std | worst class (FD) | "
                  "memorised | median sample→train / test→train | training min | steps/s |",
                  "|---:|---|---:|---:|---:|---:|---|---:|---|---:|---:|"]
        for model, rank in ranking(summaries[dataset]):
            s, jobs = summaries[dataset][model], grouped[model]
            per_class = class_means(jobs, "fd")
            worst = (data.CLASS_NAMES[dataset][int(np.nanargmax(per_class))] + f" ({np.nanmax(per_class):.0f})"
                     if np.isfinite(per_class).any() else "–")
            memo = [job["scores"][0].get("memorisation") for job in jobs]
            memo = [m for m in memo if m]
            memorised = _fmt(100 * statistics.mean(m["memorised_fraction"] for m in memo), 2) + "%" if memo else "–"
            distances = (f"{statistics.mean(m['median_sample_to_train'] for m in memo):.2f} / "
                         f"{statistics.mean(m['median_test_to_train'] for m in memo):.2f}") if memo else "–"
            lines.append(f"| {rank} | {model} | {s['seeds']} | {s['mean']:.1f} | {_fmt(s['training_std'])} | "
                         f"{_fmt(s['sampling_std'])} | {worst} | {memorised} | {distances} | "
                         f"{cost_cells(jobs)} |")
        heat = class_heat_map(results, dataset, out / f"per-class-fd-{dataset}.png")
        lines += ["", f"![FD per class on {dataset}]({heat.name})", ""]
        sheet = memorisation_sheet(study_dir, results, dataset, settings, out / f"nearest-training-{dataset}.png", data_dir)
        if sheet is not None:
            lines += ["Memorised: the share of samples nearer a training image than the nearest test image is to "
                      "the training set (evaluator features). The samples nearest the training set, beside their "
                      "nearest training images:", "", f"![samples beside their nearest training images]({sheet.name})", ""]
    transfer = ranking_transfer(results)
    if transfer["rho"] is not None:
        chart = slope_chart(transfer, out / "ranking-transfer.png")
        per_seed = ", ".join(f"seed {k}: {rho:.2f}" for k, rho in transfer["per_seed"].items())
        ci = transfer["bootstrap_ci"]
        lines += ["## Does the MNIST ranking hold on Fashion-MNIST?", "",
                  f"![MNIST rank vs Fashion-MNIST rank]({chart.name})", "",
                  f"Spearman's rho between the {len(transfer['models'])} models' mean FDs on the two datasets: "
                  f"**{transfer['rho']:.2f}** (each training seed alone: {per_seed or 'n/a'}; bootstrap over seeds, "
                  f"95%: [{ci[0]:.2f}, {ci[1]:.2f}]). Lines in red move 3 or more places.", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps({"summaries": summaries, "transfer": transfer}, indent=1) + "\n")
    return out / "report.md"
