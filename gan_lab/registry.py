"""Models registered by name. A model is a builder `cfg -> Model` plus its default settings."""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
from typing import Any, Callable, NamedTuple

import jax

from gan_lab import config, precision
from gan_lab.errors import UserError


class Model(NamedTuple):
    """The contract every model family fulfils; the train loop knows nothing else about a model.

    All functions are pure and jit-able. Images are float32 (N, 28, 28, 1) in [-1, 1].
    """

    init: Callable  # key -> state (a pytree of arrays)
    step: Callable  # (state, images, labels, key) -> (state, {metric name: scalar})
    decode: Callable  # (state, z (N, z_dim), labels (N,) or None) -> images
    z_dim: int  # size of the latent (noise) vector `decode` takes
    conditional: bool  # True if `decode` takes class labels
    evaluate: Callable | None = None  # (state, images, labels, key) -> {metric: scalar}, e.g. test ELBO
    sample_latent: Callable | None = None  # (key, n) -> (n, z_dim) draws from the prior; None: N(0, I)
    batches_per_step: int = 1  # real batches one step consumes (a WGAN's critic updates); >1: stacked
    encode: Callable | None = None  # models with an encoder: (state, images, labels) -> latents (posterior mean)
    codes: tuple = ()  # named slices of the latent a sheet may set (sampling.LatentCode), e.g. infoGAN's codes

    def prior(self, key, n: int):
        """n latents from the model's prior, drawn with `key`: the same key, the same noise."""
        if self.sample_latent is not None:
            return self.sample_latent(key, n)
        return jax.random.normal(key, (n, self.z_dim))

    def sample(self, state, key, n: int, labels=None):
        """n images from latents of the prior drawn with `key`."""
        return self.decode(state, self.prior(key, n), labels)


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build: Callable[[Any], Model]
    defaults: dict  # run settings (Config fields) this model sets differently from Config's defaults
    settings: dict = dataclasses.field(default_factory=dict)  # name -> config.Setting: the model's own
    family: str = "unconditional GANs"  # its group in `gan_lab list`
    presets: dict = dataclasses.field(default_factory=dict)  # name -> settings over the defaults (--preset NAME)
    shortfall: str = ""  # where its defaults are known not to learn as well as the lab asks, said in `gan_lab list`

    def default(self, name: str):
        """This model's default for its own setting `name`: its register line's value, else its Setting's."""
        return self.defaults.get(name, self.settings[name].default)


FAMILIES = ("unconditional GANs", "conditional GANs", "VAEs")  # the groups of `gan_lab list`, in its order
_REGISTRY: dict[str, Recipe] = {}


def register(name: str, description: str, family: str = "unconditional GANs", settings: dict | None = None,
             presets: dict | None = None, shortfall: str = "", **defaults):
    """Decorator over a `build(cfg) -> Model`:
    `@register("wgan", "one line", settings={"n_critic": N_CRITIC}, lr=5e-5)`.

    `settings` are the model's own (config.Setting: default, help, bounds), read as cfg.<name>;
    `defaults` override run settings (lr, batch_size, ...) or its own settings' defaults for this
    model; `family` groups it in `gan_lab list`; `presets` are named sets of settings over the
    defaults, e.g. {"paper": {...}} where the defaults are not the paper's (`--preset paper`);
    `shortfall` says where the defaults are measured not to learn as well as the lab asks (issue 26).
    """

    def wrap(build):
        if family not in FAMILIES:
            raise ValueError(f"family {family!r} of {name!r} is not one of {FAMILIES}")
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        for other in _REGISTRY.values():  # one flag, one meaning: a setting shared by name must agree
            for key in set(other.settings) & set(settings or {}):
                if type(other.settings[key].default) is not type(settings[key].default):
                    raise ValueError(f"setting {key!r} of {name!r} has another type than in {other.name!r}")
        for preset, values in (presets or {}).items():
            unknown = set(values) - config.FIELDS - set(settings or {})
            if unknown:
                raise ValueError(f"preset {preset!r} of {name!r} sets {sorted(unknown)}, which it does not have")
        _REGISTRY[name] = Recipe(name, description, functools.partial(_build_in_precision, build), defaults,
                                 dict(settings or {}), family, dict(presets or {}), shortfall)
        return build

    return wrap


# Run settings no model's build reads (how long it trains, which data, which seed): runs that differ
# only in these get one Model object, and with it the training loop's compiled step, which
# trainer.make_train_step memoises per Model. So a study's jobs of one model (seeds, datasets), a run
# resumed in the same process and the legs of a learning curve compile once per process.
NOT_READ_BY_BUILD = config.RESUMABLE_FIELDS | {"seed", "dataset", "subset", "preset"}


_BUILT: collections.OrderedDict = collections.OrderedDict()  # what build() made, newest last
_BUILT_KEPT = 16  # as many as trainer.make_train_step keeps compiled steps


def build(cfg) -> Model:
    """The registered model `cfg.model` built for cfg, shared by configs that differ only in
    NOT_READ_BY_BUILD."""
    built_from = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_READ_BY_BUILD}
    key = json.dumps(built_from, sort_keys=True, default=str)
    if key not in _BUILT:
        _BUILT[key] = get(cfg.model).build(cfg)
        if len(_BUILT) > _BUILT_KEPT:
            _BUILT.popitem(last=False)
    _BUILT.move_to_end(key)
    return _BUILT[key]


def _build_in_precision(build, cfg) -> Model:
    """The model `build` makes, its training step traced in cfg.precision (gan_lab.precision)."""
    return precision.training_in(build(cfg), cfg.precision)


def _load_builtin_models() -> None:
    """Import every module of gan_lab.models, which runs its @register line: a new model is a new
    module there, with no list to update."""
    import importlib
    import pkgutil

    import gan_lab.models

    for module in pkgutil.iter_modules(gan_lab.models.__path__):
        importlib.import_module(f"gan_lab.models.{module.name}")


def all_settings() -> dict:
    """Every model's own settings by name, with the models that have each: for the CLI's flags."""
    _load_builtin_models()
    found: dict = {}
    for recipe in sorted(_REGISTRY.values(), key=lambda r: r.name):
        for key, declared in recipe.settings.items():
            found.setdefault(key, (declared, []))[1].append(recipe.name)
    return found


def names() -> list[str]:
    _load_builtin_models()
    return sorted(_REGISTRY)


def get(name: str) -> Recipe:
    _load_builtin_models()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; valid models: {', '.join(names())} (see `gan_lab list`)")
    return _REGISTRY[name]
