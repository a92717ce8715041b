"""Run directories: everything a training run writes, and the glue from a Config to trainer.fit.

A run directory holds config.json (resolved config, versions, device), metrics.jsonl, a fixed-noise
sample grid per epoch under samples/, and loss_curves.png at the end. An existing directory is never
overwritten.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan_lab import config as config_lib
from gan_lab import checkpoint, data, evaluation, files, plotting, registry, runtime, trainer
from gan_lab.errors import UserError

# One fixed key for every sample grid, so grids compare across epochs, runs, models and datasets.
GRID_NOISE_SEED = 2026
GRID_SIZE = 64


def grid_labels(n: int):
    """Class labels for a grid of n conditional samples: 0..9 repeating."""
    return jnp.arange(n, dtype=jnp.int32) % data.NUM_CLASSES


def new_run_dir(cfg, out: str | Path | None, runs_dir: str | Path = "runs") -> tuple[Path, files.RunLock]:
    """A new run directory (`out`, or runs_dir/<model>-<dataset>-<time>), created exclusively and locked
    for this process: two `train` commands in the same second get two directories, and nothing
    already there is reused."""
    if out is not None:
        path = Path(out)
        holder = files.RunLock(path).holder() if path.is_dir() else None
        if holder is not None:
            raise UserError(f"{path} is a run being trained right now by process {holder}; choose another --out")
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(f"{path} already exists; choose another --out, or continue that run with --resume {path}")
        path.mkdir(parents=True, exist_ok=True)
        lock = files.RunLock(path).acquire()
        if any(p.name != files.RunLock.NAME for p in path.iterdir()):  # filled between the check and the lock
            lock.release()
            raise UserError(f"{path} already exists; choose another --out")
        return path, lock
    base = Path(runs_dir) / f"{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 2
    while True:
        try:
            path.mkdir()
            return path, files.RunLock(path).acquire()
        except FileExistsError:
            path, n = base.with_name(f"{base.name}-{n}"), n + 1


def environment() -> dict:
    """What produced a run: package versions and the devices, saved beside the config."""
    packages = ["gan_lab", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy"]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    device = jax.devices()[0]
    return {
        "versions": {"python": platform.python_version(), **versions},
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "runtime": runtime.APPLIED,  # gan_lab's XLA flags and allocator settings (gan_lab/runtime.py)
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # all of them, the user's included
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of metrics.jsonl. A last line cut short (power lost or disk full mid-write) is left
    out: the resume that follows rewrites the file without it. A bad line before the end is an error."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise UserError(f"{path} line {number} is not a JSON record; repair or remove that line") from None
    return records


def training_records(run_dir: Path) -> list[dict]:
    """The training loop's records of metrics.jsonl (not the evaluations'): those with a step rate."""
    return [r for r in read_metrics(run_dir) if "steps_per_sec" in r]


def make_grid_sampler(model):
    """Jitted `model state -> GRID_SIZE images` from the fixed grid noise (and labels 0..9 if conditional)."""
    key = jax.random.key(GRID_NOISE_SEED)
    labels = grid_labels(GRID_SIZE) if model.conditional else None
    return jax.jit(lambda state: model.sample(state, key, GRID_SIZE, labels))


def resume_config(run_dir: Path, requested: dict, clear: tuple = ()):
    """The run's saved config with the flags the user gave (and the `clear` fields set back to None);
    an error names a field that would change the run."""
    check_run_dir(run_dir)
    saved = config_lib.load(Path(run_dir) / "config.json")
    changed = {k: v for k, v in requested.items() if v is not None}
    resumed = config_lib.with_values(saved, {**changed, **{k: None for k in clear}},
                                     registry.get(saved.model).settings)
    for name in config_lib.differing_fields(saved, resumed):
        raise UserError(
            f"cannot resume {run_dir} with {name}={getattr(resumed, name)!r}: it was trained with "
            f"{name}={getattr(saved, name)!r} (only {', '.join(sorted(config_lib.RESUMABLE_FIELDS))} may change "
            "on resume); start a new run for other settings"
        )
    if resumed.tensorboard and not saved.tensorboard:
        raise UserError(f"--tensorboard is chosen when a run starts: {run_dir} was started without it, so its "
                        "events would miss the steps trained so far; start a new run with --tensorboard")
    config_lib.validate(resumed)
    return resumed


def resumption_warnings(cfg, run_dir: Path) -> list[str]:
    """What makes this resumption differ from the run's start in ways that can change the last bits."""
    saved = json.loads((Path(run_dir) / "config.json").read_text())
    starts = [saved, *saved.get("resumed", [])]
    last, now = starts[-1], environment()
    warnings = []
    for package in ("jax", "jaxlib"):
        if last.get("versions", {}).get(package) != now["versions"][package]:
            warnings.append(f"{package} is {now['versions'][package]} now, {last['versions'].get(package)} when the "
                            "run last trained")
    if "xla_flags" in last and last["xla_flags"] != now["xla_flags"]:
        warnings.append(f"XLA_FLAGS is {now['xla_flags']!r} now, {last['xla_flags']!r} when the run last trained")
    devices_before = [start.get("config", saved["config"]).get("devices", 1) for start in starts][-1]
    if cfg.devices != devices_before:
        warnings.append(f"--devices {cfg.devices} differs from the {devices_before} the run last trained on "
                        "(the batch reductions run in another order)")
    return [f"warning: {w}: the resumed run equals a straight run to float tolerance, not bit for bit"
            for w in warnings]


