"""Run settings: one frozen dataclass, defaults overridden per model, saved as JSON with every run."""

from __future__ import annotations

import dataclasses
import json
import math
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
    checkpoint_every: int | None = None  # also checkpoint every N steps (epoch ends and the last step always)


# Fields that may change between a run and its resumption without changing what is computed.
# `devices` changes the order of the batch reductions: a resumed run then equals a straight one to
# float tolerance only (resume says so). `tensorboard` may stay on, but not be switched on or off.
RESUMABLE_FIELDS = frozenset({"epochs", "steps", "log_every", "devices", "eval_every", "tensorboard",
                              "checkpoint_every"})


def flag(field: str) -> str:
    """The command-line flag of a Config field."""
    return "--" + field.replace("_", "-")


def make_config(model: str, overrides: dict, strict: bool = True) -> Config:
    """Config for `model`: Config defaults, then the model's own defaults, then the user's flags.

    A flag for a setting the model does not read is an error (strict), or left out (not strict: one
    setting given for several models at once, as `compare` does).
    """
    from gan_lab import registry

    recipe = registry.get(model)
    given = {k: v for k, v in overrides.items() if v is not None}
    for name in sorted(set(given) & recipe.ignores):
        if strict:
            raise UserError(f"{flag(name)} does not apply to {model} (it has no such setting); drop it")
        del given[name]
    values = {**recipe.defaults, **given, "model": model}
    cfg = Config(**values)
    validate(cfg)
    return cfg


def steps_per_epoch(cfg: Config) -> int:
    """Full batches in one pass over the training images (the last partial batch is dropped)."""
    from gan_lab import data

    return (cfg.subset or data.SPLIT_SIZES["train"]) // cfg.batch_size


def validate(cfg: Config) -> None:
    from gan_lab import data, losses

    if cfg.dataset not in data.DATASETS:
        raise UserError(f"unknown dataset {cfg.dataset!r}; valid datasets: {', '.join(data.DATASETS)}")
    for name in ("epochs", "batch_size", "devices", "log_every", "steps", "subset", "eval_every", "checkpoint_every"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise UserError(f"{flag(name)} must be at least 1, got {value}")
    for name in ("lr", "width"):
        value = getattr(cfg, name)
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"{flag(name)} must be a positive finite number, got {value}")
    if cfg.loss not in losses.GAN_LOSSES:
        raise UserError(f"unknown loss {cfg.loss!r}; valid losses: {', '.join(losses.GAN_LOSSES)}")
    n_train = data.SPLIT_SIZES["train"]
    if cfg.subset is not None and cfg.subset > n_train:
        raise UserError(f"--subset {cfg.subset} is larger than the {cfg.dataset} training set ({n_train} images)")
    n_images = cfg.subset or n_train
    if cfg.batch_size > n_images:
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the dataset ({n_images} images)")
    if cfg.batch_size % cfg.devices:
        raise UserError(f"--batch-size {cfg.batch_size} does not split evenly over --devices {cfg.devices}")
    epoch_steps = steps_per_epoch(cfg)
    if cfg.steps is not None and cfg.steps > cfg.epochs * epoch_steps:
        raise UserError(f"--steps {cfg.steps} is beyond --epochs {cfg.epochs} ({cfg.epochs * epoch_steps} steps of "
                        f"{epoch_steps} per epoch), and training stops at whichever comes first: raise --epochs "
                        f"to at least {math.ceil(cfg.steps / epoch_steps)} or lower --steps")
    if cfg.eval_every is not None and cfg.eval_every > cfg.epochs:
        raise UserError(f"--eval-every {cfg.eval_every} is beyond --epochs {cfg.epochs}: it would never score; "
                        f"use at most {cfg.epochs}")


def to_json(cfg: Config, extra: dict) -> str:
    return json.dumps({"config": dataclasses.asdict(cfg), **extra}, indent=2) + "\n"


def save(cfg: Config, path: Path, extra: dict) -> None:
    path.write_text(to_json(cfg, extra))


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
