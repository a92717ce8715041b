"""The comparison behind docs/results.md (and the README's findings): every registered model on MNIST and Fashion-MNIST,
several training seeds each, every metric as mean ± std over training seeds, the spread over sample
draws beside it, a real-data ceiling row, and DCGAN-on-MNIST time-to-quality against the PyTorch reference.

    python experiments/compare_models.py                            # the documented CPU setting (see below)
    python experiments/compare_models.py --width 1 --epochs 25      # the collections' setting (a GPU's job)
    python experiments/compare_models.py --quick --models dcgan cgan  # a smoke run (tiny nets, tiny subset)

CPU setting by default: half-width networks (--width 0.5: a quarter of the conv/matmul work), each
model's paper hyper-parameters, 1 epoch (60,000 training images: the same for every model, whatever
its batch size or critic steps), 3 training seeds, each trained model scored on 2 independent draws
of 10,000 generated images vs the 10,000 test images. The collections train 25 epochs on MNIST and
40 on Fashion-MNIST at full width: `--width 1 --epochs 25` (and 40) is that setting.

It runs as a study (gan_lab/study.py): one job per (model, dataset, seed), each an ordinary run
directory under experiments/out/compare/<setting>/, written as soon as it ends; stopped (Ctrl-C,
killed, machine gone) it continues where it stopped. Each finished job is also kept, as it ends, in
experiments/results/compare_models.json (in the repository), so a new machine continues the study
instead of training those jobs again. Writes experiments/results/compare_models.md,
samples/compare_models.png, the pictures of samples/zoo/ and the study's report (`gan_lab report`:
per-class heat maps, ranking transfer, memorisation) in experiments/results/study-<setting>/. Those
two first names and the zoo are the documented setting's (study.CPU_EPOCHS, ...); a study at any other
setting writes experiments/results/compare_models-<setting>.md and samples/compare_models-<setting>.png
instead, and leaves the zoo as it is.
`--report-only` writes them from the jobs finished so far, e.g. while the study runs elsewhere.

A job whose run learning_curves.py has already trained, with the same settings to the same budget (its
seed-0 runs at the curves' width and epochs), is adopted instead of trained again (study.adopt_run):
the curves resume bit for bit, so the run is the one the study would train. `--seed-order 1 2 0` leaves
seed 0 for last, when the curves have finished. An adopted job's wall time is its donor's, with a
compilation per leg, so the cost columns leave it out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from gan_lab import data, evaluation, files, metrics, quality, registry, report, runtime, study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from docs_sync import update_kept, write_result  # noqa: E402  (beside this script: results files and the docs that include them)
OUT = ROOT / "experiments" / "out" / "compare"
CURVES = ROOT / "experiments" / "out" / "curves"  # learning_curves.py's runs, one directory per setting
RESULTS = ROOT / "experiments" / "results" / "compare_models.md"
KEPT = ROOT / "experiments" / "results" / "compare_models.json"  # {setting tag: {job name: result}}
PLOT = ROOT / "samples" / "compare_models.png"
DATASETS = ("mnist", "fashion-mnist")
# KD is on the evaluator's raw features, so its scale is not KID's (~1e-3); shown as is.
SHOWN = [("fd", "FD ↓", 1), ("kd_mean", "KD ↓", 2), ("precision", "precision ↑", 3), ("recall", "recall ↑", 3),
         ("classifier_score", "class. score ↑", 2), ("class_coverage", "coverage ↑", 2),
         ("label_accuracy", "label acc. ↑", 3), ("test_neg_elbo", "test −ELBO (nats) ↓", 1)]


def per_seed_scores(results: list[dict]) -> list[dict]:
    """One dict of metrics per training seed: each metric averaged over that model's sample draws."""
    rows = []
    for result in results:
        draws = result["scores"]
        rows.append({key: statistics.mean(d[key] for d in draws) for key in draws[0] if isinstance(draws[0][key], (int, float))})
    return rows


def sampling_spread(results: list[dict], key: str) -> float | None:
    """The spread over sample draws: the std of `key` over one trained model's draws, averaged over seeds."""
    spreads = [statistics.stdev(d[key] for d in r["scores"]) for r in results if len(r["scores"]) > 1 and key in r["scores"][0]]
    return statistics.mean(spreads) if spreads else None


