"""Learning curves (issue 26): FD and class coverage of every model against the training images it has
seen, dense in the first epoch (every 1/8) and then once per epoch, and the images seen when each
model first reaches 2x its final FD: "one epoch is too short" becomes a number.

    python experiments/learning_curves.py                              # every model, both datasets, 4 epochs
    python experiments/learning_curves.py --models dcgan wgan --epochs 2
    python experiments/learning_curves.py --report-only                # figures and table from what is done

Each (model, dataset) is one ordinary run directory under experiments/out/curves/<setting>/, trained
in legs with a rising --steps limit (runs resume bit for bit) and its generator scored at the end of
each leg; each point is written to the run's curve.json as soon as it is scored, so a stopped command
continues where it stopped and nothing is trained or scored twice. Every model sees the same images
at each point (a WGAN's step takes n_critic batches, so it has fewer steps). Scores: one draw of
--n-eval samples (sample seed 0) against the test set, with the lab's evaluators. Writes
experiments/results/learning_curves.md and samples/learning_curves-<dataset>.png.

Each curve's points and its run's settings are also kept, point by point, in
experiments/results/learning_curves.json (in the repository): on a new machine a finished curve is
restored from there instead of trained again, and one trained with other settings than today's
defaults is drawn again. The page is written only from curves of today's defaults, and only once every
curve is finished (or with --partial, naming the curves it lacks), so it never loses rows silently.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from gan_lab import config as config_lib
from gan_lab import data, evaluation, files, registry, runs, runtime, study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
from docs_sync import update_kept, write_result  # noqa: E402  (beside this script)

OUT = ROOT / "experiments" / "out" / "curves"
RESULTS = ROOT / "experiments" / "results" / "learning_curves.md"
FIGURE = ROOT / "samples" / "learning_curves-{dataset}.png"
CURVE_FILE = "curve.json"
KEPT = ROOT / "experiments" / "results" / "learning_curves.json"  # {setting: {job name: {"points", "config"}}}
DATASETS = ("mnist", "fashion-mnist")
FIRST_EPOCH_POINTS = 8  # points in the first epoch, where most models change most
NEAR_FINAL = 2.0  # "has learned": FD within this factor of the curve's last FD


def epoch_fractions(epochs: int) -> list[float]:
    """Where the curve is scored, in epochs: every 1/8 of the first epoch, then every epoch."""
    return [k / FIRST_EPOCH_POINTS for k in range(1, FIRST_EPOCH_POINTS + 1)] + list(range(2, epochs + 1))


def step_at(cfg, epochs: float) -> int:
    """The step at which the run has seen `epochs` epochs of images (of whole steps)."""
    return max(1, round(epochs * config_lib.steps_per_epoch(cfg)))


def images_to_near_final(points: list[dict]) -> int | None:
    """Training images seen at the first point whose FD is within NEAR_FINAL x the last point's."""
    final = points[-1]["fd"]
    return next((p["images"] for p in points if p["fd"] <= NEAR_FINAL * final), None)


def stale_fields(curves_dir: Path, job: study.Job, training: dict) -> list[str]:
    """The settings in which the job's run differs from what it would train with today (none: current)."""
    return study.stale_jobs(curves_dir, [job], training).get(job, [])


def kept_key(curves_dir: Path, epochs: int) -> str:
    """The repository copy's key of a setting: its directory's name (width, samples) and the curves' length."""
    return f"{curves_dir.name}-e{epochs}"


def keep_curve(curves_dir: Path, job: study.Job, points: list[dict], training: dict, epochs: int) -> None:
    """Add (or replace) one curve in the repository's copy, with the settings its run trained with; a
    kept curve of today's settings with more points than this one (a finished curve, this one drawn
    again on a machine that lacked it) stays."""
    saved = json.loads((curves_dir / job.name / "config.json").read_text())

    def change(kept: dict) -> None:
        curves = kept.setdefault(kept_key(curves_dir, epochs), {})
        old = curves.get(job.name)
        if old and len(old["points"]) > len(points) and not study.settings_changed(
                old["config"], job, {**training, "epochs": epochs}):
            return
        curves[job.name] = {"points": points, "config": saved}

    update_kept(KEPT, change)


