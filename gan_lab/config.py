"""Run settings: one frozen dataclass for what every run has, plus the chosen model's own settings.

Each setting is declared once, with its help text and its bounds: the run's settings here, as
fields made with `setting(...)`; a model's own settings (a GAN's loss, a WGAN's critic updates, a
network's width) as `Setting`s in that model's `@register` line, beside the code that reads them.
The CLI's flags, their --help, the validation and the saved config.json are all derived from these
declarations, and a flag for a setting the chosen model does not have is an error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any

from gan_lab.errors import UserError


@dataclasses.dataclass(frozen=True)
class Search:
    """Where a sweep (`gan_lab sweep`, gan_lab/sweep.py) draws a setting's values: log-uniformly within
    `factor` times the model's default either way (rates, weights: `around`), or one of `values`."""

    factor: float | None = None
    values: tuple = ()

    def draw(self, rng, default):
        """One value, from the numpy Generator `rng`; `default` is the model's default for it."""
        if self.factor is not None:
            return float(default * self.factor ** rng.uniform(-1.0, 1.0))
        return self.values[int(rng.integers(len(self.values)))]


def around(factor: float) -> Search:
    """Log-uniform within `factor` times the default, either way: `around(10)` for a learning rate."""
    return Search(factor=factor)


def one_of(*values) -> Search:
    return Search(values=values)


@dataclasses.dataclass(frozen=True)
class Setting:
    """A model's own setting: its default, what it does, its valid values and where a sweep draws it."""

    default: Any
    help: str
    minimum: float | None = None  # numbers: the smallest valid value
    positive: bool = False  # numbers: > 0 and finite
    choices: tuple | None = None  # the valid values
    search: Search | None = None  # where a sweep draws it from; None: a sweep keeps the default
    # What a run saved before this setting existed computed with, where that is not `default` (a
    # setting added with a new default): config.load gives it to such a run, so it resumes and samples
    # as it trained. None: the default (the setting was added with the behaviour runs already had).
    absent: Any = None

    def check(self, name: str, value) -> None:
        """A one-line UserError naming the flag if `value` is not valid."""
        if self.choices is not None and value not in self.choices:
            raise UserError(f"unknown {name.replace('_', ' ')} {value!r}; valid values for {flag(name)}: "
                            f"{', '.join(map(str, self.choices))}")
        if self.positive and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise UserError(f"{flag(name)} must be a positive finite number, got {value}")
        if self.minimum is not None and value is not None and not value >= self.minimum:
            raise UserError(f"{flag(name)} must be at least {self.minimum:g}, got {value}")


def setting(default, help: str, **bounds):
    """A Config field that is also a command-line flag of `train`, checked by `Setting.check`."""
    return dataclasses.field(default=default, metadata={"setting": Setting(default, help, **bounds)})