def record_resumption(cfg, path: Path) -> int:
    """Update config.json for a resumed run, keeping what the first start recorded. Returns the number
    of this training session (the first start is session 1)."""
    saved = json.loads(path.read_text())
    extra = {k: v for k, v in saved.items() if k != "config"}
    extra["resumed"] = extra.get("resumed", []) + [{**environment(), "config": dataclasses.asdict(cfg)}]
    config_lib.save(cfg, path, extra)
    return 1 + len(extra["resumed"])


def drop_records_after(run_dir: Path, step: int) -> None:
    """Forget metrics logged after the checkpoint we resume from: those steps are trained again."""
    path = Path(run_dir) / "metrics.jsonl"
    if path.exists():
        kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
        files.replace_atomically(path, "".join(json.dumps(r) + "\n" for r in kept))


def make_epoch_scorer(cfg, model, data_dir):
    """`state -> metrics` with the evaluator networks (for --eval-every), on fewer samples than
    `gan_lab eval` so that scoring does not dominate training: 5,000 generated vs the test set."""
    return lambda state: evaluation.score(cfg, model, state, n=EPOCH_EVAL_SAMPLES, data_dir=data_dir)


EPOCH_EVAL_SAMPLES = 5_000


def open_tensorboard(run_dir: Path):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs tensorboardX: pip install -e '.[tensorboard]'") from None
    return SummaryWriter(str(Path(run_dir) / "tensorboard"))


class NothingToTrain(UserError):
    """A resumed run has already reached its target: not a failure, but nothing was done."""


class RunCheckpoints:
    """The run's checkpoint manager, saving each step at most once."""

    def __init__(self, run_dir: Path, saved_step: int | None):
        self.manager = checkpoint.manager(run_dir)
        self.saved_step = saved_step

    def save(self, loop) -> int:
        step = int(loop.step)
        if step != self.saved_step:
            checkpoint.save(self.manager, step, loop)
            self.saved_step = step
        return step

    def close(self) -> None:
        self.manager.close()


def restore_for_resume(run_dir: Path, abstract):
    """(loop state or None to start from step 0, its step). Damaged newest checkpoints are moved aside
    to RUN_DIR/checkpoints-unreadable/ (kept, not deleted) so the steps they held can be saved again."""
    try:
        restored = checkpoint.restore_latest(run_dir, abstract)
    except checkpoint.NoCheckpoint:
        print(f"{run_dir} has no checkpoint yet (it stopped before its first one): training again from step 0 "
              "with its saved settings", file=sys.stderr)
        return None, 0
    for step, reason in restored.skipped:
        aside = Path(run_dir) / "checkpoints-unreadable" / str(step)
        aside.parent.mkdir(exist_ok=True)
        (checkpoint.checkpoint_dir(run_dir) / str(step)).rename(aside)
        print(f"checkpoint of step {step} is unreadable ({reason}); moved to {aside}; resuming from step "
              f"{restored.step}", file=sys.stderr)
    return restored.state, restored.step


