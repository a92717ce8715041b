"""A sweep's answers (`gan_lab report SWEEP_DIR`): does MNIST forgive settings Fashion-MNIST does not?

From the finished jobs' result.json files alone (gan_lab/sweep.py), per dataset:
  * each setting's FD placed on the dataset's noise ladder (gan_lab.quality): its noise-equivalent
    sigma, comparable across the two datasets, and whether it works (sigma <= quality.WORKS_SIGMA
    and every class drawn);
  * the fraction of settings that work, with a 95% Wilson interval over settings, and the spread of
    sigma over settings;
the paired comparison (both datasets saw the same setting and training seed): how often a setting
works on MNIST and fails on Fashion-MNIST, and the reverse, with an exact two-sided binomial test on
those discordant pairs (McNemar's); and the transfer of the best settings: Spearman's rho between a
setting's MNIST sigma and its Fashion-MNIST sigma (95% bootstrap interval over settings), and where
MNIST's best setting ranks among Fashion-MNIST's. Pictures: the distribution of sigma over settings
on both datasets, and a sheet of samples of every setting on both datasets, marked works / fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import scipy.stats
from matplotlib.figure import Figure  # not pyplot: files only, the importing program's backend is left alone

from gan_lab import plotting, quality, report, study, sweep
from gan_lab.errors import UserError

DATASETS = ("mnist", "fashion-mnist")
BOOTSTRAP_DRAWS = 2000
MIN_PAIRS_FOR_RHO = 5  # below this a rank correlation and its bootstrap interval say nothing


def load_trials(sweep_dir: Path, data_dir=None) -> tuple[dict, list[dict]]:
    """(the sweep's sweep.json, one row per trial with a finished job: {"trial", "settings", dataset:
    {"fd", "class_coverage", "precision", "recall", "sigma", "works"}, ...})."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / sweep.SWEEP_FILE
    if not path.exists():
        raise UserError(f"{sweep_dir} is not a sweep directory (no {sweep.SWEEP_FILE}); give the directory "
                        "`gan_lab sweep` wrote, e.g. sweeps/<model>")
    settings = json.loads(path.read_text())
    rows = []
    for index, drawn in enumerate(settings["trials"]):
        row = {"trial": sweep.Trial(index, drawn).name, "settings": drawn}
        for dataset in DATASETS:
            result_path = sweep_dir / row["trial"] / study.Job(settings["model"], dataset, settings["seed"]).name / \
                study.RESULT_FILE
            if result_path.exists():
                scores = json.loads(result_path.read_text())["scores"][0]
                ladder = quality.noise_ladder(dataset, scores["n_generated"], data_dir)
                sigma = quality.noise_equivalent(scores["fd"], ladder)
                row[dataset] = {**{k: scores[k] for k in ("fd", "class_coverage", "precision", "recall")},
                                "sigma": sigma, "works": quality.works(sigma, scores["class_coverage"])}
        if any(dataset in row for dataset in DATASETS):
            rows.append(row)
    if not rows:
        raise UserError(f"{sweep_dir} has no finished job yet; run the sweep first")
    return settings, rows


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0 and n, unlike the normal approximation)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share(works: int, settings: int) -> dict:
    """How many of `settings` work, as counts, a fraction and its 95% Wilson interval."""
    # None, not NaN, where nothing has finished yet: answers.json stays valid JSON.
    return {"settings": settings, "works": works, "fraction": works / settings if settings else None,
            "interval": wilson(works, settings)}


def mcnemar_p(mnist_only: int, fashion_only: int) -> float:
    """McNemar's exact test: under "neither dataset is more forgiving" a discordant pair is a coin flip."""
    discordant = mnist_only + fashion_only
    return float(scipy.stats.binomtest(mnist_only, discordant).pvalue) if discordant else 1.0


def spearman_with_interval(x, y, seed: int = 0) -> tuple[float, float, float]:
    """(rho, 2.5th and 97.5th percentile of rho over bootstrap redraws of the settings)."""
    x, y = np.asarray(x), np.asarray(y)
    rng = np.random.default_rng(seed)
    picks = (rng.integers(0, len(x), len(x)) for _ in range(BOOTSTRAP_DRAWS))
    draws = [rho for rho in (report.spearman(x[pick], y[pick]) for pick in picks) if not np.isnan(rho)]  # no spread: no rho
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return report.spearman(x, y), float(low), float(high)


