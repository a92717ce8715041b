"""Measured quality of generated images, in the feature space of gan_lab's own evaluator networks.

Every metric is the published estimator with gan_lab's evaluator (gan_lab/evaluator.py) in place of
Inception-v3, so the names say so: "FD", not FID; "KD", not KID; "classifier score", not IS. The
numbers are comparable only between reports printing the same evaluator fingerprint, and they depend
on the number of samples: gan_lab's convention is 10,000 generated images against the 10,000 test
images.

All functions below `evaluate_samples` are pure functions of numpy arrays: features (N, D) from
`Evaluator.features`, logits (N, 10) from `Evaluator.logits`. Distances and kernels are computed in
blocks of CHUNK rows, so memory stays at a few CHUNK x N matrices whatever N is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gan_lab.evaluator import load_evaluator

CHUNK = 1000  # rows per block of a pairwise-distance matrix: 1000 x 10000 float32 is 40 MB
NEIGHBOURS = 3  # k of the k-NN radii in improved precision/recall (Kynkaanniemi et al. 2019)
KD_SUBSETS = 100  # KID's usual setting (Binkowski et al. 2018; tf-gan, torch-fidelity): 100 subsets
KD_SUBSET_SIZE = 1000  # ...of 1000 samples each
MIN_CLASS_SHARE = 0.01  # a class is "covered" if at least 1% of the samples are predicted as it

DISPLAY_NAMES = {
    "fd": "FD (gan_lab evaluator features)",
    "kd_mean": "KD mean (KID estimator, gan_lab evaluator features)",
    "kd_std": "KD std over subsets",
    "precision": f"precision (k={NEIGHBOURS})",
    "recall": f"recall (k={NEIGHBOURS})",
    "classifier_score": "classifier score (IS formula, gan_lab evaluator)",
    "class_coverage": f"class coverage (classes with >= {MIN_CLASS_SHARE:.0%} of predictions)",
    "effective_classes": "effective number of classes (exp entropy of predicted labels)",
    "label_accuracy": "evaluator accuracy on the requested labels",
}


# --- Frechet distance -------------------------------------------------------------------

def feature_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) in float64: float32 sums over 10k rows lose digits FD needs."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; round-off negative eigenvalues count as 0."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance_from_moments(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), the Frechet distance of two Gaussians.

    Tr (S1 S2)^1/2 is computed as Tr (A S2 A)^1/2 with A = S1^1/2: A S2 A is symmetric PSD, with
    the same eigenvalues as S1 S2, so two `eigh` calls replace scipy's sqrtm of a non-symmetric
    product (which goes complex and needs an epsilon on singular covariances, as with dead ReLUs).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt_product = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    mean_term = np.sum((mu1 - mu2) ** 2)
    return float(mean_term + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FD between two feature sets (N, D), each summarised by its mean and covariance."""
    return frechet_distance_from_moments(*feature_moments(features_a), *feature_moments(features_b))


# --- kernel distance (the KID estimator) -------------------------------------------------

def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples with k(a, b) = (a.b / d + 1)^3 (Binkowski et al.)."""
    m, d = x.shape

    def kernel(a, b):
        # Dot products in float32; the cube and the sums in float64 (the precision). The cube by two
        # in-place products: np.power(k, 3) took 4x as long, and 300 kernels are most of a score's time.
        k = np.asarray(a @ b.T, np.float64)
        k /= d
        k += 1.0
        return k * k * k

    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, n_subsets: int = KD_SUBSETS,
                    subset_size: int = KD_SUBSET_SIZE, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of polynomial_mmd2 over random subsets, as KID reports it.

    Each subset draws `subset_size` rows without replacement from each set, independently;
    `seed` fixes the draws so the same features always give the same numbers. The scale is the
    evaluator features', not KID's usual 1e-3: with the shipped MNIST evaluator, 10k training
    images vs the test set give about -0.09 +- 0.5 (unbiased, so it can be negative), uniform noise
    about 16,000.
    """
    features_a = np.asarray(features_a, np.float32)
    features_b = np.asarray(features_b, np.float32)
    size = min(subset_size, len(features_a), len(features_b))
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2(features_a[rng.choice(len(features_a), size, replace=False)],
                        features_b[rng.choice(len(features_b), size, replace=False)])
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# --- improved precision and recall -------------------------------------------------------