@dataclasses.dataclass(frozen=True)
class Config:
    model: str = "dcgan"
    preset: str | None = setting(None, "start from one of the model's named sets of settings, e.g. paper: its "
                                       "paper's hyper-parameters where the defaults differ; your flags still "
                                       "apply on top (`gan_lab list` shows each model's presets)")
    dataset: str = setting("fashion-mnist", "mnist or fashion-mnist (default: fashion-mnist)")
    epochs: int = setting(25, "epochs to train (default: the model's)", minimum=1)
    steps: int | None = setting(None, "stop after this many steps in total; on --resume, `none` clears the limit",
                                minimum=1)
    batch_size: int = setting(64, "images per batch (default: the model's)", minimum=1, search=one_of(32, 64, 128))
    seed: int = setting(0, "seed of the initialisation, the shuffling and the noise")
    lr: float = setting(2e-4, "learning rate (default: the model's)", positive=True, search=around(10))
    b1: float = setting(0.5, "Adam's beta1 (default: the model's)", minimum=0, search=one_of(0.0, 0.5, 0.9))
    b2: float = setting(0.999, "Adam's beta2", minimum=0, search=one_of(0.9, 0.99, 0.999))
    z_dim: int = setting(62, "size of the latent vector (default: the model's)", minimum=1)
    binarize: bool = False  # one fixed random binarisation of the pixels (like binarised MNIST)
    subset: int | None = setting(None, "train on the first N training images only", minimum=1)
    log_every: int = setting(50, "steps between loss readings (each one is a device->host copy)", minimum=1)
    devices: int = setting(1, "local devices to split each batch over (data parallel)", minimum=1)
    eval_every: int | None = setting(None, "score samples with the evaluator networks every N epochs", minimum=1)
    tensorboard: bool = setting(False, "also write TensorBoard events to RUN_DIR/tensorboard "
                                       "(pip install -e '.[tensorboard]')")
    precision: str = setting("f32", "f32, or bf16: the training step's matrix products in bfloat16 with float32 "
                                    "accumulation, weights and everything else float32 (mixed precision, for "
                                    "GPUs: on CPUs XLA runs most of these products in float32 anyway and the "
                                    "step is slower; docs/speed.md, Mixed precision)", choices=("f32", "bf16"))
    checkpoint_every: int | None = setting(None, "also save a checkpoint every N steps (always: each epoch's end, "
                                                 "the last step, a stop)", minimum=1)
    settings: dict = dataclasses.field(default_factory=dict)  # the model's own settings (its Setting declarations)

    def __getattr__(self, name: str):
        # Only reached for names that are not fields: a model's own settings read like fields (cfg.width).
        settings = self.__dict__.get("settings", {})
        if name in settings:
            return settings[name]
        raise AttributeError(f"{type(self).__name__} has no field or model setting {name!r}")


# Fields that may change between a run and its resumption without changing what is computed.
# `devices` changes the order of the batch reductions: a resumed run then equals a straight one to
# float tolerance only (resume says so). `tensorboard` may stay on, but not be switched on or off.
RESUMABLE_FIELDS = frozenset({"epochs", "steps", "log_every", "devices", "eval_every", "tensorboard",
                              "checkpoint_every"})


def flag(field: str) -> str:
    """The command-line flag of a setting."""
    return "--" + field.replace("_", "-")


def run_settings() -> dict[str, Setting]:
    """The settings every run has (Config fields with a flag), by name."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(Config) if "setting" in f.metadata}


def setting_type(name: str) -> type:
    """The Python type of a run setting (int for `int | None`)."""
    hint = typing.get_type_hints(Config)[name]
    return next(t for t in typing.get_args(hint) if t is not type(None)) if typing.get_args(hint) else hint


FIELDS = frozenset(f.name for f in dataclasses.fields(Config))


def with_values(cfg: Config, values: dict, declared: dict[str, Setting]) -> Config:
    """cfg with `values` set: run fields directly, the model's own settings (`declared`) in cfg.settings."""
    fields = {k: v for k, v in values.items() if k in FIELDS}
    own = {k: v for k, v in values.items() if k not in FIELDS}
    unknown = sorted(set(own) - set(declared))
    if unknown:
        raise UserError(f"{flag(unknown[0])} does not apply to {values.get('model', cfg.model)} (its own settings: "
                        f"{', '.join(map(flag, declared)) or 'none'}); drop it")
    return dataclasses.replace(cfg, **fields, settings={**cfg.settings, **own})


def make_config(model: str, overrides: dict, strict: bool = True) -> Config:
    """Config for `model`: Config defaults, then the model's defaults, then its preset's values if
    `overrides` names one (`preset`), then the user's values.

    A value for a setting the model does not have is an error (strict), or left out (not strict: one
    setting given for several models at once, as `compare` does; a preset the model lacks too).
    """
    from gan_lab import registry

    recipe = registry.get(model)
    given = {k: v for k, v in overrides.items() if v is not None}
    if not strict:
        given = {k: v for k, v in given.items() if k in FIELDS or k in recipe.settings}
        if given.get("preset") not in recipe.presets:
            given.pop("preset", None)
    check_preset(model, given.get("preset"))
    defaults = {name: s.default for name, s in recipe.settings.items()}
    preset = recipe.presets.get(given.get("preset"), {})
    cfg = with_values(Config(model=model), {**defaults, **recipe.defaults, **preset, **given}, recipe.settings)
    validate(cfg)
    return cfg