def paired_rows(rows: list[dict]) -> list[dict]:
    """The rows of settings trained on both datasets."""
    return [row for row in rows if all(dataset in row for dataset in DATASETS)]


def analyse(rows: list[dict]) -> dict:
    """The answers, from load_trials' rows."""
    found = {"per_dataset": {}}
    for dataset in DATASETS:
        done = [row[dataset] for row in rows if dataset in row]
        works = sum(r["works"] for r in done)
        sigmas = np.array([r["sigma"] for r in done])
        found["per_dataset"][dataset] = {
            **share(works, len(done)),
            "sigma_quartiles": tuple(np.percentile(sigmas, [25, 50, 75])) if len(done) else None}
    paired = paired_rows(rows)
    mnist_only = sum(r["mnist"]["works"] and not r["fashion-mnist"]["works"] for r in paired)
    fashion_only = sum(r["fashion-mnist"]["works"] and not r["mnist"]["works"] for r in paired)
    found["paired"] = {
        "pairs": len(paired), "both": sum(r["mnist"]["works"] and r["fashion-mnist"]["works"] for r in paired),
        "mnist_only": mnist_only, "fashion_only": fashion_only,
        "neither": sum(not r["mnist"]["works"] and not r["fashion-mnist"]["works"] for r in paired),
        "p_value": mcnemar_p(mnist_only, fashion_only)}
    if len(paired) >= MIN_PAIRS_FOR_RHO:
        mnist_sigma = [r["mnist"]["sigma"] for r in paired]
        fashion_sigma = [r["fashion-mnist"]["sigma"] for r in paired]
        rho, low, high = spearman_with_interval(mnist_sigma, fashion_sigma)
        best = int(np.argmin(mnist_sigma))
        found["transfer"] = {"rho": rho, "interval": (low, high), "best_on_mnist": paired[best]["trial"],
                             "its_rank_on_fashion": int(scipy.stats.rankdata(fashion_sigma, method="min")[best]),
                             "of": len(paired)}
    return found