def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances; round-off negatives clipped to 0."""
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def knn_radii_squared(features: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """(N,) squared distance from each point to its k-th nearest *other* point of the same set."""
    features = np.asarray(features, np.float32)
    radii = np.empty(len(features), np.float32)
    for start in range(0, len(features), CHUNK):
        d2 = _squared_distances(features[start:start + CHUNK], features)
        # Index k, not k-1: each point's nearest neighbour is itself, at distance 0.
        radii[start:start + CHUNK] = np.partition(d2, k, axis=1)[:, k]
    return radii


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray,
                     k: int = NEIGHBOURS, real_radii: np.ndarray | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    The real manifold is the union of balls around each real point with radius its k-th nearest
    real neighbour; likewise for the fake one. Precision: fraction of fake points inside the real
    manifold. Recall: fraction of real points inside the fake manifold. `real_radii`: the real
    points' knn_radii_squared, if already computed (they do not depend on the fakes).
    """
    real = np.asarray(real_features, np.float32)
    fake = np.asarray(fake_features, np.float32)
    real_radii = knn_radii_squared(real, k) if real_radii is None else real_radii
    fake_radii = knn_radii_squared(fake, k)
    fake_is_covered = np.zeros(len(fake), bool)
    real_is_covered = np.zeros(len(real), bool)
    # One pass over the fake-real distance blocks serves both directions.
    for start in range(0, len(fake), CHUNK):
        d2 = _squared_distances(fake[start:start + CHUNK], real)  # (chunk, n_real)
        fake_is_covered[start:start + CHUNK] = np.any(d2 <= real_radii[None, :], axis=1)
        real_is_covered |= np.any(d2 <= fake_radii[start:start + CHUNK, None], axis=0)
    return float(fake_is_covered.mean()), float(real_is_covered.mean())


# --- from the evaluator's class predictions ----------------------------------------------

