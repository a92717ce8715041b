"""A quality scale that compares across datasets: an FD read as "real images plus how much noise".

FD values are not comparable between MNIST and Fashion-MNIST: each dataset has its own evaluator and
its own spread of features. So a score is placed on a ladder made from the same dataset's real images:
training images with Gaussian pixel noise of rising strength sigma (in the [-1, 1] pixel range,
clipped, and quantised through uint8 as generated images are), each rung's FD measured against the
test set with the same evaluator and the same number of images as the score. A model's
*noise-equivalent sigma* is where its FD falls on that ladder (interpolated in log FD): 0.1 means
"as far from the test set as training images with noise of sigma 0.1". The same sigma means the same
kind of damage on both datasets, so the scale can be compared across them; experiments/quality_scale.py
checks that it ranks hand-made degraded sets alike on both (docs/quality.md#a-scale-for-both-datasets).

A setting *works* when its noise-equivalent sigma is at most WORKS_SIGMA and it draws every class.
A model *learns* at a budget (issue 26's bar, within one dataset) when it draws every class and its FD is
at most FD_BAR x its reference's at the same budget: dcgan's, or for a VAE, which blurs by design, the
best VAE's.
"""

from __future__ import annotations

import functools

import numpy as np

from gan_lab import data, evaluation, metrics

NOISE_LADDER = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)  # sigma of each rung, in [-1, 1] pixel units
WORKS_SIGMA = 0.3  # "works": no further from the test set than real images with noise of this sigma
LADDER_SEED = 0


def quantised(images: np.ndarray) -> np.ndarray:
    """float images in [-1, 1] (clipped) through uint8 and back, as generated images are scored."""
    as_uint8 = np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
    return data.to_model_range(as_uint8[..., 0] if as_uint8.ndim == 4 else as_uint8)


def with_noise(images: np.ndarray, sigma: float, seed: int = LADDER_SEED) -> np.ndarray:
    """float images (N, 28, 28, 1) in [-1, 1] plus N(0, sigma^2) per pixel, clipped and quantised."""
    noise = np.random.default_rng(seed).standard_normal(images.shape).astype(np.float32)
    return quantised(images + sigma * noise)


def fd_to_test_set(dataset: str, images: np.ndarray, data_dir=None) -> float:
    """FD of float images (N, 28, 28, 1) in [-1, 1] against `dataset`'s test set (its evaluator)."""
    features, _ = metrics.load_evaluator(dataset).features_and_logits(images)
    return metrics.frechet_distance(np.asarray(features), evaluation.reference(dataset, data_dir).features)


def training_images(dataset: str, n: int, data_dir=None) -> np.ndarray:
    """The first n training images, float (n, 28, 28, 1) in [-1, 1]."""
    images, _ = data.load_split(dataset, "train", data_dir)
    return data.to_model_range(images[:n])


@functools.lru_cache(maxsize=8)
def noise_ladder(dataset: str, n: int, data_dir=None) -> tuple[tuple[float, float], ...]:
    """((sigma, FD), ...) for each rung of NOISE_LADDER, from the first n training images: n should be
    the number of samples the scores being placed were computed from (FD's bias depends on it)."""
    real = training_images(dataset, n, data_dir)
    return tuple((sigma, fd_to_test_set(dataset, with_noise(real, sigma), data_dir)) for sigma in NOISE_LADDER)


def noise_equivalent(fd: float, ladder) -> float:
    """The sigma at which the ladder's FD equals `fd`, interpolating log FD linearly between rungs.
    0 below the first rung (as good as real images); beyond the last rung, extrapolated along the last
    segment (a score worse than the noisiest rung is still ordered, not capped)."""
    sigmas = np.array([sigma for sigma, _ in ladder])
    log_fds = np.log(np.maximum.accumulate(np.array([value for _, value in ladder])))  # rising, as noise should
    log_fd = np.log(max(fd, 1e-9))
    if log_fd <= log_fds[0]:
        return 0.0
    if log_fd >= log_fds[-1]:
        slope = (sigmas[-1] - sigmas[-2]) / max(log_fds[-1] - log_fds[-2], 1e-9)
        return float(sigmas[-1] + slope * (log_fd - log_fds[-1]))
    return float(np.interp(log_fd, log_fds, sigmas))


def draws_every_class(class_coverage: float) -> bool:
    return class_coverage >= 1.0


FD_BAR = 2.0  # "learns": FD at most this x the reference model's at the same budget, and every class drawn


def learns(fd: float, reference_fd: float, class_coverage: float) -> bool:
    return fd <= FD_BAR * reference_fd and draws_every_class(class_coverage)


def works(sigma: float, class_coverage: float, threshold: float = WORKS_SIGMA) -> bool:
    return sigma <= threshold and draws_every_class(class_coverage)