def real_data_row(dataset, args, test_images) -> dict:
    """The ceiling: n training images scored as if they were generated."""
    train_images, train_labels = data.load_split(dataset, "train", args.data_dir)
    pick = np.random.default_rng(0).choice(len(train_images), args.n_eval, replace=False)
    scores = metrics.evaluate_samples(data.to_model_range(train_images[pick]), test_images, dataset,
                                      labels=train_labels[pick])
    return {"model": "real (train vs test)", "dataset": dataset, "per_seed": [scores], "results": []}


def mean_std(rows, key):
    values = [r[key] for r in rows if key in r]
    if not values:
        return None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def group(results: dict, models, datasets) -> list[dict]:
    """One row per (model, dataset): its per-seed scores and raw job results."""
    rows = []
    for dataset in datasets:
        for model in models:
            jobs = [r for job, r in results.items() if job.model == model and job.dataset == dataset]
            if jobs:
                rows.append({"model": model, "dataset": dataset, "per_seed": per_seed_scores(jobs), "results": jobs})
    return rows


def table(rows, fingerprints) -> list[str]:
    header = ("| model | dataset | seeds | " + " | ".join(name for _, name, _ in SHOWN)
              + " | FD spread over sample draws | training min/seed | steps/s |")
    lines = [header, "|" + " --- |" * (len(SHOWN) + 6)]
    for row in rows:
        cells = []
        for key, _, digits in SHOWN:
            stat = mean_std(row["per_seed"], key)
            if stat is None:
                cells.append("–")
                continue
            mean, std = stat
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}" if len(row["per_seed"]) > 1 else f"{mean:.{digits}f}")
        jobs = row["results"]
        spread = sampling_spread(jobs, "fd")
        cost = report.cost_cells(jobs)
        lines.append(f"| {row['model']} | {row['dataset']} | {len(row['per_seed']) if jobs else '–'} | "
                     + " | ".join(cells) + f" | {'–' if spread is None else f'± {spread:.1f}'} | {cost} |")
    lines.append("")
    lines.append("Evaluator fingerprints: " + ", ".join(f"{d} `{f}`" for d, f in fingerprints.items())
                 + " (gan_lab's own classifiers, not Inception: FD/KD are not FID/KID).")
    return lines


def against_dcgan(rows) -> list[str]:
    """Each model's FD against dcgan's on the same dataset. A difference is called only where it exceeds
    the two models' training-seed spreads added (their ±1 std ranges do not overlap); else tied."""
    lines = ["| model | " + " | ".join(f"{d}: FD vs dcgan" for d in DATASETS) + " |", "|---|" + "---|" * len(DATASETS)]
    by_key = {(r["model"], r["dataset"]): (*mean_std(r["per_seed"], "fd"), len(r["per_seed"])) for r in rows if r["results"]}
    for model in sorted({m for m, _ in by_key} - {"dcgan"}):
        cells = []
        for dataset in DATASETS:
            ours, ref = by_key.get((model, dataset)), by_key.get(("dcgan", dataset))
            if ours is None or ref is None:
                cells.append("–")
                continue
            difference = ours[0] - ref[0]
            if min(ours[2], ref[2]) < 2:  # no training-seed spread to judge the difference by
                verdict = "not called (1 seed)"
            else:
                verdict = ("tied" if abs(difference) <= ours[1] + ref[1]
                           else ("**better**" if difference < 0 else "worse"))
            cells.append(f"{verdict} ({difference:+.1f}, {ours[0] / ref[0]:.2f}x)")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def bar_reference(model: str, fds: dict, dataset: str) -> str | None:
    """The model a model's FD is held against: dcgan, or for a VAE (they blur by design) the VAE with the
    lowest mean FD on that dataset; None where it has not finished."""
    if registry.get(model).family != "VAEs":
        return "dcgan" if ("dcgan", dataset) in fds else None
    vaes = [m for m, d in fds if d == dataset and registry.get(m).family == "VAEs"]
    return min(vaes, key=lambda m: fds[(m, dataset)]) if vaes else None


def the_bar_text() -> list[str]:
    return [f"Does each model learn at this budget (issue 26's bar, gan_lab/quality.py)? Every class drawn by every "
            f"training seed (class coverage 1.0) and a mean FD at most {quality.FD_BAR:g}x dcgan's on the same dataset; "
            f"for a VAE, which blurs by design, {quality.FD_BAR:g}x the best VAE's (the best VAE is its own reference)."]