def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def classifier_score(logits: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))): the Inception Score formula with the evaluator's softmax.

    One estimate over all samples, without IS's 10 splits: at a fixed N the splits only add the
    small-sample bias of 10x smaller marginals. Ranges from 1 (one class, or unsure) to 10.
    """
    log_p = _log_softmax(logits)  # (N, 10) log p(y|x)
    p = np.exp(log_p)
    log_marginal = np.log(p.mean(axis=0))  # log p(y)
    kl = np.sum(p * (log_p - log_marginal), axis=1)
    return float(np.exp(kl.mean()))


def predicted_class_shares(logits: np.ndarray) -> np.ndarray:
    """(n_classes,) fraction of samples whose most likely class is each class."""
    logits = np.asarray(logits)
    counts = np.bincount(logits.argmax(axis=1), minlength=logits.shape[1])
    return counts / max(len(logits), 1)


def class_coverage(logits: np.ndarray, min_share: float = MIN_CLASS_SHARE) -> float:
    """Fraction of the classes that at least `min_share` of the samples are predicted as.

    1% is a tenth of a balanced share, so the evaluator's rare mistakes do not make a class the
    model never draws look covered (MNIST: 0.6% test errors spread over 9 wrong classes), while a
    class drawn a few times in a thousand still counts as missing.
    """
    return float(np.mean(predicted_class_shares(logits) >= min_share))


def effective_classes(logits: np.ndarray) -> float:
    """exp(entropy) of the predicted-class histogram: 10 for balanced classes, 5 for five balanced."""
    shares = predicted_class_shares(logits)
    shares = shares[shares > 0]  # 0 log 0 = 0
    return float(np.exp(-np.sum(shares * np.log(shares))))


def label_accuracy(logits: np.ndarray, requested_labels: np.ndarray) -> float:
    """For conditional models: how often the evaluator sees the class the model was asked for."""
    return float(np.mean(np.asarray(logits).argmax(axis=1) == np.asarray(requested_labels)))


# --- per class, and memorisation ------------------------------------------------------------

MIN_CLASS_SAMPLES = 50  # fewer fakes of a class than this: its FD is not estimated (None)


def coverage(real_features: np.ndarray, fake_features: np.ndarray, k: int = NEIGHBOURS,
             real_radii: np.ndarray | None = None) -> float:
    """Coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics"): the fraction of real
    points whose k-NN ball (radius: the k-th nearest other real point) holds at least one fake point.
    Unlike recall it is not inflated by a few fakes with huge k-NN balls of their own."""
    real = np.asarray(real_features, np.float32)
    fake = np.asarray(fake_features, np.float32)
    if len(fake) == 0:
        return 0.0
    radii = knn_radii_squared(real, k) if real_radii is None else real_radii
    covered = np.zeros(len(real), bool)
    for start in range(0, len(fake), CHUNK):
        covered |= np.any(_squared_distances(fake[start:start + CHUNK], real) <= radii[None, :], axis=0)
    return float(covered.mean())


def per_class_metrics(fake_features, fake_classes, real_features, real_classes, n_classes: int = 10) -> dict:
    """FD and coverage of each class c: the fakes of class c (asked for, or as the evaluator sees
    them) against the real images of class c. {"fd": [..], "coverage": [..], "n_fake": [..]}; a
    class with fewer than MIN_CLASS_SAMPLES fakes has FD None (a covariance from a handful of
    points is noise) and its coverage as measured (low: the model rarely draws it)."""
    fake_classes, real_classes = np.asarray(fake_classes), np.asarray(real_classes)
    fds, coverages, counts = [], [], []
    for c in range(n_classes):
        fake, real = fake_features[fake_classes == c], real_features[real_classes == c]
        counts.append(int(len(fake)))
        fds.append(frechet_distance(fake, real) if len(fake) >= MIN_CLASS_SAMPLES else None)
        coverages.append(coverage(real, fake))
    return {"fd": fds, "coverage": coverages, "n_fake": counts}


def nearest_neighbours(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each query's nearest reference point, in blocks of CHUNK queries."""
    queries, references = np.asarray(queries, np.float32), np.asarray(references, np.float32)
    distances, indices = np.empty(len(queries), np.float32), np.empty(len(queries), np.int64)
    for start in range(0, len(queries), CHUNK):
        d2 = _squared_distances(queries[start:start + CHUNK], references)
        nearest = d2.argmin(axis=1)
        indices[start:start + CHUNK] = nearest
        distances[start:start + CHUNK] = np.sqrt(d2[np.arange(len(nearest)), nearest])
    return distances, indices


MEMORISATION_EXAMPLES = 8  # the samples closest to the training set, kept for a sheet beside their neighbours


def memorisation(fake_features, train_features, test_to_train: np.ndarray) -> dict:
    """How close samples come to the training images, against how close unseen real images do.

    The threshold is the smallest distance from any test image to its nearest training image: a sample
    nearer a training image than that is nearer than real, unseen data ever gets, a sign of a copy.
    `memorised_fraction` is the fraction of samples under it; the medians put it in scale. The indices
    of the MEMORISATION_EXAMPLES closest samples and of their nearest training images are kept.
    `test_to_train`: each test image's distance to its nearest training image (nearest_neighbours)."""
    fake_distances, fake_nearest = nearest_neighbours(fake_features, train_features)
    test_distances = np.asarray(test_to_train)
    threshold = float(test_distances.min())
    closest = np.argsort(fake_distances)[:MEMORISATION_EXAMPLES]
    return {"memorised_fraction": float(np.mean(fake_distances < threshold)), "threshold": threshold,
            "median_sample_to_train": float(np.median(fake_distances)),
            "median_test_to_train": float(np.median(test_distances)),
            "closest_samples": closest.tolist(), "their_nearest_train": fake_nearest[closest].tolist(),
            "their_distances": fake_distances[closest].tolist()}


# --- everything at once -------------------------------------------------------------------