def restore_kept(curves_dir: Path, training: dict, epochs: int) -> None:
    """Write each finished curve of the repository's copy that this machine lacks into curves_dir (its
    curve.json and config.json, no checkpoints: it needs no more training), unless it was trained with
    other settings than today's, which is then drawn again."""
    kept = json.loads(KEPT.read_text()).get(kept_key(curves_dir, epochs), {}) if KEPT.exists() else {}
    for name, curve in kept.items():
        run_dir = curves_dir / name
        if run_dir.exists() or len(curve["points"]) != len(epoch_fractions(epochs)):
            continue
        if study.settings_changed(curve["config"], study.Job(*job_of(name), 0), {**training, "epochs": epochs}):
            continue
        run_dir.mkdir(parents=True)
        files.replace_atomically(run_dir / CURVE_FILE, json.dumps(curve["points"], indent=1) + "\n")
        # config.json last: a run directory with it and no checkpoint is only ever a restored, finished curve.
        files.replace_atomically(run_dir / "config.json", json.dumps(curve["config"], indent=2) + "\n")


def job_of(name: str) -> tuple[str, str]:
    """(model, dataset) of a curve's directory name "<model>-<dataset>-seed0"."""
    # Longest name first: fashion-mnist's directories end in -mnist-seed0 too.
    dataset = next(d for d in sorted(DATASETS, key=len, reverse=True) if name.endswith(f"-{d}-seed0"))
    return name[: -len(f"-{dataset}-seed0")], dataset


def run_curve(curves_dir: Path, model: str, dataset: str, training: dict, epochs: int, n_eval: int,
              data_dir=None) -> list[dict]:
    """The curve's points, training and scoring the ones not yet in its curve.json."""
    job = study.Job(model, dataset, 0)
    run_dir, path = curves_dir / job.name, curves_dir / job.name / CURVE_FILE
    points = json.loads(path.read_text()) if path.exists() else []
    cfg = study.job_config(job, {**training, "epochs": epochs})
    # A run trained with other settings (e.g. the model's defaults changed since): its points are not this
    # setting's, so it is moved aside to <job>.stale-<n>, nothing deleted, and the curve drawn again.
    if study.set_aside_stale(curves_dir, [job], {**training, "epochs": epochs}):
        points = []
    for fraction in epoch_fractions(epochs)[len(points):]:
        steps = step_at(cfg, fraction)
        study.train_job(curves_dir, job, {**training, "epochs": epochs, "steps": steps}, data_dir)
        trained_cfg, trained_model, state, step = runs.load_trained(run_dir)
        assert step == steps, f"{run_dir} ended at step {step}, not {steps}"
        scores = evaluation.score(trained_cfg, trained_model, state, n_eval, seed=0, data_dir=data_dir)
        images = step * cfg.batch_size * trained_model.batches_per_step
        points.append({"epochs": images / (cfg.subset or data.SPLIT_SIZES["train"]), "images": images,
                       "steps": step, **{k: scores[k] for k in ("fd", "class_coverage", "precision", "recall")}})
        files.replace_atomically(path, json.dumps(points, indent=1) + "\n")
        keep_curve(curves_dir, job, points, training, epochs)
        print(f"{job.name}: {points[-1]['epochs']:.3f} epochs, FD {scores['fd']:.1f}, "
              f"coverage {scores['class_coverage']:.2f}", flush=True)
    return points