def the_bar(rows) -> list[str]:
    """Issue 26's bar at this study's budget, per model and dataset: every class drawn by every training
    seed, and a mean FD at most FD_BAR x its reference's (bar_reference)."""
    fds = {(r["model"], r["dataset"]): mean_std(r["per_seed"], "fd")[0] for r in rows if r["results"]}
    coverage = {(r["model"], r["dataset"]): [s["class_coverage"] for s in r["per_seed"]] for r in rows if r["results"]}
    lines = ["| model | " + " | ".join(f"{d}: learns?" for d in DATASETS) + " |", "|---|" + "---|" * len(DATASETS)]
    for model in sorted({m for m, _ in fds}):
        cells = []
        for dataset in DATASETS:
            reference = bar_reference(model, fds, dataset)
            if (model, dataset) not in fds or reference is None:
                cells.append("–")
                continue
            ratio = fds[(model, dataset)] / fds[(reference, dataset)]
            missing = [c for c in coverage[(model, dataset)] if not quality.draws_every_class(c)]
            ratio_text = "the reference" if reference == model else f"{ratio:.2f}x {reference}'s FD"
            if all(quality.learns(fds[(model, dataset)], fds[(reference, dataset)], c) for c in coverage[(model, dataset)]):
                cells.append(f"**yes** ({ratio_text})")
            else:
                why = ([f"{ratio_text}"] if ratio > quality.FD_BAR else []) + (
                    [f"{len(missing)} of {len(coverage[(model, dataset)])} seeds miss a class "
                     f"(coverage down to {min(missing):.2f})"] if missing else [])
                cells.append("no: " + "; ".join(why))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return lines


def plot(rows, path: Path) -> None:
    from matplotlib.figure import Figure

    models = [r["model"] for r in rows if r["dataset"] == DATASETS[0] and r["results"]]
    fd_mnist = {r["model"]: mean_std(r["per_seed"], "fd")[0] for r in rows if r["dataset"] == DATASETS[0] and r["results"]}
    models.sort(key=lambda m: fd_mnist[m])
    fig = Figure(figsize=(13, 6.5))
    axes = fig.subplots(2, 1)
    for ax, (key, name) in zip(axes, [("fd", "FD ↓ (log scale)"), ("recall", "recall ↑")]):
        for offset, dataset in enumerate(DATASETS):
            stats = []
            for model in models:
                found = [r for r in rows if r["model"] == model and r["dataset"] == dataset and r["results"]]
                stats.append(mean_std(found[0]["per_seed"], key) if found else (np.nan, 0.0))
            xs = np.arange(len(models)) + (offset - 0.5) * 0.38
            ax.bar(xs, [s[0] for s in stats], 0.36, yerr=[s[1] for s in stats], capsize=2, label=dataset)
        ax.set_xticks(np.arange(len(models)), models)
        ax.set_ylabel(name)
        ax.grid(axis="y", alpha=0.3)
        if key == "fd":
            ax.set_yscale("log")
    axes[0].legend()
    axes[0].set_title("gan_lab's models on MNIST vs Fashion-MNIST (mean ± std over training seeds; sorted by MNIST FD)")
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)


def time_to_quality(args) -> list[str]:
    """Wall time (training only, compile included; evaluation excluded) until DCGAN on MNIST reaches
    FD <= target on 2,000 samples, for gan_lab and for the PyTorch reference, same hyper-parameters."""
    import ttq  # beside this script

    return ttq.race(args.target_fd, args.ttq_max_steps, args.ttq_every, args.width, args.data_dir)


