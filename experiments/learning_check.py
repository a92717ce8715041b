"""What would a CI learning check cost? Issue 26's item 4 asks for a test per model in which a short run
at the defaults, on real data, must reach a measured FD threshold, within the suite's time. This measures
the check at the cheapest budget there is, the test suite's own tiny shape (width 0.125, batches of 32,
256 MNIST images: tests/helpers.py), whose training steps the suite already compiles for every model.

    python experiments/learning_check.py                      # every model (one to three minutes each here)
    python experiments/learning_check.py --models dcgan vae   # measure some; keeps the others
    python experiments/learning_check.py --report-only        # the page from what is measured

Each model, at its defaults narrowed to BUDGET's width and batch size (the lab's budget knobs, not the
model's recipe), trains each of SEEDS alone through the plain loop (the path `gan_lab train` takes) and
is scored at step 0 and at every point of STEP_LADDER: the FD of BUDGET["samples"] samples against the
test set. A check's step count would be the first point where every seed's FD is at most LEARNED x its
initial FD, and its threshold halfway between seed 0's initial FD and the worst seed's FD there: a run
that learns half as far as the slowest seed did passes, one that does not learn fails. Memorising 256
images is learning too: the check asks whether a model moves from noise toward the data at all.
Each model is written to experiments/results/learning_check.json as soon as it is measured; the page
is experiments/results/learning_check.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np

from gan_lab import config, data, evaluation, metrics, registry, runtime, sampling, trainer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from bench import cpu_model  # noqa: E402  (beside this script)
from docs_sync import write_result  # noqa: E402

MEASURED = ROOT / "experiments" / "results" / "learning_check.json"
RESULTS = ROOT / "experiments" / "results" / "learning_check.md"
STEP_LADDER = (128, 256, 384, 512, 768, 1024)
SEEDS = (0, 1, 2)
LEARNED = 0.7  # "has clearly started to learn": FD down by 30% from the initial state's

BUDGET = {"dataset": "mnist", "width": 0.125, "batch_size": 32, "images": 256, "samples": 1000}


def check_config(model: str, steps: int, seed: int = 0) -> config.Config:
    """The model's defaults at the check's width and batch size, for `steps` steps."""
    return config.make_config(model, {"dataset": BUDGET["dataset"], "width": BUDGET["width"],
                                      "batch_size": BUDGET["batch_size"], "steps": steps, "epochs": 10**6,
                                      "log_every": 10**6, "seed": seed}, strict=False)  # vae-mlp has no width


def score(cfg, model, state, data_dir=None) -> tuple[float, float]:
    """(FD, class coverage) of BUDGET["samples"] samples (sample seed 0) against the test set."""
    generated, _ = sampling.export_samples(model, state, jax.random.key(0), BUDGET["samples"])
    features, logits = metrics.load_evaluator(cfg.dataset).features_and_logits(data.to_model_range(generated))
    real = evaluation.reference(cfg.dataset, data_dir)
    return (float(metrics.frechet_distance(np.asarray(features), real.features)),
            float(metrics.class_coverage(np.asarray(logits))))


def measure(model_name: str, steps: list[int], seed: int = 0, data_dir=None) -> dict[int, tuple[float, float]]:
    """{step: (FD, class coverage)} of one seed at step 0 (the initial state) and at each of `steps`,
    trained in legs that continue one another (a continued run has the same bits as a straight one)."""
    cfg = check_config(model_name, max(steps), seed)
    model = registry.build(cfg)
    images, labels = data.load_split(cfg.dataset, "train", data_dir)
    images, labels = data.to_device(images[:BUDGET["images"]], labels[:BUDGET["images"]])
    loop = trainer.init_loop_state(model, cfg.seed)
    found = {0: score(cfg, model, loop.model, data_dir)}
    for step in sorted(steps):
        loop = trainer.fit(model, dataclasses.replace(cfg, steps=step), images, labels, loop=loop,
                           show_progress=False)
        found[step] = score(cfg, model, loop.model, data_dir)
    return found


def choose(found: dict) -> dict:
    """The check's steps and threshold from one model's measurements ({step: [(fd, coverage) per seed]})."""
    initial = found[0]
    learned = [step for step in sorted(found) if step and all(
        fd <= LEARNED * start for (fd, _), (start, _) in zip(found[step], initial))]
    if not learned:
        return {"steps": None, "fd_threshold": None}
    steps = learned[0]
    worst = max(fd for fd, _ in found[steps])
    return {"steps": steps, "fd_threshold": round((initial[0][0] + worst) / 2, 1)}


def table(entries: dict) -> str:
    rows = ["| model | steps | threshold | FD at step 0, seed 0 | FD at the steps, seeds " + "/".join(map(str, SEEDS))
            + " | FD at the ladder's end | class coverage at the steps | seconds |",
            "|---|---|---|---|---|---|---|---|"]
    for name, entry in sorted(entries.items()):
        measured = entry["measured"]
        at = measured.get(str(entry["steps"])) if entry["steps"] else None
        fds = "/".join(f"{fd:.0f}" for fd, _ in at) if at else f"never at most {LEARNED}x the initial FD"
        cover = "/".join(f"{c:.1f}" for _, c in at) if at else ""
        last = measured[str(max(int(step) for step in measured))]
        rows.append(f"| {name} | {entry['steps'] or '–'} | {entry['fd_threshold'] or '–'} | {measured['0'][0][0]:.0f} | "
                    f"{fds} | {'/'.join(f'{fd:.0f}' for fd, _ in last)} | {cover} | {entry['seconds']:.0f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=registry.names(), choices=registry.names())
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the page from experiments/results/learning_check.json")
    args = parser.parse_args()
    runtime.configure()
    kept = json.loads(MEASURED.read_text()) if MEASURED.exists() else {"models": {}}
    setting = {"budget": BUDGET, "seeds": list(SEEDS), "ladder": list(STEP_LADDER), "learned": LEARNED}
    if any(kept.get(key) != value for key, value in setting.items()):
        kept = {"models": {}}  # another budget or rule: the old entries measured something else
    for name in [] if args.report_only else args.models:
        started = time.perf_counter()
        per_seed = [measure(name, list(STEP_LADDER), seed, args.data_dir) for seed in SEEDS]
        found = {step: [seed_found[step] for seed_found in per_seed] for step in per_seed[0]}
        entry = {**choose(found), "measured": {str(k): v for k, v in found.items()},
                 "seconds": time.perf_counter() - started}
        kept["models"][name] = entry
        print(f"{name}: steps {entry['steps']}, threshold {entry['fd_threshold']}, "
              + ", ".join(f"{k}: {'/'.join(f'{fd:.0f}' for fd, _ in v)}" for k, v in found.items()), flush=True)
        kept.update(setting, cpu=cpu_model())
        MEASURED.write_text(json.dumps(kept, indent=1) + "\n")
    budget = BUDGET
    entries = kept["models"]
    learned = sorted(name for name, entry in entries.items() if entry["steps"])
    initial_fd = float(np.median([entry["measured"]["0"][0][0] for entry in entries.values()])) if entries else float("nan")
    write_result(RESULTS, f"""# What a CI learning check would cost (issue 26, item 4)

Written by `python experiments/learning_check.py` on {kept.get('cpu', 'this machine')}: {len(entries)} of
{len(registry.names())} models measured. Each model at its defaults, width {budget['width']}, batch
{budget['batch_size']} (the test suite's tiny shape), trained on the first {budget['images']:,} MNIST training
images, each of seeds {', '.join(map(str, SEEDS))} alone; FD of {budget['samples']:,} samples against the test set
at step 0 and at each of {', '.join(map(str, STEP_LADDER))} steps. "steps": the first point where every seed's
FD is at most {LEARNED}x its initial FD; "threshold": halfway between seed 0's initial FD and the worst
seed's FD there. "seconds": the whole measurement of a model (three seeds, every point of the ladder), here.

{len(learned)} of the {len(entries)} measured models learn at this budget within {max(STEP_LADDER)} steps
({', '.join(learned) or 'none'}). The others never reach {LEARNED}x their initial FD here (an untrained
generator's grey images score {initial_fd:.0f}, the median over models): at this shape a check could not tell them from a broken model,
and they need wider nets and more steps (their learning curves at width 0.5:
experiments/results/learning_curves.md), which the suite's 10 minutes on 2 cores cannot hold.

{table(kept['models'])}
""")


if __name__ == "__main__":
    main()