def read_curves(curves_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """Every curve's points, by (model, dataset); runs set aside (<job>.stale-<n>) are not curves."""
    return {job_of(path.parent.name): json.loads(path.read_text()) for path in sorted(curves_dir.glob(f"*-seed0/{CURVE_FILE}"))}


def plot(curves: dict, dataset: str, setting: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # this program draws files only
    import matplotlib.pyplot as plt

    fig, (fd_axis, coverage_axis) = plt.subplots(1, 2, figsize=(13, 5.5))
    # One colour per registered model (the same in both datasets' figures) and one line style per
    # family, so 15 curves stay apart.
    colors, models = plt.get_cmap("tab20"), registry.names()
    line_styles = dict(zip(registry.FAMILIES, ("-", "--", ":")))

    def color(model):  # tab20's 10 dark shades, then its 10 light ones; dcgan, the reference, in black
        index = models.index(model)
        return "black" if model == "dcgan" else colors((2 * index) % 20 + (2 * index) // 20)
    for (model, d), points in sorted(curves.items()):
        if d != dataset:
            continue
        x = [p["epochs"] for p in points]
        style = {"color": color(model), "linestyle": line_styles.get(registry.get(model).family, "-"),
                 "marker": "o", "markersize": 3, "label": model}
        fd_axis.plot(x, [p["fd"] for p in points], **style)
        coverage_axis.plot(x, [p["class_coverage"] for p in points], **style)
    fd_axis.set(yscale="log", xlabel="training images seen (epochs of 60,000)", ylabel="FD (lower is better)",
                title=f"{dataset}: FD")
    coverage_axis.set(xlabel="training images seen (epochs of 60,000)", ylabel="class coverage",
                      title=f"{dataset}: classes drawn", ylim=(0, 1.05))
    for axis in (fd_axis, coverage_axis):
        axis.grid(alpha=0.3)
    coverage_axis.legend(fontsize=8, ncol=2, loc="lower right")
    fig.suptitle(f"Learning curves, {setting} (experiments/learning_curves.py)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table(curves: dict, setting: str, n_eval: int, epochs: int, missing=()) -> str:
    lines = [f"Setting: {setting}; each point one draw of {n_eval:,} samples against the test set. \"to 2x final\": "
             f"training images seen when the FD first came within {NEAR_FINAL:g}x of the curve's last FD. "
             "Command: `python experiments/learning_curves.py`.", "",
             "| model | dataset | epochs | FD at 1/8 epoch | FD at 1 epoch | final FD | final coverage | to 2x final "
             "(images) | to 2x final (epochs) |", "|---|---|---|---|---|---|---|---|---|"]
    for (model, dataset), points in sorted(curves.items(), key=lambda item: (item[0][1], item[0][0])):
        at_one = next((p["fd"] for p in points if math.isclose(p["epochs"], 1.0, rel_tol=0.02)), None)
        near = images_to_near_final(points)
        # Against an unfinished curve's last point, "2x final" would mean nothing yet.
        done = len(points) == len(epoch_fractions(epochs))
        to_near = f"{near:,} | {near / data.SPLIT_SIZES['train']:.2f}" if done else "(curve in progress) | –"
        lines.append(f"| {model} | {dataset} | {points[-1]['epochs']:.2f} | {points[0]['fd']:.1f} | "
                     f"{'–' if at_one is None else f'{at_one:.1f}'} | {points[-1]['fd']:.1f} | "
                     f"{points[-1]['class_coverage']:.2f} | {to_near} |")
    if missing:
        lines += ["", f"Not drawn with today's defaults yet ({len(missing)}): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=4, help="length of every curve (default 4)")
    parser.add_argument("--width", type=float, default=study.CPU_WIDTH, help="network width (default: the study's "
                        f"CPU setting, {study.CPU_WIDTH})")
    parser.add_argument("--n-eval", type=int, default=5000, help="samples scored per point (default 5000)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--report-only", action="store_true", help="figures and table from the points scored so far")
    parser.add_argument("--partial", action="store_true",
                        help="write the page and figures even while some curves are missing or unfinished")
    args = parser.parse_args()
    runtime.configure()
    models = args.models or registry.names()
    for model in models:
        registry.get(model)  # an unknown name: one line listing the valid ones
    setting = f"width {args.width}, {args.epochs} epochs, training seed 0, each model's defaults"
    curves_dir = OUT / f"w{args.width}-ev{args.n_eval}"
    training = study.training_settings(args.epochs, args.width, None)
    restore_kept(curves_dir, training, args.epochs)
    if not args.report_only:
        for model in models:  # model-major: a stopped command has whole curves
            for dataset in args.datasets:
                run_curve(curves_dir, model, dataset, training, args.epochs, args.n_eval, args.data_dir)
    # The page and figures show every curve of this setting, whichever models this command trained: a
    # command for a few models must not drop the others' curves from them. A curve whose run was trained
    # with other settings than today's defaults (a default changed since) is left out, and said so.
    curves = {}
    for (model, dataset), points in read_curves(curves_dir).items():
        if model not in registry.names() or not points:
            continue
        job = study.Job(model, dataset, 0)
        changed = stale_fields(curves_dir, job, {**training, "epochs": args.epochs})
        if changed:
            print(f"left out {model} on {dataset}: trained with other settings ({', '.join(changed)}); remove "
                  f"{curves_dir / job.name} and draw it again")
            continue
        curves[(model, dataset)] = points
    if not curves:
        print(f"no curves of this setting on this machine or in {KEPT.relative_to(ROOT)}: nothing written")
        return 1
    full = len(epoch_fractions(args.epochs))
    missing = [f"{model} on {dataset}" + ("" if (model, dataset) not in curves else " (in progress)")
               for model in registry.names() for dataset in DATASETS if len(curves.get((model, dataset), [])) < full]
    if missing and not args.partial:  # the committed page would lose those rows
        print(f"not written: {len(missing)} curve(s) not finished with today's defaults ({', '.join(missing)}); "
              "draw them, or pass --partial to write the page and figures without them")
        return 1
    for dataset in DATASETS:
        print(f"wrote {plot(curves, dataset, setting, Path(str(FIGURE).format(dataset=dataset))).relative_to(ROOT)}")
    write_result(RESULTS, table(curves, setting, args.n_eval, args.epochs, missing))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
