"""Run directories: everything a training run writes, and the glue from a Config to train.fit.

A run directory holds config.json (resolved config, versions, device), metrics.jsonl, a fixed-noise
sample grid per epoch under samples/, and loss_curves.png at the end. An existing directory is never
overwritten.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp

from gan_lab import config as config_lib
from gan_lab import checkpoint, data, plotting, registry, runtime, train
from gan_lab.errors import UserError

# One fixed key for every sample grid, so grids compare across epochs, runs, models and datasets.
GRID_NOISE_SEED = 2026
GRID_SIZE = 64


def grid_labels(n: int):
    """Class labels for a grid of n conditional samples: 0..9 repeating."""
    return jnp.arange(n, dtype=jnp.int32) % data.NUM_CLASSES


def new_run_dir(cfg, out: str | Path | None) -> Path:
    if out is not None:
        path = Path(out)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise UserError(f"{path} already exists; choose another --out, or continue that run with --resume {path}")
    else:
        base = Path("runs") / f"{cfg.model}-{cfg.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 2
        while path.exists():
            path, n = base.with_name(f"{base.name}-{n}"), n + 1
    path.mkdir(parents=True, exist_ok=True)
    return path


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
        "runtime": runtime.APPLIED,  # XLA flags and allocator settings (gan_lab/runtime.py)
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_grid_sampler(model):
    """Jitted `model state -> GRID_SIZE images` from the fixed grid noise (and labels 0..9 if conditional)."""
    key = jax.random.key(GRID_NOISE_SEED)
    labels = grid_labels(GRID_SIZE) if model.conditional else None
    return jax.jit(lambda state: model.sample(state, key, GRID_SIZE, labels))


# Fixed seeds of the binarised copies of each split, so a binarised dataset is the same everywhere.
BINARIZE_SEEDS = {"train": 0, "test": 1}
EVAL_KEY_SEED = 99
EVAL_CHUNK = 1000


def load_images(cfg, split: str, data_dir):
    """A split on the device as the model sees it: subset (train only) and binarisation applied."""
    images, labels = data.load_split(cfg.dataset, split, data_dir)
    if split == "train" and cfg.subset is not None:
        images, labels = images[: cfg.subset], labels[: cfg.subset]
    if cfg.binarize:
        images = data.binarize(images, BINARIZE_SEEDS[split])
    return data.to_device(images, labels)


def make_evaluator(model, images, labels):
    """`state -> {metric: float}` averaged over the whole split, in chunks to bound memory."""
    evaluate = jax.jit(model.evaluate)
    key = jax.random.key(EVAL_KEY_SEED)

    def run(state) -> dict:
        totals, count = {}, 0
        for start in range(0, images.shape[0], EVAL_CHUNK):
            chunk = slice(start, start + EVAL_CHUNK)
            n = images[chunk].shape[0]
            values = jax.device_get(evaluate(state, images[chunk], labels[chunk], jax.random.fold_in(key, start)))
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + float(value) * n
            count += n
        return {f"test_{name}": total / count for name, total in totals.items()}

    return run


def resume_config(run_dir: Path, requested: dict):
    """The run's saved config with the flags the user gave; an error names a field that would change the run."""
    saved = config_lib.load(Path(run_dir) / "config.json")
    changed = {k: v for k, v in requested.items() if v is not None}
    resumed = config_lib.Config(**{**dataclasses.asdict(saved), **changed})
    for name in config_lib.differing_fields(saved, resumed):
        raise UserError(
            f"cannot resume {run_dir} with {name}={getattr(resumed, name)!r}: it was trained with "
            f"{name}={getattr(saved, name)!r} (only epochs, steps, log_every, devices, eval_every and tensorboard may change on resume)"
        )
    config_lib.validate(resumed)
    return resumed


def record_resumption(cfg, path: Path) -> None:
    """Update config.json for a resumed run, keeping what the first start recorded."""
    saved = json.loads(path.read_text())
    extra = {k: v for k, v in saved.items() if k != "config"}
    extra["resumed"] = extra.get("resumed", []) + [environment()]
    tmp = path.with_suffix(".json.tmp")
    config_lib.save(cfg, tmp, extra)
    tmp.replace(path)


def drop_records_after(run_dir: Path, step: int) -> None:
    """Forget metrics logged after the checkpoint we resume from: those steps are trained again."""
    kept = [r for r in read_metrics(run_dir) if r["step"] <= step]
    path = Path(run_dir) / "metrics.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    tmp.replace(path)


