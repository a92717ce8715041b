"""Does `--precision bf16` hurt quality? dcgan after one epoch in bf16, against the spread of 3 float32 seeds.

    python experiments/precision_quality.py        # ~30 min on 2 cores; resumable; writes
                                                   # experiments/results/precision_quality-<vendor>.md

The float32 side is the comparison study's dcgan jobs at the CPU setting (1 epoch, width 0.5, each
trained model scored on 2 draws of 10,000 samples against the test set: experiments/compare_models.py,
kept in experiments/results/compare_models.json). The bf16 side trains the same 3 seeds with
`--precision bf16` at that setting through the same `gan_lab study` code and scores them the same
way. bf16 passes where its mean FD lies within the float32 seeds' range (min to max) on each dataset.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

from gan_lab import runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, cpu_vendor, publish, vendor_results  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "experiments" / "results" / "compare_models.json"  # the float32 study's results, by setting
OUT = ROOT / "experiments" / "out"
DATASETS = ("mnist", "fashion-mnist")
MODEL = "dcgan"


def mean_fd(result: dict) -> float:
    """A trained model's FD: the mean over its scored sample draws."""
    return statistics.fmean(score["fd"] for score in result["scores"])


def table(f32: dict, bf16: dict, seeds) -> list[str]:
    lines = ["| dataset | float32 FD per seed | float32 mean ± std [min, max] | bf16 FD per seed | bf16 mean ± std | "
             "bf16 mean within the float32 range |", "|---|---|---|---|---|---|"]
    verdicts = []
    for dataset in DATASETS:
        a = [mean_fd(f32[(dataset, s)]) for s in seeds]
        b = [mean_fd(bf16[(dataset, s)]) for s in seeds]
        within = min(a) <= statistics.fmean(b) <= max(a)
        verdicts.append(within)
        lines.append(f"| {dataset} | {', '.join(f'{x:.1f}' for x in a)} | {statistics.fmean(a):.1f} ± "
                     f"{statistics.stdev(a):.1f} [{min(a):.1f}, {max(a):.1f}] | {', '.join(f'{x:.1f}' for x in b)} | "
                     f"{statistics.fmean(b):.1f} ± {statistics.stdev(b):.1f} | {'yes' if within else '**no**'} |")
    return lines + ["", f"bf16 within the float32 seeds' spread on both datasets: **{'yes' if all(verdicts) else 'no'}**."]


def main() -> None:
    runtime.configure()  # gan_lab's process settings, before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    from gan_lab import evaluation, study

    started = time.perf_counter()
    f32_training = study.training_settings(study.CPU_EPOCHS, study.CPU_WIDTH, None)
    f32_tag = study.setting_tag(f32_training, evaluation.EVAL_SAMPLES, study.CPU_DRAWS)
    kept = json.loads(KEPT.read_text()).get(f32_tag, {})
    seeds = range(args.seeds)
    f32 = {}
    for dataset in DATASETS:
        for seed in seeds:
            name = study.Job(MODEL, dataset, seed).name
            if name not in kept:
                sys.exit(f"{KEPT} has no float32 result for {name} at {f32_tag}: run "
                         f"`python experiments/compare_models.py --models {MODEL}` first")
            f32[(dataset, seed)] = kept[name]
    training = study.training_settings(study.CPU_EPOCHS, study.CPU_WIDTH, None, "bf16")
    tag = study.setting_tag(training, evaluation.EVAL_SAMPLES, study.CPU_DRAWS)
    jobs = study.plan([MODEL], DATASETS, seeds)
    done = study.run_study(OUT / f"study-{tag}", jobs, training, evaluation.EVAL_SAMPLES, range(study.CPU_DRAWS),
                           args.data_dir, show_progress=not args.no_progress)
    bf16 = {(job.dataset, job.seed): result for job, result in done.items()}
    hours = sum(r["train_seconds"] for r in bf16.values()) / 3600
    lines = [
        f"# {MODEL} after one epoch: `--precision bf16` against float32 seeds",
        "",
        f"Command: `python experiments/precision_quality.py`, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"CPU: {cpu_model()} ({cpu_vendor()}). Setting: {study.CPU_EPOCHS} epoch, width {study.CPU_WIDTH}, batch 64 "
        f"(the study's CPU setting), seeds {', '.join(map(str, seeds))}; each trained model's FD is the mean of "
        f"{study.CPU_DRAWS} draws of {evaluation.EVAL_SAMPLES:,} samples "
        "against the 10,000 test images (gan_lab's evaluator features). float32: the comparison study's jobs "
        f"({KEPT.relative_to(ROOT)}, setting {f32_tag}); bf16: trained here ({hours:.2f} h of training, "
        f"{(time.perf_counter() - started) / 60:.0f} min for this invocation). Speed is not compared here (the runs "
        "were not made side by side): see experiments/bench.py's bf16 rows.",
        "",
        *table(f32, bf16, seeds),
    ]
    publish("\n".join(lines) + "\n", vendor_results("precision_quality"))


if __name__ == "__main__":
    main()
