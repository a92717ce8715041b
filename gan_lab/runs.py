"""Run directories: everything a training run writes, and the glue from a Config to train.fit.

A run directory holds config.json (resolved config, versions, device), metrics.jsonl, a fixed-noise
sample grid per epoch under samples/, and loss_curves.png at the end. An existing directory is never
overwritten.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp

from gan_lab import config as config_lib
from gan_lab import data, plotting, registry, train
from gan_lab.errors import UserError

# One fixed key for every sample grid, so grids compare across epochs, runs, models and datasets.
GRID_NOISE_SEED = 2026
GRID_SIZE = 64
NUM_CLASSES = 10


def grid_labels(n: int):
    """Class labels for a grid of n conditional samples: 0..9 repeating."""
    return jnp.arange(n, dtype=jnp.int32) % NUM_CLASSES


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


def train_run(cfg, out=None, data_dir=None, show_progress: bool = True) -> Path:
    """Train cfg.model on cfg.dataset in a new run directory; returns that directory."""
    model = registry.get(cfg.model).build(cfg)
    images, labels = data.load_split(cfg.dataset, "train", data_dir)
    train_images, train_labels = data.to_device(images[: cfg.subset], labels[: cfg.subset])
    if cfg.batch_size > train_images.shape[0]:
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the dataset ({train_images.shape[0]} images)")
    run_dir = new_run_dir(cfg, out)
    config_lib.save(cfg, run_dir / "config.json", environment())
    sample_grid = make_grid_sampler(model)
    metrics_file = (run_dir / "metrics.jsonl").open("a")
    started = time.perf_counter()

    def on_log(step, epoch, values, steps_per_sec):
        record = {"step": step, "epoch": epoch, **values, "steps_per_sec": round(steps_per_sec, 3),
                  "time": round(time.perf_counter() - started, 2)}
        metrics_file.write(json.dumps(record) + "\n")
        metrics_file.flush()

    def on_epoch_end(epoch, loop):
        plotting.save_grid(sample_grid(loop.model), run_dir / "samples" / f"epoch_{epoch:03d}.png")

    try:
        loop = train.fit(model, cfg, train_images, train_labels, on_log=on_log, on_epoch_end=on_epoch_end,
                         show_progress=show_progress)
        # A run cut short by --steps still gets a picture of where it ended.
        final_grid = run_dir / "samples" / "final.png"
        plotting.save_grid(sample_grid(loop.model), final_grid)
    finally:
        metrics_file.close()
        records = read_metrics(run_dir)
        if records:
            plotting.save_loss_curves(records, run_dir / "loss_curves.png", f"{cfg.model} on {cfg.dataset}")
    return run_dir
