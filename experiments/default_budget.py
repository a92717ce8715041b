"""Models at their own defaults and default budget: what `gan_lab train MODEL` gives (issue 26, item 1).

    python experiments/default_budget.py                                   # the VAEs on Fashion-MNIST
    python experiments/default_budget.py --models vae --datasets mnist fashion-mnist
    python experiments/default_budget.py --report-only                     # the page from what is done

Issue 26 asks every model to draw every class (evaluator class coverage 1.0) within the budget the
README proposes for it: its default number of epochs (`gan_lab list`, `gan_lab train --help`) at full
width. The learning curves and the study train at half width for a few epochs; this trains each model
exactly as `gan_lab train MODEL --dataset D` does (every setting its default, training seed 0) and
scores it as the study does (gan_lab/study.py: 2 draws of 10,000 samples against the test set).

Each (model, dataset) is one job of a study under experiments/out/default-budget/ (resumable: a stopped
command continues where it stopped). Writes experiments/results/default_budget.md. Not timed on an
idle machine yet: the conv vae at full width trained 0.8 steps/s (of 469 an epoch) on this 2-core CPU
while four other experiments ran; the GANs' 25 epochs at full width are hours each on a CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from gan_lab import config, evaluation, quality, registry, runtime, study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from bench import cpu_model  # noqa: E402  (beside this script)
from docs_sync import write_result  # noqa: E402

OUT = ROOT / "experiments" / "out" / "default-budget"
RESULTS = ROOT / "experiments" / "results" / "default_budget.md"
DATASETS = ("mnist", "fashion-mnist")
VAES = ("vae", "cvae", "vae-mlp")
SEED = 0
DRAWS = range(study.CPU_DRAWS)


def row(job: study.Job, result: dict) -> str:
    draws = result["scores"]
    mean = lambda key: statistics.mean(d[key] for d in draws) if key in draws[0] else None  # noqa: E731
    cfg = config.load(OUT / job.name / "config.json")  # what the job trained with, not today's defaults
    changed = config.differing_fields(cfg, study.job_config(job, {}))
    stale = f" (trained before a defaults change: {', '.join(changed)})" if changed else ""
    elbo = mean("test_neg_elbo")
    coverage = mean("class_coverage")
    return (f"| {job.model}{stale} | {job.dataset} | {result['epochs']:.0f} | {getattr(cfg, 'width', None) or '–'} | "
            f"{mean('fd'):.1f} | {coverage:.2f} | {mean('effective_classes'):.2f} | {mean('recall'):.3f} | "
            f"{'–' if elbo is None else f'{elbo:.1f}'} | {'yes' if quality.draws_every_class(coverage) else '**no**'} | "
            f"{result['train_seconds'] / 60:.0f} |")


def main() -> None:
    runtime.configure()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(VAES), choices=registry.names())
    parser.add_argument("--datasets", nargs="+", default=["fashion-mnist"], choices=list(DATASETS))
    parser.add_argument("--n-eval", type=int, default=evaluation.EVAL_SAMPLES)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="train nothing: the page from the jobs done")
    args = parser.parse_args()
    jobs = study.plan(args.models, args.datasets, [SEED])
    every_job = study.plan(registry.names(), DATASETS, [SEED])
    if not args.report_only:
        # {}: no study-wide setting, so each job trains with every one of its model's defaults.
        study.run_study(OUT, jobs, {}, args.n_eval, DRAWS, args.data_dir, show_progress=not args.no_progress)
    done = study.finished(OUT, every_job)
    rows = [row(job, result) for job, result in sorted(done.items())]
    write_result(RESULTS, f"""# Models at their defaults and default budget

`python experiments/default_budget.py` (the jobs so far: {len(done)}), on {cpu_model()}. Each model trained
as `gan_lab train MODEL --dataset D` trains it: every setting its default (its epochs, full width,
its batch size), training seed {SEED}; scored on {len(DRAWS)} draws of {args.n_eval:,} samples against the
test set (means over the draws). "every class": evaluator class coverage 1.0 (each class at least 1% of
the samples), issue 26's bar. Minutes: training time on this machine, shared with other jobs.

| model | dataset | epochs | width | FD | class coverage | effective classes | recall | test −ELBO (nats) | every class | minutes |
|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
