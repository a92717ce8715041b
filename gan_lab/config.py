"""Run settings: one frozen dataclass, defaults overridden per model, saved as JSON with every run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from gan_lab.errors import UserError


@dataclasses.dataclass(frozen=True)
class Config:
    model: str = "dcgan"
    dataset: str = "fashion-mnist"
    epochs: int = 25
    steps: int | None = None  # stop after this many steps in total (smoke runs); None: run all epochs
    batch_size: int = 64
    seed: int = 0
    lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    width: float = 1.0  # channel multiplier of every layer; tests use tiny nets
    z_dim: int = 62
    loss: str = "bce"  # adversarial loss pair, see losses.GAN_LOSSES
    arch: str = "conv"  # VAE encoder/decoder: "conv" or "mlp"
    hidden: int = 500  # VAE MLP hidden units
    binarize: bool = False  # one fixed random binarisation of the pixels (like binarised MNIST)
    subset: int | None = None  # train on the first N training images only (smoke tests, quick looks)
    log_every: int = 50  # steps between loss readings (each one is a device->host copy)
    devices: int = 1  # local devices to split each batch over (data parallel)
    eval_every: int | None = None  # score samples with the evaluator networks every N epochs
    tensorboard: bool = False  # also write TensorBoard events (needs the [tensorboard] extra)


# Fields that may change between a run and its resumption without changing what is computed.
RESUMABLE_FIELDS = frozenset({"epochs", "steps", "log_every", "devices", "eval_every", "tensorboard"})


def make_config(model: str, overrides: dict) -> Config:
    """Config for `model`: Config defaults, then the model's own defaults, then the user's flags."""
    from gan_lab import registry

    recipe = registry.get(model)
    values = {**recipe.defaults, **{k: v for k, v in overrides.items() if v is not None}, "model": model}
    cfg = Config(**values)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    from gan_lab import data, losses

    if cfg.dataset not in data.DATASETS:
        raise UserError(f"unknown dataset {cfg.dataset!r}; valid datasets: {', '.join(data.DATASETS)}")
    if cfg.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {cfg.epochs}")
    if cfg.steps is not None and cfg.steps < 1:
        raise UserError(f"--steps must be at least 1, got {cfg.steps}")
    if cfg.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if not cfg.lr > 0:
        raise UserError(f"--lr must be positive, got {cfg.lr}")
    if not cfg.width > 0:
        raise UserError(f"--width must be positive, got {cfg.width}")
    if cfg.loss not in losses.GAN_LOSSES:
        raise UserError(f"unknown loss {cfg.loss!r}; valid losses: {', '.join(losses.GAN_LOSSES)}")
    if cfg.subset is not None and cfg.subset < 1:
        raise UserError(f"--subset must be at least 1, got {cfg.subset}")
    if cfg.eval_every is not None and cfg.eval_every < 1:
        raise UserError(f"--eval-every must be at least 1 (epochs), got {cfg.eval_every}")
    if cfg.devices < 1:
        raise UserError(f"--devices must be at least 1, got {cfg.devices}")
    if cfg.log_every < 1:
        raise UserError(f"--log-every must be at least 1, got {cfg.log_every}")


def save(cfg: Config, path: Path, extra: dict) -> None:
    path.write_text(json.dumps({"config": dataclasses.asdict(cfg), **extra}, indent=2) + "\n")


def load(path: Path) -> Config:
    try:
        saved = json.loads(Path(path).read_text())["config"]
        return Config(**saved)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"cannot read run config {path}: {err}; is this a gan_lab run directory?") from None


def differing_fields(saved: Config, requested: Config) -> list[str]:
    """Fields that differ and matter for resuming (anything that changes the computation)."""
    return [
        f.name
        for f in dataclasses.fields(Config)
        if f.name not in RESUMABLE_FIELDS and getattr(saved, f.name) != getattr(requested, f.name)
    ]
