"""What to ask a trained model for: class rows with fixed styles, latent walks, exports. Pure functions
of (model, state, key); pictures are plotting.py's job."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np

from gan_lab.data import NUM_CLASSES
from gan_lab.errors import UserError


class LatentCode(NamedTuple):
    """A named slice latent[:, start:start + size] of a model's latent (Model.codes): a "categorical"
    code is one-hot, a "uniform" one lies in [-1, 1]."""

    name: str
    start: int
    size: int
    kind: str


def decoder(model):
    """model.decode compiled as one program: run op by op, a sheet's decoder dispatches hundreds of small
    ops (3-9 s for a first wardrobe on a 2-core CPU, against ~1 s compiled). jax.jit keeps one compiled
    program per model.decode function and input shape, so a process compiles each sheet's shape once."""
    return jax.jit(model.decode)


def check_labels(model, labels, name: str) -> None:
    """Raise a one-line error if `labels` cannot be asked of this model."""
    if labels is None:
        return
    if not model.conditional:
        raise UserError(f"{name} is unconditional: it cannot draw given labels; drop --labels (or train cgan)")
    bad = [int(label) for label in np.asarray(labels).ravel() if not 0 <= label < NUM_CLASSES]
    if bad:
        raise UserError(f"label {bad[0]} is out of range: labels are 0..{NUM_CLASSES - 1}")


def class_rows(model, state, key, n_styles: int, classes):
    """One row per class, one column per style: the same noise vector down each column.

    Returns (images (len(classes), n_styles, 28, 28, 1), labels (len(classes), n_styles)).
    """
    classes = jnp.asarray(classes, jnp.int32)
    styles = model.prior(key, n_styles)
    z = jnp.tile(styles, (classes.shape[0], 1))
    labels = jnp.repeat(classes, n_styles)
    images = decoder(model)(state, z, labels)
    return images.reshape(classes.shape[0], n_styles, *images.shape[1:]), labels.reshape(classes.shape[0], n_styles)


def code_rows(model, state, key, n_columns: int, code: LatentCode, values):
    """One row per value of one code, one column per latent from the prior: the same latent down each
    column, with its `code` slice set to the row's value. values (n_rows, code.size).

    Returns images (n_rows, n_columns, 28, 28, 1); swap the two axes for a code varying along a row.
    """
    values = jnp.asarray(values, jnp.float32)
    base = model.prior(key, n_columns)  # (n_columns, z_dim)
    latents = jnp.broadcast_to(base, (values.shape[0], *base.shape))
    latents = latents.at[:, :, code.start:code.start + code.size].set(values[:, None, :])
    images = decoder(model)(state, latents.reshape(-1, base.shape[-1]), None)
    return images.reshape(values.shape[0], n_columns, *images.shape[1:])


def slerp(z0, z1, t):
    """Spherical interpolation: intermediate points keep the norm typical of Gaussian samples,
    where a straight line would pass through the unlikely low-norm middle of the latent space."""
    cos = jnp.sum(z0 * z1, -1, keepdims=True) / (jnp.linalg.norm(z0, axis=-1, keepdims=True)
                                                 * jnp.linalg.norm(z1, axis=-1, keepdims=True))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    sin = jnp.sin(omega)
    safe = jnp.where(sin > 1e-6, sin, 1.0)
    walk = (jnp.sin((1.0 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / safe
    return jnp.where(sin > 1e-6, walk, (1.0 - t) * z0 + t * z1)


def interpolation_rows(model, state, key, n_rows: int, n_steps: int):
    """Each row walks from one random latent point to another; conditional models keep one class per row
    (row i draws class i mod 10). Returns images (n_rows, n_steps, 28, 28, 1) and the row labels or None."""
    start_key, end_key = jax.random.split(key)
    z0 = model.prior(start_key, n_rows)[:, None]
    z1 = model.prior(end_key, n_rows)[:, None]
    t = jnp.linspace(0.0, 1.0, n_steps)[None, :, None]
    z = slerp(z0, z1, t).reshape(n_rows * n_steps, model.z_dim)
    row_labels = jnp.arange(n_rows, dtype=jnp.int32) % NUM_CLASSES if model.conditional else None
    labels = jnp.repeat(row_labels, n_steps) if model.conditional else None
    images = decoder(model)(state, z, labels)
    return images.reshape(n_rows, n_steps, *images.shape[1:]), row_labels


def latent_manifold(model, state, n: int = 20):
    """For a 2-D latent: an n x n grid of decodings at the N(0, I) quantiles 5%..95% of each axis, the
    picture of the learned manifold in Kingma & Welling (2014, fig. 4) and the TF collection's VAE.
    Returns images (n, n, 28, 28, 1): row i walks the second latent axis, column j the first."""
    if model.z_dim != 2:
        raise UserError(f"the latent manifold is drawn for a 2-D latent; this run's has {model.z_dim}: "
                        "train with --z-dim 2")
    quantiles = jax.scipy.special.ndtri(jnp.linspace(0.05, 0.95, n))
    first, second = jnp.meshgrid(quantiles, quantiles[::-1])  # the second axis grows upwards
    images = decoder(model)(state, jnp.stack([first.ravel(), second.ravel()], -1), None)
    return images.reshape(n, n, *images.shape[1:])


def export_samples(model, state, key, n: int, labels=None, chunk: int = 1000):
    """n samples as uint8 (n, 28, 28) with the labels used (-1 for unconditional models).

    Conditional models draw labels 0..9 in turn unless `labels` (cycled to length n) is given.
    """
    if model.conditional:
        pool = jnp.arange(NUM_CLASSES) if labels is None else jnp.asarray(labels, jnp.int32)
        all_labels = jnp.resize(pool, (n,)).astype(jnp.int32)
    else:
        all_labels = jnp.full((n,), -1, jnp.int32)
    decode = decoder(model)
    z = model.prior(key, n)
    pieces = []
    for start in range(0, n, chunk):
        part_labels = all_labels[start:start + chunk] if model.conditional else None
        pieces.append(np.asarray(decode(state, z[start:start + chunk], part_labels)))
    images = np.concatenate(pieces)[..., 0]
    as_uint8 = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return as_uint8, np.asarray(all_labels)