def metrics_from_outputs(fake_features, fake_logits, real_features, labels=None, seed: int = 0,
                         real_radii: np.ndarray | None = None) -> dict:
    """Every metric from the evaluator's outputs; `labels` are the requested classes, if any."""
    # The module's constants are read here, at call time, so one setting governs every report.
    kd_mean, kd_std = kernel_distance(fake_features, real_features, KD_SUBSETS, KD_SUBSET_SIZE, seed)
    precision, recall = precision_recall(real_features, fake_features, real_radii=real_radii)
    results = {
        "fd": frechet_distance(fake_features, real_features),
        "kd_mean": kd_mean,
        "kd_std": kd_std,
        "precision": precision,
        "recall": recall,
        "classifier_score": classifier_score(fake_logits),
        "class_coverage": class_coverage(fake_logits),
        "effective_classes": effective_classes(fake_logits),
    }
    if labels is not None:
        results["label_accuracy"] = label_accuracy(fake_logits, labels)
    return results


class Reference(NamedTuple):
    """What every score compares against, computed once: the evaluator's features of the real test
    images and their k-NN radii; for the detailed scores also their labels, the training images'
    features and each test image's distance to its nearest training image."""

    dataset: str
    fingerprint: str
    features: np.ndarray
    radii: np.ndarray
    labels: np.ndarray | None = None
    train_features: np.ndarray | None = None
    test_to_train: np.ndarray | None = None


def reference(test_images, dataset: str, test_labels=None, train_images=None) -> Reference:
    """The Reference of real `test_images` (float32 in [-1, 1]); with labels and training images it
    also serves evaluate_in_detail."""
    evaluator = load_evaluator(dataset)
    features = evaluator.features(test_images)
    real = Reference(dataset, evaluator.fingerprint, features, knn_radii_squared(features),
                     None if test_labels is None else np.asarray(test_labels))
    return real if train_images is None else with_training_set(real, train_images)


def with_training_set(real: Reference, train_images) -> Reference:
    """`real` with the training images' features and each test image's distance to its nearest
    training image (for evaluate_in_detail's memorisation check)."""
    train_features = load_evaluator(real.dataset).features(train_images)
    return real._replace(train_features=train_features,
                         test_to_train=nearest_neighbours(real.features, train_features)[0])


def evaluate_samples(images, test_images, dataset: str, labels=None, seed: int = 0,
                     real: Reference | None = None) -> dict:
    """All metrics of generated `images` against real `test_images`, both float32 (N, 28, 28, 1) in [-1, 1].

    The dict also names the evaluator ("evaluator": its fingerprint) and the sample sizes, without
    which the numbers cannot be compared. `labels`: the classes a conditional model was asked for.
    `real`: test_images' Reference, when several sets are scored against them (test_images unused).
    """
    real = reference(test_images, dataset) if real is None else real
    fake_features, fake_logits = load_evaluator(dataset).features_and_logits(images)
    return {
        "dataset": dataset,
        "evaluator": real.fingerprint,
        "n_generated": len(fake_features),
        "n_real": len(real.features),
        **metrics_from_outputs(fake_features, fake_logits, real.features, labels, seed, real.radii),
    }


def evaluate_in_detail(images, real: Reference, labels=None) -> dict:
    """Per-class FD and coverage, and the memorisation check, of generated `images` (float32 in
    [-1, 1]) against a Reference made with test labels and training images. A sample's class is the
    one it was asked for (`labels`, conditional models), else the evaluator's prediction; real images
    are grouped by their true labels."""
    fake_features, fake_logits = load_evaluator(real.dataset).features_and_logits(images)
    fake_classes = np.asarray(labels) if labels is not None else np.asarray(fake_logits).argmax(axis=1)
    per_class = per_class_metrics(fake_features, fake_classes, real.features, real.labels)
    return {"per_class": {"classes_from": "requested labels" if labels is not None else "evaluator predictions",
                          **per_class},
            "memorisation": memorisation(fake_features, real.train_features, real.test_to_train)}


def format_report(results: dict) -> list[str]:
    """evaluate_samples' dict as aligned lines, the evaluator fingerprint first."""
    lines = [f"evaluator: gan_lab {results['dataset']} classifier, fingerprint {results['evaluator']} "
             f"(not Inception; compare only numbers with the same fingerprint)",
             f"samples: {results['n_generated']} generated vs {results['n_real']} real"]
    width = max(len(name) for name in DISPLAY_NAMES.values())
    for key, name in DISPLAY_NAMES.items():
        if key in results:
            lines.append(f"{name:<{width}}  {results[key]:.4f}")
    return lines