def check_datasets(names) -> None:
    """A one-line UserError naming the valid datasets if any of `names` is not one."""
    from gan_lab import data

    for name in names:
        if name not in data.DATASETS:
            raise UserError(f"unknown dataset {name!r}; valid datasets: {', '.join(data.DATASETS)}")


def check_preset(model: str, preset: str | None) -> None:
    from gan_lab import registry

    presets = registry.get(model).presets
    if preset is not None and preset not in presets:
        raise UserError(f"{model} has no preset {preset!r}; " + (f"its presets: {', '.join(presets)}" if presets
                        else "it has none (gan_lab list shows the models that do)"))


def steps_per_epoch(cfg: Config) -> int:
    """Steps in one pass over the training images: a step takes batch_size images, or n_critic batches
    of them for a model with several critic updates per step (the last partial step is dropped)."""
    from gan_lab import data

    return (cfg.subset or data.SPLIT_SIZES["train"]) // (cfg.batch_size * cfg.settings.get("n_critic", 1))


def total_steps(cfg: Config) -> int:
    """The steps a run trains to: cfg.epochs epochs, or cfg.steps if that comes first."""
    all_epochs = cfg.epochs * steps_per_epoch(cfg)
    return all_epochs if cfg.steps is None else min(all_epochs, cfg.steps)


def validate(cfg: Config) -> None:
    from gan_lab import data, registry

    check_datasets([cfg.dataset])
    for name, declared in run_settings().items():
        declared.check(name, getattr(cfg, name))
    for name, declared in registry.get(cfg.model).settings.items():
        declared.check(name, cfg.settings[name])
    check_preset(cfg.model, cfg.preset)
    n_train = data.SPLIT_SIZES["train"]
    if cfg.subset is not None and cfg.subset > n_train:
        raise UserError(f"--subset {cfg.subset} is larger than the {cfg.dataset} training set ({n_train} images)")
    n_images = cfg.subset or n_train
    if cfg.batch_size > n_images:
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the dataset ({n_images} images)")
    if cfg.batch_size % cfg.devices:
        raise UserError(f"--batch-size {cfg.batch_size} does not split evenly over --devices {cfg.devices}")
    epoch_steps = steps_per_epoch(cfg)
    if epoch_steps < 1:
        raise UserError(f"one step takes {cfg.settings.get('n_critic', 1)} batches of {cfg.batch_size}, more than "
                        f"the {n_images} training images; lower --batch-size or raise --subset")
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
    """All or nothing: a run killed while its config.json is written must still resume."""
    from gan_lab import files

    files.replace_atomically(path, to_json(cfg, extra))


# Model settings that runs saved before settings lived with their models kept as Config fields.
FORMER_FIELDS = ("width", "loss", "arch", "hidden")


def load(path: Path) -> Config:
    try:
        return from_saved(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"cannot read run config {path}: {err}; is this a gan_lab run directory?") from None


def from_saved(record: dict) -> Config:
    """The Config of a run's config.json record ({"config": ...}), as load() reads it."""
    from gan_lab import registry

    saved = dict(record["config"])
    recipe = registry.get(saved["model"])
    declared = recipe.settings
    former = {name: saved.pop(name) for name in FORMER_FIELDS if name in saved}
    saved["settings"] = {**{k: v for k, v in former.items() if k in declared}, **saved.get("settings", {})}
    # A setting the model declared after this run was saved: what the run computed with.
    saved["settings"].update({name: recipe.default(name) if setting.absent is None else setting.absent
                              for name, setting in declared.items() if name not in saved["settings"]})
    return Config(**saved)


def differing_fields(saved: Config, requested: Config) -> list[str]:
    """Settings that differ and matter for resuming (anything that changes the computation)."""
    fields = [f.name for f in dataclasses.fields(Config)
              if f.name not in RESUMABLE_FIELDS | {"settings"} and getattr(saved, f.name) != getattr(requested, f.name)]
    own = [name for name in sorted(set(saved.settings) | set(requested.settings))
           if saved.settings.get(name) != requested.settings.get(name)]
    return fields + own