def zoo_sheets(study_dir: Path, models, seed: int = 0) -> list[Path]:
    """The pictures of the zoo, from each model's training-seed-0 job: every model's samples on both
    datasets with the same noise (samples/compare_models-samples.png), a wardrobe sheet for every
    conditional model and for infoGAN's categorical code, and infoGAN's continuous-code walks, on
    Fashion-MNIST. Written to a scratch file first, then over the committed copy (git keeps the old)."""
    import shutil
    import tempfile

    from gan_lab import runs, sheets

    runs_of = {(m, d): study_dir / study.Job(m, d, 0).name for m in models for d in DATASETS}
    if not all((path / study.RESULT_FILE).exists() for path in runs_of.values()):
        return []  # the seed-0 jobs are not all done yet
    made = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        made["compare_models-samples.png"] = sheets.compare(runs_of, models, DATASETS, scratch / "all.png", seed=seed)
        for model in models:
            fashion = runs_of[(model, "fashion-mnist")]
            built = runs.load_trained(fashion).model
            kinds = {code.kind for code in built.codes}
            if built.conditional or "categorical" in kinds:  # a class, or a code that plays one (infoGAN)
                made[f"wardrobe-{model}-fashion-mnist.png"] = sheets.wardrobe(fashion, seed, out=scratch / f"w-{model}.png")
            if "uniform" in kinds:  # continuous codes: a walk along each
                made[f"codes-{model}-fashion-mnist.png"] = sheets.code_walks(fashion, seed, out=scratch / f"c-{model}.png")
        (ROOT / "samples" / "zoo").mkdir(parents=True, exist_ok=True)
        written = []
        for name, path in made.items():
            target = ROOT / "samples" / ("" if name.startswith("compare_models") else "zoo") / name
            shutil.copyfile(path, target)
            written.append(target)
    return written


def documented_tag() -> str:
    """The setting the docs quote (study.CPU_EPOCHS, CPU_WIDTH, CPU_DRAWS): it owns RESULTS, PLOT and samples/zoo."""
    return study.setting_tag(study.training_settings(study.CPU_EPOCHS, study.CPU_WIDTH, None), evaluation.EVAL_SAMPLES,
                             study.CPU_DRAWS)


def outputs(tag: str) -> tuple[Path, Path]:
    """(results page, plot) of a setting: the documented one's are RESULTS and PLOT; any other setting's
    carry its tag, so a study at another budget never overwrites the pages the docs quote."""
    if tag == documented_tag():
        return RESULTS, PLOT
    return RESULTS.with_name(f"compare_models-{tag}.md"), PLOT.with_name(f"compare_models-{tag}.png")


def restore_kept(study_dir: Path, training: dict, args) -> None:
    """Write the repository's copy of this setting's finished jobs into the study directory, where it
    has none of its own: the study then skips them and the report counts them. A job kept with the
    settings its run trained with is left out (trained again) where they are not today's (a model's
    default changed since); jobs kept before their settings were, are restored as they are."""
    kept = json.loads(KEPT.read_text()).get(args.tag, {}) if KEPT.exists() else {}
    if not kept:
        return
    study.fix_settings(study_dir, study.study_settings(training, args.n_eval, range(args.sample_seeds)))
    for name, result in kept.items():
        path = study_dir / name / study.RESULT_FILE
        if path.exists():
            continue
        if "config" in result:
            changed = study.settings_changed(result["config"], study.Job(**result["job"]), training)
            if changed:
                print(f"{name}: kept, but trained with other settings than today's ({', '.join(changed)}): "
                      "trained again")
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        files.replace_atomically(path, json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2) + "\n")


def keep_results(tag: str, results: dict, study_dir: Path) -> None:
    """Add this setting's finished jobs to the repository's copy (other settings' are left as they are),
    each with the settings its run trained with (its config.json), so a later default change shows."""
    def change(kept: dict) -> None:
        setting = kept.setdefault(tag, {})
        for job, result in results.items():
            saved = study_dir / job.name / "config.json"
            entry = dict(result)
            if saved.exists():
                entry["config"] = json.loads(saved.read_text())
            elif "config" in setting.get(job.name, {}):  # restored from the copy: no run here
                entry["config"] = setting[job.name]["config"]
            setting[job.name] = entry

    update_kept(KEPT, change)