def train_run(cfg, out=None, data_dir=None, show_progress: bool = True, resume: Path | None = None,
              runs_dir: str | Path = "runs", on_start: Callable[[Path, int], None] | None = None) -> Path:
    """Train cfg.model on cfg.dataset in a new run directory (`out`, or a new one under `runs_dir`), or
    continue `resume`; returns the directory. on_start(run directory, step training starts from) runs
    once the directory exists, before the first step (the CLI prints it there, to be watched).

    Whatever way training ends, the run directory holds a usable run: a checkpoint at every epoch's
    end, every cfg.checkpoint_every steps, at the last step, and when a signal stops it (Ctrl-C,
    SIGTERM, SIGHUP); a process killed outright resumes from the newest of those. One process at a
    time trains a run (a lock in the run directory); in a multi-process run only process 0 writes
    the run's files, and every process takes part in the checkpoint saves, as Orbax requires.
    """
    model = registry.build(cfg)
    writer = jax.process_index() == 0
    if jax.process_count() > 1 and out is None and resume is None:
        raise UserError("a multi-process run needs --out RUN_DIR (a directory every process can reach)")
    loop = step = lock = None
    try:
        if resume is not None:
            run_dir = Path(resume)
            lock = files.RunLock(run_dir).acquire() if writer else None
            abstract = checkpoint.abstract_like(lambda: trainer.init_loop_state(model, cfg.seed))
            loop, step = restore_for_resume(run_dir, abstract)
            total = config_lib.total_steps(cfg)
            if step >= total:
                raise NothingToTrain(f"nothing left to train: {run_dir} has trained {step} steps "
                                     f"({describe_progress(cfg, step)}) and its target is {total}; raise --epochs "
                                     "or --steps to train further")
            for warning in resumption_warnings(cfg, run_dir):
                print(warning, file=sys.stderr)
        trainer.make_mesh(cfg.devices)  # like the data below, checked before a new run's directory exists
        train_data = data.load_for_model(cfg, "train", data_dir)  # before a new run's directory: bad data leaves none
        test_data = data.load_for_model(cfg, "test", data_dir) if model.evaluate else None
        if resume is None:
            run_dir, lock = new_run_dir(cfg, out, runs_dir) if writer else (Path(out), None)
        if on_start is not None:
            on_start(run_dir, step or 0)
        return _train_locked(model, cfg, run_dir, data_dir, show_progress, loop, step, train_data, test_data, writer)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(model, cfg, run_dir: Path, data_dir, show_progress: bool, loop, step, train_data, test_data,
                  writer: bool) -> Path:
    resuming = step is not None
    train_images, train_labels = train_data
    evaluate = evaluation.elbo_evaluator(model, *test_data) if test_data is not None else None
    session = 1
    if writer:
        if resuming:
            drop_records_after(run_dir, step)
            session = record_resumption(cfg, run_dir / "config.json")
        else:
            config_lib.save(cfg, run_dir / "config.json", environment())
    checkpoints = RunCheckpoints(run_dir, step)
    sample_grid = make_grid_sampler(model)
    score = make_epoch_scorer(cfg, model, data_dir) if cfg.eval_every else None
    board = open_tensorboard(run_dir) if cfg.tensorboard and writer else None
    metrics_file = (run_dir / "metrics.jsonl").open("a") if writer else None
    started = time.perf_counter()

    def log(record: dict, group: str) -> None:
        if metrics_file is None:
            return
        # "time" counts from this session's start; "session" says which start (a resumed run has several).
        seconds = round(time.perf_counter() - started, 2)
        metrics_file.write(json.dumps({**record, "time": seconds, "session": session}) + "\n")
        metrics_file.flush()
        if board is not None:
            for name, value in record.items():
                if name not in ("step", "epoch") and isinstance(value, (int, float)):
                    board.add_scalar(f"{group}/{name}", value, record["step"])

    def on_log(step, epoch, values, steps_per_sec):
        log({"step": step, "epoch": epoch, **values, "steps_per_sec": round(steps_per_sec, 3)}, "train")

    def on_epoch_end(epoch, loop):
        step = int(loop.step)
        if writer:
            grid = plotting.save_grid(sample_grid(loop.model), run_dir / "samples" / f"epoch_{epoch:03d}.png")
            if board is not None:
                board.add_image("samples", plotting.read_png(grid), step, dataformats="HWC")
        if evaluate is not None:
            scores = evaluate(loop.model)
            log({"step": step, "epoch": epoch, **scores}, "test")
            print(f"epoch {epoch}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
        if score is not None and epoch % cfg.eval_every == 0:
            results = score(loop.model)
            log({"step": step, "epoch": epoch, **{f"eval_{k}": v for k, v in results.items()}}, "eval")
            print(f"epoch {epoch}: FD {results['fd']:.3f}, precision {results['precision']:.3f}, "
                  f"recall {results['recall']:.3f} (evaluator {results['evaluator']})")

    def on_interrupt(loop):
        try:
            trainer.check_finite(loop)
            step = checkpoints.save(loop)
            print(f"\nstopped: checkpoint saved at step {step}; continue with `gan_lab train --resume {run_dir}`",
                  file=sys.stderr)
        except UserError as err:  # diverged (nothing saved, by design) or the save failed
            print(f"\nstopped: {err}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - the step's buffers may have been donated mid-call
            print(f"\nstopped mid-step: the newest checkpoint in {run_dir} is kept", file=sys.stderr)

    try:
        loop = trainer.fit(model, cfg, train_images, train_labels, loop=loop, on_log=on_log,
                         on_epoch_end=on_epoch_end, on_save=checkpoints.save, on_interrupt=on_interrupt,
                         show_progress=show_progress)
        if writer:  # a run cut short by --steps still gets a picture of where it ended
            plotting.save_grid(sample_grid(loop.model), run_dir / "samples" / "final.png")
    finally:
        if metrics_file is not None:
            metrics_file.close()
        checkpoints.close()
        if board is not None:
            board.close()
        records = training_records(run_dir) if writer else []
        if records:
            plotting.save_loss_curves(records, run_dir / "loss_curves.png", f"{cfg.model} on {cfg.dataset}")
    return run_dir


def epochs_trained(cfg, step: int) -> str:
    """How many epochs `step` steps are, as a label: "2", "0.47"."""
    epochs = step / config_lib.steps_per_epoch(cfg)
    return f"{epochs:.0f}" if epochs == int(epochs) else f"{epochs:.2f}"


def describe_progress(cfg, step: int) -> str:
    """How far a run has trained, from its checkpoint's step: "2 epochs", "0.47 epochs"."""
    text = epochs_trained(cfg, step)
    return f"{text} epoch{'' if text == '1' else 's'}"


def describe_plan(cfg, step: int = 0) -> str:
    """What a run will train, in one line, before it starts (a default run can take an hour on a CPU):
    "dcgan on mnist: 25 epochs x 1875 steps per epoch = 46875 steps"."""
    per_epoch = config_lib.steps_per_epoch(cfg)
    preset = f" (--preset {cfg.preset})" if cfg.preset else ""
    text = (f"{cfg.model}{preset} on {cfg.dataset}: {cfg.epochs} epoch{'' if cfg.epochs == 1 else 's'} x {per_epoch} "
            f"steps per epoch = {cfg.epochs * per_epoch} steps")
    if cfg.steps is not None and cfg.steps < cfg.epochs * per_epoch:
        text += f", stopping at --steps {cfg.steps} ({describe_progress(cfg, cfg.steps)})"
    if step:
        text += f"; resuming at step {step} ({describe_progress(cfg, step)})"
    return text


class TrainedRun(NamedTuple):
    cfg: Any
    model: Any
    state: Any  # the model state of the newest readable checkpoint
    step: int  # the step it was saved at: what the run has actually trained

    def describe(self) -> str:
        """For titles and captions: what was trained, as far as it was trained."""
        cfg = self.cfg
        return (f"{cfg.model} on {cfg.dataset}, {describe_progress(cfg, self.step)} ({self.step} steps), "
                f"seed {cfg.seed}")


def load_model(run_dir: Path) -> tuple[Any, Any]:
    """A run's config and its model, from config.json alone (no checkpoint is read)."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir)
    if not (run_dir / "config.json").exists():
        raise UserError(f"{run_dir} is not a gan_lab run directory (no config.json); pass a directory under runs/")
    cfg = config_lib.load(run_dir / "config.json")
    return cfg, registry.build(cfg)


def load_trained(run_dir: Path) -> TrainedRun:
    """A run's newest readable checkpoint; needs no training data. A damaged newer one is skipped with
    a warning (and left where it is: reading a run never changes it)."""
    run_dir = Path(run_dir)
    cfg, model = load_model(run_dir)
    abstract = checkpoint.abstract_like(lambda: trainer.init_loop_state(model, cfg.seed))
    try:
        restored = checkpoint.restore_latest(run_dir, abstract)
    except checkpoint.NoCheckpoint:
        raise UserError(f"{run_dir} has no checkpoint yet (it stopped before its first one); "
                        f"continue it with `gan_lab train --resume {run_dir}`") from None
    for step, reason in restored.skipped:
        print(f"warning: checkpoint of step {step} in {run_dir} is unreadable ({reason}); using step "
              f"{restored.step}", file=sys.stderr)
    return TrainedRun(cfg, model, restored.state.model, restored.step)


def check_run_dir(run_dir: Path) -> None:
    """A run directory given by the user exists (else one line saying so, not "no config.json")."""
    if not Path(run_dir).exists():
        raise UserError(f"no run directory {run_dir}: give the directory `gan_lab train` printed "
                        "(e.g. runs/dcgan-mnist-20260101-120000)")


def evaluate_run(run_dir: Path, n: int = evaluation.EVAL_SAMPLES, seed: int = 0, data_dir=None) -> tuple[dict, Path]:
    """Score a run's latest checkpoint; results are added to RUN_DIR/metrics.json under that step."""
    run_dir = Path(run_dir)
    cfg, model, state, step = load_trained(run_dir)
    # The epochs actually trained (from the checkpoint's step), not the run's target.
    results = {"model": cfg.model, "step": step, "epochs": float(epochs_trained(cfg, step)), "seed": cfg.seed,
               **evaluation.score(cfg, model, state, n, seed, evaluation.elbo_scorer(cfg, model, data_dir), data_dir)}
    path = run_dir / "metrics.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved[f"step_{step}_n{n}_seed{seed}"] = results
    files.replace_atomically(path, json.dumps(saved, indent=2) + "\n")
    return results, path


def find_finished_run(runs_dir: Path, model: str, dataset: str, epochs: int | None) -> Path | None:
    """The newest run of `model` on `dataset` (with `epochs`, if given) that trained to its end."""
    found = []
    for config_path in Path(runs_dir).glob("*/config.json"):
        saved = finished_config(config_path.parent)
        if saved and saved["model"] == model and saved["dataset"] == dataset and epochs in (None, saved["epochs"]):
            found.append((config_path.stat().st_mtime, str(config_path.parent)))
    return Path(max(found)[1]) if found else None


def finished_config(run_dir: Path) -> dict | None:
    """The saved settings of a run that trained to its end, else None (cut short, or unreadable).

    A run that ended writes samples/final.png after its config.json (which a resume rewrites); one
    cut short by --steps or Ctrl-C does not count.
    """
    config_path, final = Path(run_dir) / "config.json", Path(run_dir) / "samples" / "final.png"
    try:
        saved = json.loads(config_path.read_text())["config"]
        finished = final.stat().st_mtime >= config_path.stat().st_mtime and saved.get("steps") is None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return saved if finished else None


def find_or_train(models, datasets, runs_dir: Path, settings: dict, data_dir=None, show_progress: bool = True) -> dict:
    """{(model, dataset): run directory}: the newest finished run of each under runs_dir, or a new run
    trained there with `settings` (those that apply to each model) where there is none."""
    config_lib.check_datasets(datasets)
    configs = {(model, dataset): config_lib.make_config(model, {**settings, "dataset": dataset}, strict=False)
               for dataset in datasets for model in models}  # every name and value checked before training
    found = {}
    for (model, dataset), cfg in configs.items():
        run = find_finished_run(runs_dir, model, dataset, settings.get("epochs"))
        cut = find_cut_run(runs_dir, cfg) if run is None else None
        if cut is not None and cfg.steps is not None and newest_step(cut) >= cfg.steps:
            run = cut  # it stopped at the --steps asked for: it is the run asked for, not a cut one
        elif cut is not None:  # a run of exactly these settings that was stopped: continue it
            print(f"continuing {cut}, stopped at step {newest_step(cut)}")
            run = train_run(resume_config(cut, {}), data_dir=data_dir, show_progress=show_progress, resume=cut)
        elif run is None:
            print(f"no finished {model} run on {dataset} in {runs_dir}: training one "
                  f"({model} on {dataset}, {cfg.epochs} epochs, seed {cfg.seed})")
            run = train_run(cfg, runs_dir=runs_dir, data_dir=data_dir, show_progress=show_progress)
        found[(model, dataset)] = run
    return found


def find_cut_run(runs_dir: Path, cfg) -> Path | None:
    """The newest run under runs_dir started with exactly `cfg` that has a checkpoint but did not
    train to its end (killed, or the machine's session ended): resumable instead of trained again."""
    found = []
    for config_path in Path(runs_dir).glob("*/config.json"):
        run = config_path.parent
        try:  # read as a resume reads it: a setting added since the run started takes its default
            saved = config_lib.load(config_path)
        except UserError:
            continue
        if saved == cfg and finished_config(run) is None and newest_step(run) is not None:
            found.append((config_path.stat().st_mtime, str(run)))
    return Path(max(found)[1]) if found else None


def newest_step(run_dir: Path) -> int | None:
    """The step of the newest complete checkpoint, from its directory name (no checkpoint is read)."""
    steps = [int(path.name) for path in (Path(run_dir) / "checkpoints").glob("*") if path.name.isdigit()]
    return max(steps, default=None)
