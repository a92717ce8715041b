"""Models registered by name. A model is a builder `cfg -> Model` plus its default settings."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax

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

    def sample(self, state, key, n: int, labels=None):
        """n images from standard-normal latents drawn with `key`: the same key, the same noise."""
        return self.decode(state, jax.random.normal(key, (n, self.z_dim)), labels)


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build: Callable[[Any], Model]
    defaults: dict  # Config fields this model sets differently from Config's defaults
    ignores: frozenset = frozenset()  # Config fields this model does not read: setting one is an error


_REGISTRY: dict[str, Recipe] = {}


def register(name: str, description: str, ignores=(), **defaults):
    """Decorator: `@register("dcgan", "one line", ignores=("arch",), lr=2e-4)` over a `build(cfg) -> Model`."""

    def wrap(build):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = Recipe(name, description, build, defaults, frozenset(ignores))
        return build

    return wrap


def _load_builtin_models() -> None:
    # Importing the package runs every model module's @register line.
    import gan_lab.models  # noqa: F401


def names() -> list[str]:
    _load_builtin_models()
    return sorted(_REGISTRY)


def get(name: str) -> Recipe:
    _load_builtin_models()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; valid models: {', '.join(names())} (see `gan_lab list`)")
    return _REGISTRY[name]