def main() -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--epochs", type=int, default=study.CPU_EPOCHS)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per (model, dataset)")
    parser.add_argument("--seed-order", type=int, nargs="+", default=None, metavar="SEED",
                        help="train the seeds in this order, e.g. 1 2 0: seed 0 last, when learning_curves.py's "
                             "seed-0 runs can be adopted (default: 0, 1, ...; with --shard, give every shard the "
                             "same order)")
    parser.add_argument("--adopt-runs", nargs="*", default=None, metavar="DIR",
                        help="directories of finished runs a job takes instead of training when their settings and "
                             "budget are the job's, e.g. learning_curves.py's (default: its directories under "
                             "experiments/out/curves; none: --adopt-runs with no DIR)")
    parser.add_argument("--sample-seeds", type=int, default=study.CPU_DRAWS, help="sample draws scored per trained model")
    parser.add_argument("--width", type=float, default=study.CPU_WIDTH)
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
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="run shard K of N of the jobs (processes or hosts sharing experiments/out/compare)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the tables from the jobs finished so far (e.g. while the study runs)")
    args = parser.parse_args()
    if args.quick:
        args.width, args.subset, args.seeds, args.n_eval = 0.125, 512, 2, 1000
        args.ttq_max_steps, args.ttq_every = 40, 20
    models = args.models or registry.names()
    unknown = [m for m in models if m not in registry.names()]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; valid models: {', '.join(registry.names())}")
    training = study.training_settings(args.epochs, args.width, args.subset)
    tag = args.tag = study.setting_tag(training, args.n_eval, args.sample_seeds)

    started = time.perf_counter()
    seed_order = args.seed_order or list(range(args.seeds))
    if sorted(seed_order) != list(range(args.seeds)):
        parser.error(f"--seed-order {' '.join(map(str, seed_order))}: give each of the seeds 0 to {args.seeds - 1} "
                     "once, e.g. " + " ".join(map(str, [*range(1, args.seeds), 0])))
    jobs = study.plan(models, DATASETS, seed_order)
    adopt_from = sorted(CURVES.glob("*")) if args.adopt_runs is None else [Path(d) for d in args.adopt_runs]
    study_dir = OUT / tag
    if not args.quick:  # jobs finished on another machine count as done here (their result.json, no run)
        restore_kept(study_dir, training, args)
    if args.report_only:
        results = study.finished(study_dir, jobs, training)  # a result of a model's former defaults is no row
        args.skip_ttq = True
    else:
        # Each job is kept in the repository's copy as it ends: a study outlives the machine it started on.
        keep = None if args.quick else (lambda job, result: keep_results(tag, {job: result}, study_dir))
        study.run_study(study_dir, study.shard(jobs, args.shard), training, args.n_eval, range(args.sample_seeds),
                        args.data_dir, show_progress=not args.no_progress, on_result=keep, adopt_from=adopt_from)
        results = study.finished(study_dir, jobs, training)  # with other shards' jobs, where they have finished
    if not args.quick:
        keep_results(tag, results, study_dir)
    rows, fingerprints = [], {}
    for dataset in DATASETS:
        test_images = data.to_model_range(data.load_split(dataset, "test", args.data_dir)[0])
        real = real_data_row(dataset, args, test_images)
        fingerprints[dataset] = real["per_seed"][0]["evaluator"]
        rows += [real] + group(results, models, [dataset])
    lines = table(rows, fingerprints) + ["", *against_dcgan(rows), "", *the_bar_text(), "", *the_bar(rows)]
    if not args.skip_ttq:
        lines += ["", *time_to_quality(args)]
    minutes = (time.perf_counter() - started) / 60
    timed = study.trained_here(results.values())
    hours = sum(r["train_seconds"] for r in timed) / 3600
    adopted = len(results) - len(timed)
    done = f"{len(results)} of {len(jobs)} jobs finished" + (" (the study is still running)" if len(results) < len(jobs) else "")
    settings = (f"{done}. Settings: {args.epochs} epoch(s) per model ({args.subset or 60000} training images), width "
                f"{args.width}, {args.seeds} training seeds, each scored on {args.sample_seeds} draws of {args.n_eval} "
                f"generated vs the 10,000 test images. Command: `python {' '.join(sys.argv)}`; training took "
                f"{hours:.1f} h in all (sum over jobs, on this machine's CPU)"
                + (f", not counting {adopted} job(s) adopted from learning_curves.py's runs of the same settings "
                   "(their cost columns use the other seeds)" if adopted else "")
                + f"; this invocation {minutes:.0f} min. "
                "Metrics are means over sample draws, then mean ± std over training seeds. In the FD-vs-dcgan table a "
                "difference is called only where it exceeds the two models' training-seed stds added; else tied.")
    lines = [settings, "", *lines]
    if not args.quick:
        documented = tag == documented_tag()
        results_page, plot_path = outputs(tag)
        write_result(results_page, "\n".join(lines) + "\n")
        plot(rows, plot_path)
        # The samples the README shows are the documented setting's; another setting's study would replace them.
        for path in zoo_sheets(study_dir, models) if documented else []:
            print(f"wrote {path.relative_to(ROOT)}")
        page = report.write(study_dir, ROOT / "experiments" / "results" / f"study-{tag}", args.data_dir)
        print(f"wrote {page.relative_to(ROOT)} (python -m gan_lab report {study_dir})")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
