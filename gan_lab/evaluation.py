"""Scoring trained models: 10,000 generated images against the 10,000 test images with the
shipped evaluator networks (metrics.py), plus the test ELBO for VAEs. Glue between a run and
the pure metric functions."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import jax
import numpy as np

from gan_lab import data, files, metrics, runtime, sampling

EVAL_SAMPLES = 10_000
# Where the real images' evaluator features are kept between processes (the test set's take ~5 s to
# compute, the training set's ~20-30 s on 2 CPU cores, and every `gan_lab eval`, study shard and
# report needs them): $GAN_LAB_CACHE, else the user cache. Each file names the evaluator's
# fingerprint, k and the jax version, so a new evaluator or jax computes them afresh.
CACHE_ENV = "GAN_LAB_CACHE"


def score(cfg, model, state, n: int = EVAL_SAMPLES, seed: int = 0, elbo=None, data_dir=None,
          detail: bool = False) -> dict:
    """Every metric for one model state against the test set. Generated images go through uint8,
    exactly like the real ones (and like `gan_lab sample --n`), so both sets are quantised the same
    way. detail=True adds the per-class metrics and the memorisation check (metrics.evaluate_in_detail)."""
    generated, labels = sampling.export_samples(model, state, jax.random.key(seed), n)
    images, requested = data.to_model_range(generated), labels if model.conditional else None
    real = reference(cfg.dataset, data_dir, detail)
    results = metrics.evaluate_samples(images, None, cfg.dataset, labels=requested, seed=seed, real=real)
    if detail:
        results.update(metrics.evaluate_in_detail(images, real, requested))
    if elbo is not None:
        results.update(elbo(state))
    return results


def reference(dataset: str, data_dir=None, detail: bool = False) -> metrics.Reference:
    """The test set's metrics.Reference, computed once per process (a study scores many models
    against it); with detail, also the training set's features (60,000 images)."""
    root = str(data.candidate_dirs(data_dir)[0])  # one cache entry whether the directory came as None, str or Path
    test = _test_reference(dataset, root)
    return _with_training_set(dataset, root) if detail else test


@functools.lru_cache(maxsize=2)
def _test_reference(dataset: str, root: str) -> metrics.Reference:
    with _computing(dataset, "test"):  # processes starting together compute it once; the others read it
        kept = _load_kept(dataset, "test")
        if kept is not None:
            return metrics.Reference(dataset, metrics.load_evaluator(dataset).fingerprint, kept["features"],
                                     kept["radii"], kept.get("labels"))
        images, labels = data.load_split(dataset, "test", root)
        real = metrics.reference(data.to_model_range(images), dataset, labels)
        _keep(dataset, "test", features=real.features, radii=real.radii, labels=real.labels)
        return real


@functools.lru_cache(maxsize=2)
def _with_training_set(dataset: str, root: str) -> metrics.Reference:
    # Built on the cached test Reference: the plain and the detailed scores of one study share the
    # test set's features instead of computing them twice.
    test = _test_reference(dataset, root)
    with _computing(dataset, "train"):
        kept = _load_kept(dataset, "train")
        if kept is not None:
            return test._replace(train_features=kept["train_features"], test_to_train=kept["test_to_train"])
        train_images = data.to_model_range(data.load_split(dataset, "train", root)[0])
        real = metrics.with_training_set(test, train_images)
        _keep(dataset, "train", train_features=real.train_features, test_to_train=real.test_to_train)
        return real


def cache_dir() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return runtime.user_cache_dir() / "features"


def _kept_path(dataset: str, split: str) -> Path:
    fingerprint = metrics.load_evaluator(dataset).fingerprint
    return cache_dir() / f"{dataset}-{split}-{fingerprint}-k{metrics.NEIGHBOURS}-jax{jax.__version__}.npz"


@contextlib.contextmanager
def _computing(dataset: str, split: str):
    """While this process looks for or computes a split's features, others asking for them wait."""
    path = _kept_path(dataset, split)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = files.open_lock(path.with_suffix(".lock"))
    except OSError:  # a cache that cannot be written is skipped, unlocked
        lock_fd = None
    with files.holding_lock(lock_fd):
        yield


def _load_kept(dataset: str, split: str) -> dict | None:
    """The kept arrays, or None when there are none (or they cannot be read: they are computed again)."""
    try:
        with np.load(_kept_path(dataset, split)) as kept:
            return {name: kept[name] for name in kept.files}
    except (OSError, ValueError, KeyError):
        return None


def _keep(dataset: str, split: str, **arrays) -> None:
    """Write the arrays for the next process, atomically; a cache that cannot be written is skipped."""
    path = _kept_path(dataset, split)
    kept = {name: value for name, value in arrays.items() if value is not None}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        files.replace_with(path, lambda tmp: np.savez(tmp, **kept))


EVAL_KEY_SEED = 99
EVAL_CHUNK = 1000


def elbo_evaluator(model, images, labels):
    """`state -> {"test_<metric>": float}` of model.evaluate (the VAEs' ELBO) averaged over a whole
    split, in chunks to bound memory."""
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


def elbo_scorer(cfg, model, data_dir=None):
    """For models with an `evaluate` (the VAEs): state -> {"test_neg_elbo": nats, ...}."""
    return elbo_evaluator(model, *data.load_for_model(cfg, "test", data_dir)) if model.evaluate else None


def report_lines(results: dict) -> list[str]:
    lines = [f"{results['model']} on {results['dataset']}, {results['epochs']:g} epochs ({results['step']} steps), "
             f"seed {results['seed']}",
             *metrics.format_report(results)]
    if "test_neg_elbo" in results:
        lines.append(f"test negative ELBO (nats)  {results['test_neg_elbo']:.2f}")
    return lines