def distribution_plot(rows: list[dict], model: str, path: Path) -> Path:
    """Each setting's sigma on both datasets: the spread of quality over settings, paired by lines."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    # Each point's own small sideways offset, so that equal sigmas stay visible; the pairing lines end on it.
    jitter = {(row["trial"], x): offset for x, dataset in enumerate(DATASETS)
              for row, offset in zip([r for r in rows if dataset in r],
                                     np.random.default_rng(x).uniform(-0.06, 0.06, len(rows)))}
    for row in paired_rows(rows):
        ax.plot([jitter[row["trial"], x] + x for x in (0, 1)], [row[d]["sigma"] for d in DATASETS], color="grey",
                lw=0.6, alpha=0.6)
    for x, dataset in enumerate(DATASETS):
        with_dataset = [row for row in rows if dataset in row]
        values = [row[dataset] for row in with_dataset]
        jitter_x = np.array([jitter[row["trial"], x] for row in with_dataset])
        colours = ["tab:green" if v["works"] else "tab:red" for v in values]
        # Hollow where a class is missing, as in the pooled quadrant picture: such a setting fails at any sigma.
        ax.scatter(x + jitter_x, [v["sigma"] for v in values], s=18, zorder=3, edgecolors=colours,
                   facecolors=[c if quality.draws_every_class(v["class_coverage"]) else "none"
                               for c, v in zip(colours, values)])
        ax.boxplot([v["sigma"] for v in values], positions=[x], widths=0.3, showfliers=False)
    ax.axhline(quality.WORKS_SIGMA, color="tab:red", lw=0.8, ls="--")
    ax.set_xticks([0, 1], ["MNIST", "Fashion-MNIST"])
    ax.set_ylabel("noise-equivalent sigma (lower is better)")
    ax.set_title(f"{model}: quality over {len(rows)} settings\n(green: works; hollow: a class missing)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


PAIRS_PER_ROW = 4  # settings side by side in the sample sheet: 20 settings make 5 rows of 8 grids
SHEET_SAMPLES = 16  # samples per grid in the sample sheet: a 4 x 4 grid


def sample_sheet(sweep_dir: Path, settings: dict, rows: list[dict], path: Path, per_cell: int = SHEET_SAMPLES) -> Path:
    """Every setting as a pair of grids, `per_cell` samples on MNIST beside the same on Fashion-MNIST
    (the same noise), PAIRS_PER_ROW pairs a row, each grid framed and titled green (works) or red (fails)
    with its sigma. A setting not trained on a dataset, or whose run is no longer on disk, says so in
    its grid's place."""
    import jax

    from gan_lab import runs, sampling

    cells = []
    for row in rows:
        pair = []
        for dataset in DATASETS:
            run_dir = Path(sweep_dir) / row["trial"] / study.Job(settings["model"], dataset, settings["seed"]).name
            if dataset not in row or not (run_dir / "config.json").exists():
                pair.append("not run" if dataset not in row else "run not on disk")
                continue
            run = runs.load_trained(run_dir)
            images, _ = sampling.export_samples(run.model, run.state, jax.random.key(0), per_cell)  # the same noise
            pair.append((images, row[dataset]))
        cells.append((row["trial"], pair))
    n_rows = max(1, -(-len(cells) // PAIRS_PER_ROW))
    # One grid's side in inches at 100 dpi is about its pixels: the samples are drawn near their own size.
    fig = Figure(figsize=(1.45 * 2 * PAIRS_PER_ROW, 1.75 * n_rows + 0.5))
    axes = fig.subplots(n_rows, 2 * PAIRS_PER_ROW, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    side = int(np.ceil(np.sqrt(per_cell)))
    short = {"mnist": "MNIST", "fashion-mnist": "Fashion"}
    for index, (trial, pair) in enumerate(cells):
        row_axes = axes[index // PAIRS_PER_ROW]
        for offset, (dataset, cell) in enumerate(zip(DATASETS, pair)):
            ax = row_axes[2 * (index % PAIRS_PER_ROW) + offset]
            name = f"{trial.removeprefix('trial')} {short[dataset]}"
            if isinstance(cell, str):
                ax.set_title(f"{name}: {cell}", fontsize=7)
                continue
            images, scores = cell
            grid = plotting.image_grid(images[:side * side], side, pad=0, pad_value=0)
            colour = "tab:green" if scores["works"] else "tab:red"
            ax.set_axis_on()
            # Nearest-neighbour: each sample pixel stays a block of one grey (sharp, and the PNG stays small).
            ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(colour)
                spine.set_linewidth(2.5)
            ax.set_title(f"{name} {scores['sigma']:.2f} {'works' if scores['works'] else 'fails'}", fontsize=7,
                         color=colour)
    fig.suptitle(f"{settings['model']}: each setting on MNIST (left) and Fashion-MNIST (right), the same noise; "
                 f"noise-equivalent sigma, works at most {quality.WORKS_SIGMA} with every class drawn", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return plotting.save_palette_png(fig, path)


def mcnemar_power(pairs: int, mnist_only: float, fashion_only: float, alpha: float = 0.05) -> float:
    """Probability that McNemar's exact two-sided test rejects "neither dataset is more forgiving" at
    level `alpha`, over `pairs` settings of which a fraction `mnist_only` work on MNIST alone and
    `fashion_only` on Fashion-MNIST alone. Exact: the discordant count d ~ Binomial(pairs, mnist_only +
    fashion_only), then MNIST's share of them ~ Binomial(d, mnist_only / (mnist_only + fashion_only))."""
    discordant_rate = mnist_only + fashion_only
    if discordant_rate == 0:
        return 0.0
    share = mnist_only / discordant_rate
    power = 0.0
    for d in range(1, pairs + 1):
        b = np.arange(d + 1)
        # binomtest(b, d)'s two-sided p-value: Binomial(d, 1/2) is symmetric, so twice the smaller tail.
        p_values = np.minimum(1.0, 2 * scipy.stats.binom.cdf(np.minimum(b, d - b), d, 0.5))
        power += scipy.stats.binom.pmf(d, pairs, discordant_rate) * \
            scipy.stats.binom.pmf(b[p_values < alpha], d, share).sum()
    return float(power)


def pooled(found_by_model: dict[str, dict]) -> dict:
    """Several models' analyse() answers as one paired comparison. Under "neither dataset is more
    forgiving", each discordant pair of every model is a coin flip, so the discordant pairs of all
    models add up into one exact McNemar test (stratified by model, no assumption that the models
    share a rate). The flips must be independent: sweeps drawn with different seeds (load_sweeps
    refuses others); the same seed draws the same settings for every model, whose verdicts go together."""
    paired = [found["paired"] for found in found_by_model.values()]
    total = {key: sum(p[key] for p in paired) for key in ("pairs", "both", "mnist_only", "fashion_only", "neither")}
    total["p_value"] = mcnemar_p(total["mnist_only"], total["fashion_only"])
    per_dataset = {dataset: share(sum(found["per_dataset"][dataset]["works"] for found in found_by_model.values()),
                                  sum(found["per_dataset"][dataset]["settings"] for found in found_by_model.values()))
                   for dataset in DATASETS}
    return {"per_dataset": per_dataset, "paired": total}


def _setting_text(drawn: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(drawn.items()))


def _budget_text(budget: dict) -> str:
    """A sweep's budget as a reader needs it: what was set (not the logging interval)."""
    return _setting_text({k: v for k, v in budget.items() if v is not None and k != "log_every"})


def write(sweep_dir: Path, out: Path | None = None, data_dir=None) -> Path:
    """SWEEP_DIR/report/report.md with its figures; returns the page's path."""
    settings, rows = load_trials(sweep_dir, data_dir)
    out = Path(out) if out else Path(sweep_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    found = analyse(rows)
    model = settings["model"]
    lines = [f"# Sweep of {model}: does MNIST forgive settings that Fashion-MNIST does not?", "",
             f"{len(rows)} settings drawn around {model}'s defaults (sweep seed {settings['seed']}), each trained on "
             f"both datasets with the same budget ({_budget_text(settings['budget'])}) and training seed. A setting "
             f"works when its noise-equivalent sigma is at most {quality.WORKS_SIGMA} and it draws every class "
             "(gan_lab/quality.py, docs/quality.md#a-scale-for-both-datasets).", "",
             "| dataset | settings | work | fraction (95% Wilson interval) | sigma quartiles |", "|---|---|---|---|---|"]
    for dataset, d in found["per_dataset"].items():
        if not d["settings"]:  # a sweep that has not finished a setting on this dataset yet
            lines.append(f"| {dataset} | 0 | 0 | – | – |")
            continue
        lines.append(f"| {dataset} | {d['settings']} | {d['works']} | {d['fraction']:.2f} ({d['interval'][0]:.2f}, "
                     f"{d['interval'][1]:.2f}) | {', '.join(f'{q:.2f}' for q in d['sigma_quartiles'])} |")
    p = found["paired"]
    lines += ["", f"Paired, over the {p['pairs']} settings run on both: works on both {p['both']}, on MNIST only "
              f"{p['mnist_only']}, on Fashion-MNIST only {p['fashion_only']}, on neither {p['neither']} (McNemar's "
              f"exact test on the discordant pairs: p = {p['p_value']:.3g})."]
    if "transfer" in found:
        t = found["transfer"]
        lines += ["", f"Transfer: Spearman's rho between a setting's MNIST sigma and its Fashion-MNIST sigma "
                  f"{t['rho']:.2f} (95% bootstrap interval over settings {t['interval'][0]:.2f} to "
                  f"{t['interval'][1]:.2f}); MNIST's best setting ({t['best_on_mnist']}) ranks "
                  f"{t['its_rank_on_fashion']} of {t['of']} on Fashion-MNIST."]
    figure = distribution_plot(rows, model, out / f"sweep_{model}-quality.png")
    lines += ["", f"![quality over settings]({figure.name})", "", "| trial | setting | " +
              " | ".join(f"{d} FD | sigma | classes | works" for d in DATASETS) + " |",
              "|---|---|" + "---|---|---|---|" * len(DATASETS)]
    for row in rows:
        cells = []
        for dataset in DATASETS:
            r = row.get(dataset)
            cells.append(f"{r['fd']:.1f} | {r['sigma']:.2f} | {r['class_coverage']:.1f} | "
                         f"{'yes' if r['works'] else 'no'}" if r else "– | – | – | –")
        lines.append(f"| {row['trial']} | {_setting_text(row['settings'])} | " + " | ".join(cells) + " |")
    sheet = sample_sheet(sweep_dir, settings, rows, out / f"sweep_{model}-samples.png")
    lines += ["", f"![samples of every setting on both datasets]({sheet.name})", ""]
    page = out / "report.md"
    page.write_text("\n".join(lines))
    (out / "answers.json").write_text(json.dumps(found, indent=1, default=float) + "\n")
    return page


# The thresholds the pooled page also judges at, to show whether its answer depends on where the line
# is drawn: either side of quality.WORKS_SIGMA, inside the noise ladder's rungs (quality.NOISE_LADDER).
SENSITIVITY_SIGMAS = (0.2, 0.25, 0.3, 0.4, 0.5)


def at_threshold(rows: list[dict], threshold: float) -> list[dict]:
    """load_trials' rows with each verdict judged again at another sigma threshold."""
    return [{**row, **{dataset: {**row[dataset], "works": quality.works(row[dataset]["sigma"],
                                                                       row[dataset]["class_coverage"], threshold)}
                       for dataset in DATASETS if dataset in row}} for row in rows]


def sensitivity(rows_by_model: dict[str, list[dict]], thresholds=SENSITIVITY_SIGMAS) -> list[dict]:
    """The pooled answer at each threshold: {"threshold", "per_dataset", "paired"} (pooled()'s keys)."""
    return [{"threshold": threshold, **pooled({model: analyse(at_threshold(rows, threshold))
                                               for model, rows in rows_by_model.items()})}
            for threshold in thresholds]


def paired_difference(rows_by_model: dict[str, list[dict]]) -> dict:
    """The threshold-free comparison: over every setting trained on both datasets (all models), how often
    its sigma is higher on MNIST than on Fashion-MNIST, the median of MNIST's minus Fashion-MNIST's,
    and Wilcoxon's signed-rank test of "no difference" (two-sided; None below 2 differing pairs, as the
    median is without pairs, so answers.json stays valid JSON)."""
    differences = np.array([row["mnist"]["sigma"] - row["fashion-mnist"]["sigma"] for rows in rows_by_model.values()
                            for row in paired_rows(rows)])
    p_value = float(scipy.stats.wilcoxon(differences).pvalue) if np.count_nonzero(differences) >= 2 else None
    return {"pairs": len(differences), "higher_on_mnist": int(np.sum(differences > 0)),
            "higher_on_fashion": int(np.sum(differences < 0)),
            "median": float(np.median(differences)) if len(differences) else None, "p_value": p_value}


# The effects the pooled page states its power for: (works on MNIST only, on Fashion-MNIST only), as
# fractions of settings. The first is the founding claim's picture (MNIST forgives many settings that
# Fashion-MNIST exposes, rarely the reverse), the second a milder version of it.
POWER_EFFECTS = ((0.30, 0.05), (0.20, 0.05))


def quadrant_plot(rows_by_model: dict[str, list[dict]], path: Path) -> Path:
    """Every setting of every model as one point: its MNIST sigma against its Fashion-MNIST sigma, with
    the works threshold on both axes, so the four quadrants are the paired verdicts (filled: every
    class drawn on both datasets; hollow: a class missing on one, which fails it whatever its sigma)."""
    fig = Figure(figsize=(6, 5.5))
    ax = fig.subplots()
    colours = {model: f"C{i % 10}" for i, model in enumerate(rows_by_model)}  # matplotlib's 10-colour cycle
    highest = quality.WORKS_SIGMA * 2
    for model, rows in rows_by_model.items():
        paired = paired_rows(rows)
        for every_class in (True, False):
            points = [row for row in paired
                      if all(quality.draws_every_class(row[d]["class_coverage"]) for d in DATASETS) == every_class]
            if points:
                x, y = [r["mnist"]["sigma"] for r in points], [r["fashion-mnist"]["sigma"] for r in points]
                highest = max(highest, *x, *y)
                ax.scatter(x, y, s=28, label=model if every_class else None, zorder=3,
                           facecolors=colours[model] if every_class else "none", edgecolors=colours[model])
    ax.axvline(quality.WORKS_SIGMA, color="grey", lw=0.8, ls="--")
    ax.axhline(quality.WORKS_SIGMA, color="grey", lw=0.8, ls="--")
    ax.plot([0, highest], [0, highest], color="grey", lw=0.5, ls=":")
    for x, y, text in ((0.02, 0.98, "works on MNIST only"), (0.98, 0.02, "works on Fashion-MNIST only"),
                       (0.02, 0.02, "works on both"), (0.98, 0.98, "works on neither")):
        ax.text(x, y, text, transform=ax.transAxes, fontsize=8, color="grey",
                ha="left" if x < 0.5 else "right", va="top" if y > 0.5 else "bottom")
    ax.set_xlim(0, highest * 1.05)
    ax.set_ylim(0, highest * 1.05)
    ax.set_xlabel("MNIST: noise-equivalent sigma (lower is better)")
    ax.set_ylabel("Fashion-MNIST: noise-equivalent sigma")
    ax.set_title("The same setting on both datasets\n(dashed: the works threshold; hollow: a class missing)", fontsize=10)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def load_sweeps(sweep_dirs: list[Path], data_dir=None) -> dict[str, tuple[dict, list[dict]]]:
    """{model: (sweep.json, load_trials' rows)} for one sweep per model."""
    loaded, seeds = {}, {}
    for sweep_dir in sweep_dirs:
        settings, rows = load_trials(sweep_dir, data_dir)
        if settings["model"] in loaded:
            raise UserError(f"two sweeps of {settings['model']} given ({sweep_dir}); pool one sweep per model")
        if settings["seed"] in seeds:
            raise UserError(f"the sweeps of {seeds[settings['seed']]} and {settings['model']} were both drawn with seed "
                            f"{settings['seed']}: their k-th settings are the same draw, so their verdicts are not "
                            "independent and one test cannot pool them; pool sweeps run with different --seed")
        seeds[settings["seed"]] = settings["model"]
        loaded[settings["model"]] = settings, rows
    return loaded


def transfer_cells(transfer: dict | None) -> str:
    """The pooled table's two transfer cells from analyse()'s "transfer": Spearman's rho with its interval,
    and where the setting best on MNIST ranks among the same settings on Fashion-MNIST (1 = best there too)."""
    if transfer is None:  # too few pairs for a rank correlation
        return "– | –"
    low, high = transfer["interval"]
    return (f"{transfer['rho']:.2f} ({low:.2f}, {high:.2f}) | {transfer['its_rank_on_fashion']} of {transfer['of']} "
            f"({transfer['best_on_mnist']})")


def pooled_page(loaded: dict[str, tuple[dict, list[dict]]], figure: Path, links: dict[str, str] | None = None
                ) -> tuple[list[str], dict]:
    """(the pooled page's markdown lines, its answers) over load_sweeps' sweeps: per model and pooled,
    the fraction of settings that work on each dataset, the paired verdicts with McNemar's exact test,
    the test's power at this many pairs, and the quadrant picture, written to `figure` (the page names
    it relative to its own directory, so write the page beside it). `links`: each model's own page."""
    rows_by_model = {model: rows for model, (_, rows) in loaded.items()}
    found_by_model = {model: analyse(rows) for model, rows in rows_by_model.items()}
    total = pooled(found_by_model)
    budgets = {_budget_text(settings["budget"]) for settings, _ in loaded.values()}
    lines = ["Each sweep draws settings around one model's defaults and trains each on both datasets with the same "
             f"budget ({'; '.join(sorted(budgets))}) and training seed. A setting works when its noise-equivalent "
             f"sigma is at most {quality.WORKS_SIGMA} and it draws every class (gan_lab/quality.py).", "",
             "| model | settings paired | works on MNIST (95% interval) | works on Fashion-MNIST (95% interval) | "
             "both | MNIST only | Fashion-MNIST only | neither | McNemar p | Spearman rho (95% interval) | "
             "MNIST's best setting: its rank on Fashion-MNIST |" + (" its page |" if links else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if links else "")]

    def fraction(d):
        if not d["settings"]:  # a sweep that has not finished a setting on this dataset yet
            return "0/0"
        return f"{d['works']}/{d['settings']} = {d['fraction']:.2f} ({d['interval'][0]:.2f}, {d['interval'][1]:.2f})"

    for model, found in found_by_model.items():
        p = found["paired"]
        lines.append(f"| {model} | {p['pairs']} | {fraction(found['per_dataset']['mnist'])} | "
                     f"{fraction(found['per_dataset']['fashion-mnist'])} | {p['both']} | {p['mnist_only']} | "
                     f"{p['fashion_only']} | {p['neither']} | {p['p_value']:.3g} | "
                     f"{transfer_cells(found.get('transfer'))} |" +
                     (f" [{model}]({links[model]}) |" if links else ""))
    p = total["paired"]
    lines.append(f"| **all** | {p['pairs']} | {fraction(total['per_dataset']['mnist'])} | "
                 f"{fraction(total['per_dataset']['fashion-mnist'])} | {p['both']} | {p['mnist_only']} | "
                 f"{p['fashion_only']} | {p['neither']} | {p['p_value']:.3g} | – | – |" + (" |" if links else ""))
    powers = [(effect, mcnemar_power(p["pairs"], *effect)) for effect in POWER_EFFECTS]
    quadrant_plot(rows_by_model, figure)
    lines += ["", "The pooled test adds every model's discordant pairs: under \"neither dataset is more forgiving\" "
              "each one is a coin flip, whatever its model's rate. "
              f"With {p['pairs']} pairs its power at the 5% level is " +
              " and ".join(f"{power:.2f} if {a:.0%} of settings worked on MNIST only and {b:.0%} on Fashion-MNIST only"
                           for (a, b), power in powers) + " (sweep_report.mcnemar_power, exact).", "",
              f"![every setting on both datasets]({Path(figure).name})", ""]
    by_threshold = sensitivity(rows_by_model)
    lines += ["**Does the answer depend on where the line is drawn?** The same settings judged at other "
              f"thresholds (all models pooled; {quality.WORKS_SIGMA} is the page's):", "",
              "| works if sigma at most | works on MNIST | works on Fashion-MNIST | MNIST only | Fashion-MNIST only "
              "| McNemar p |", "|---|---|---|---|---|---|"]
    for at in by_threshold:
        q = at["paired"]
        lines.append(f"| {at['threshold']} | {fraction(at['per_dataset']['mnist'])} | "
                     f"{fraction(at['per_dataset']['fashion-mnist'])} | {q['mnist_only']} | {q['fashion_only']} | "
                     f"{q['p_value']:.3g} |")
    difference = paired_difference(rows_by_model)
    if difference["pairs"]:
        wilcoxon = ("too few differing pairs for Wilcoxon's signed-rank test" if difference["p_value"] is None
                    else f"Wilcoxon signed-rank p = {difference['p_value']:.2g}")
        lines += ["", f"**Without a threshold:** of {difference['pairs']} settings trained on both datasets, "
                  f"{difference['higher_on_mnist']} score a higher (worse) sigma on MNIST than on Fashion-MNIST and "
                  f"{difference['higher_on_fashion']} the reverse; the median difference (MNIST minus Fashion-MNIST) "
                  f"is {difference['median']:+.3f}, {wilcoxon}. Both datasets' sigmas are on scales of their own real "
                  "images under the same noise, so this compares how far each model is from its own data, not the "
                  "datasets' difficulty in any wider sense.", ""]
    else:
        lines += ["", "**Without a threshold:** no setting has been trained on both datasets yet.", ""]
    answers = {"models": found_by_model, "pooled": total, "by_threshold": by_threshold, "difference": difference,
               "power": [{"mnist_only": a, "fashion_only": b, "power": power} for (a, b), power in powers]}
    return lines, answers


def write_pooled(sweep_dirs: list[Path], out: Path, data_dir=None) -> Path:
    """`gan_lab report SWEEP SWEEP ...`: each sweep's own page, and OUT/report.md pooling them (with
    answers.json and the quadrant picture). Returns the pooled page's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_sweeps(sweep_dirs, data_dir)
    links = {model: os.path.relpath(write(sweep_dir, data_dir=data_dir), out)
             for model, sweep_dir in zip(loaded, sweep_dirs)}
    lines, answers = pooled_page(loaded, out / "sweeps-quadrant.png", links)
    page = out / "report.md"
    page.write_text("\n".join(["# Does MNIST forgive settings that Fashion-MNIST does not? Every model's sweep", "",
                               *lines]))
    (out / "answers.json").write_text(json.dumps(answers, indent=1, default=float) + "\n")
    return page