def make_epoch_scorer(cfg, model, data_dir):
    """`state -> metrics` with the evaluator networks (for --eval-every), on fewer samples than
    `gan_lab eval` so that scoring does not dominate training: 5,000 generated vs the test set."""
    from gan_lab import evaluation  # evaluation builds on this module

    test_images = evaluation.test_set(cfg, data_dir)
    return lambda state: evaluation.score(cfg, model, state, test_images, n=EPOCH_EVAL_SAMPLES)


EPOCH_EVAL_SAMPLES = 5_000


def open_tensorboard(run_dir: Path):
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard needs tensorboardX: pip install -e '.[tensorboard]'") from None
    return SummaryWriter(str(Path(run_dir) / "tensorboard"))


def train_run(cfg, out=None, data_dir=None, show_progress: bool = True, resume: Path | None = None) -> Path:
    """Train cfg.model on cfg.dataset in a new run directory (or continue `resume`); returns the directory."""
    model = registry.get(cfg.model).build(cfg)
    train_images, train_labels = load_images(cfg, "train", data_dir)
    if cfg.batch_size > train_images.shape[0]:
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the dataset ({train_images.shape[0]} images)")
    evaluate = make_evaluator(model, *load_images(cfg, "test", data_dir)) if model.evaluate else None

    if resume is not None:
        run_dir = Path(resume)
        abstract = checkpoint.abstract_like(lambda: train.init_loop_state(model, cfg.seed))
        loop = checkpoint.restore_latest(run_dir, abstract)
        drop_records_after(run_dir, int(loop.step))
        record_resumption(cfg, run_dir / "config.json")
    else:
        loop = None
        run_dir = new_run_dir(cfg, out)
        config_lib.save(cfg, run_dir / "config.json", environment())
    checkpoints = checkpoint.manager(run_dir)
    sample_grid = make_grid_sampler(model)
    score = make_epoch_scorer(cfg, model, data_dir) if cfg.eval_every else None
    board = open_tensorboard(run_dir) if cfg.tensorboard else None
    metrics_file = (run_dir / "metrics.jsonl").open("a")
    started = time.perf_counter()

    def log(record: dict, group: str) -> None:
        metrics_file.write(json.dumps({**record, "time": round(time.perf_counter() - started, 2)}) + "\n")
        metrics_file.flush()
        if board is not None:
            for name, value in record.items():
                if name not in ("step", "epoch") and isinstance(value, (int, float)):
                    board.add_scalar(f"{group}/{name}", value, record["step"])

    def on_log(step, epoch, values, steps_per_sec):
        log({"step": step, "epoch": epoch, **values, "steps_per_sec": round(steps_per_sec, 3)}, "train")

    def on_epoch_end(epoch, loop):
        step = int(loop.step)
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
        checkpoint.save(checkpoints, step, loop)

    def on_interrupt(loop):
        try:
            checkpoint.save(checkpoints, int(loop.step), loop)
            print(f"\ninterrupted: checkpoint saved at step {int(loop.step)}; continue with "
                  f"`gan_lab train --resume {run_dir}`", file=sys.stderr)
        except Exception:  # noqa: BLE001 - the step's buffers may have been donated mid-call
            print(f"\ninterrupted mid-step: the last epoch's checkpoint in {run_dir} is kept", file=sys.stderr)

    try:
        loop = train.fit(model, cfg, train_images, train_labels, loop=loop, on_log=on_log,
                         on_epoch_end=on_epoch_end, on_interrupt=on_interrupt, show_progress=show_progress)
        # A run cut short by --steps still gets a picture of where it ended.
        plotting.save_grid(sample_grid(loop.model), run_dir / "samples" / "final.png")
    finally:
        metrics_file.close()
        checkpoints.close()
        if board is not None:
            board.close()
        records = [r for r in read_metrics(run_dir) if "steps_per_sec" in r]
        if records:
            plotting.save_loss_curves(records, run_dir / "loss_curves.png", f"{cfg.model} on {cfg.dataset}")
    return run_dir


def load_trained(run_dir: Path):
    """(cfg, model, model state) of a run's latest checkpoint; needs no training data."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise UserError(f"{run_dir} is not a gan_lab run directory (no config.json); pass a directory under runs/")
    cfg = config_lib.load(run_dir / "config.json")
    model = registry.get(cfg.model).build(cfg)
    abstract = checkpoint.abstract_like(lambda: train.init_loop_state(model, cfg.seed))
    return cfg, model, checkpoint.restore_latest(run_dir, abstract).model
