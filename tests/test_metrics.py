"""Metrics against closed forms and hand-computed cases, and the shipped evaluators on the real data.

Evaluator outputs are computed once per session (the slow part: a forward pass per 10k images).
The real reference is always the full 10,000-image test set; "generated" sets built from training
images, noise or class subsets use 2,000 images to keep the file well under a minute, and KD uses
20 subsets instead of the default 100 where its value, not its noise, is what is tested.
"""

import functools
import hashlib

import numpy as np
import pytest
import scipy.linalg
from flax import nnx

from gan_lab import data, evaluator, metrics
from gan_lab.errors import UserError

N_GENERATED = 2000
KD_TEST_SUBSETS = 20


# --- the shipped evaluators on real data -------------------------------------------------

@functools.lru_cache(maxsize=None)
def evaluated(data_dir, dataset: str, split: str, n: int | None = None):
    """(features, logits, labels) of the first n images of a split (all if None)."""
    images, labels = data.load_split(dataset, split, data_dir)
    features, logits = evaluator.load_evaluator(dataset).features_and_logits(data.to_model_range(images[:n]))
    return features, logits, labels[:n]


@functools.lru_cache(maxsize=None)
def generated(data_dir, dataset: str, kind: str):
    """(features, logits) of N_GENERATED stand-ins for generated images of one kind."""
    if kind == "uniform noise":  # the worst 'generator' with the right range
        noise = np.random.default_rng(0).uniform(-1, 1, (N_GENERATED, 28, 28, 1)).astype(np.float32)
        return evaluator.load_evaluator(dataset).features_and_logits(noise)
    features, logits, labels = evaluated(data_dir, dataset, "train", 2 * N_GENERATED)
    chosen = {"training images": np.arange(N_GENERATED),  # a perfect generator
              "classes 0-4": np.flatnonzero(labels < 5)[:N_GENERATED]}[kind]  # one that drops half
    return features[chosen], logits[chosen]


@functools.lru_cache(maxsize=None)
def precision_recall_against_test(data_dir, dataset: str, kind: str):
    return metrics.precision_recall(evaluated(data_dir, dataset, "test")[0], generated(data_dir, dataset, kind)[0])


@pytest.mark.parametrize("dataset, target", [("mnist", 0.993), ("fashion-mnist", 0.92)])
def test_shipped_evaluator_meets_its_test_accuracy_target(data_dir, dataset, target):
    _, logits, labels = evaluated(data_dir, dataset, "test")
    assert len(labels) == 10_000
    assert np.mean(logits.argmax(1) == labels) >= target


# FD of 2,000 training images vs the test set, and of 2,000 noise images. Measured with the shipped
# weights: MNIST 3.6 and 5805, Fashion-MNIST 2.0 and 997; the bounds leave room for a retrained
# evaluator, the ratio is what the metric exists to show.
FD_BOUNDS = {"mnist": (6.0, 2000.0), "fashion-mnist": (4.0, 500.0)}


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_fd_is_small_for_real_images_and_large_for_noise(data_dir, dataset):
    test_features, _, _ = evaluated(data_dir, dataset, "test")
    train_features, _ = generated(data_dir, dataset, "training images")
    noise_features, _ = generated(data_dir, dataset, "uniform noise")
    real_fd = metrics.frechet_distance(train_features, test_features)
    noise_fd = metrics.frechet_distance(noise_features, test_features)
    most_for_real, least_for_noise = FD_BOUNDS[dataset]
    assert real_fd < most_for_real, real_fd
    assert noise_fd > least_for_noise, noise_fd
    assert noise_fd > 50 * real_fd


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_kd_and_precision_recall_separate_real_images_from_noise(data_dir, dataset):
    test_features, _, _ = evaluated(data_dir, dataset, "test")
    train_features, _ = generated(data_dir, dataset, "training images")
    noise_features, _ = generated(data_dir, dataset, "uniform noise")
    real_kd, _ = metrics.kernel_distance(train_features, test_features, n_subsets=KD_TEST_SUBSETS)
    noise_kd, _ = metrics.kernel_distance(noise_features, test_features, n_subsets=KD_TEST_SUBSETS)
    assert noise_kd > 100 * abs(real_kd)
    precision, recall = precision_recall_against_test(data_dir, dataset, "uniform noise")
    # Measured precision of noise: 0 on MNIST, 0.125 on Fashion-MNIST, where a few far-out real
    # images have k-NN balls wide enough to take in some noise. No real image is near the noise.
    assert precision < 0.15 and recall == 0.0, (precision, recall)
    precision, recall = precision_recall_against_test(data_dir, dataset, "training images")
    assert precision > 0.6 and recall > 0.6, (precision, recall)


def test_identical_sets_give_zero_fd_and_kd_and_full_precision_recall(data_dir):
    features, _, _ = evaluated(data_dir, "mnist", "test")
    # Not exactly 0: round-off in the covariance's near-zero eigenvalues (units that never fire
    # make it singular). Real sets differ by more than 1.
    assert abs(metrics.frechet_distance(features, features)) < 1e-4
    noise_kd, _ = metrics.kernel_distance(generated(data_dir, "mnist", "uniform noise")[0], features,
                                          n_subsets=KD_TEST_SUBSETS)
    same_kd, same_std = metrics.kernel_distance(features, features, n_subsets=KD_TEST_SUBSETS)
    # Unbiased with independent subsets: zero on average, not in every draw.
    assert abs(same_kd) < 1e-3 * noise_kd and abs(same_kd) < same_std
    subset = features[:N_GENERATED]
    assert metrics.precision_recall(subset, subset) == (1.0, 1.0)


def test_dropping_half_the_classes_lowers_recall_and_coverage(data_dir):
    test_features, test_logits, _ = evaluated(data_dir, "mnist", "test")
    all_features, all_logits = generated(data_dir, "mnist", "training images")
    half_features, half_logits = generated(data_dir, "mnist", "classes 0-4")
    _, full_recall = precision_recall_against_test(data_dir, "mnist", "training images")
    half_precision, half_recall = precision_recall_against_test(data_dir, "mnist", "classes 0-4")
    assert half_precision > 0.6  # what is drawn is still realistic...
    assert half_recall < 0.6 * full_recall  # ...but half of the real variety is missing
    assert metrics.class_coverage(all_logits) == 1.0
    assert metrics.class_coverage(half_logits) == 0.5
    assert metrics.effective_classes(half_logits) == pytest.approx(5.0, abs=0.1)
    assert metrics.effective_classes(test_logits) == pytest.approx(10.0, abs=0.05)
    assert metrics.frechet_distance(half_features, test_features) > \
        5 * metrics.frechet_distance(all_features, test_features)


@pytest.mark.parametrize("dataset, least", [("mnist", 9.5), ("fashion-mnist", 8.0)])
def test_classifier_score_is_near_10_for_the_test_set_and_near_1_for_one_class(data_dir, dataset, least):
    _, logits, labels = evaluated(data_dir, dataset, "test")
    assert least < metrics.classifier_score(logits) <= 10.0
    assert metrics.classifier_score(logits[labels == 1]) < 1.2


def test_label_accuracy_scores_requested_labels(data_dir):
    _, logits, labels = evaluated(data_dir, "mnist", "test")
    assert metrics.label_accuracy(logits, labels) >= 0.993
    assert metrics.label_accuracy(logits, (labels + 1) % 10) < 0.01


def test_evaluate_samples_reports_every_metric_and_the_evaluator(data_dir, monkeypatch):
    monkeypatch.setattr(metrics, "KD_SUBSETS", KD_TEST_SUBSETS)
    images, labels = data.load_split("mnist", "test", data_dir)
    test_images = data.to_model_range(images[:N_GENERATED])
    results = metrics.evaluate_samples(test_images[:1000], test_images, "mnist", labels=labels[:1000])
    assert results["evaluator"] == evaluator.fingerprint("mnist")
    assert (results["n_generated"], results["n_real"]) == (1000, N_GENERATED)
    assert set(metrics.DISPLAY_NAMES) <= set(results)
    assert results["precision"] == 1.0 and results["class_coverage"] == 1.0
    assert results["label_accuracy"] >= 0.99
    # Scored against a precomputed Reference (as a study scores many models): the same numbers.
    real = metrics.reference(test_images, "mnist")
    assert metrics.evaluate_samples(test_images[:1000], None, "mnist", labels=labels[:1000], real=real) == results
    report = "\n".join(metrics.format_report(results))
    assert evaluator.fingerprint("mnist") in report and "FD (gan_lab evaluator features)" in report
    assert "FID" not in report


# --- closed forms and hand-computed cases --------------------------------------------------

def closed_form_fd(mu1, sigma1, mu2, sigma2) -> float:
    """The textbook formula through scipy's sqrtm: independent of the implementation under test."""
    cross = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * cross))


def random_covariance(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_fd_from_moments_is_exact_for_diagonal_covariances():
    # Diagonal: ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2 = 25 + (1 - 2)^2 + (2 - 3)^2 = 27.
    fd = metrics.frechet_distance_from_moments([0, 0], np.diag([1.0, 4.0]), [3, 4], np.diag([4.0, 9.0]))
    assert fd == pytest.approx(27.0, abs=1e-12)


def test_fd_from_moments_is_exact_for_full_covariances():
    rng = np.random.default_rng(0)
    sigma = random_covariance(rng, 6)
    # S2 = 4 S1 commutes with S1: Tr(S1 + 4 S1 - 2 * 2 S1) = Tr S1.
    assert metrics.frechet_distance_from_moments(np.zeros(6), sigma, np.zeros(6), 4 * sigma) == \
        pytest.approx(np.trace(sigma), rel=1e-12)
    mu1, mu2, sigma1, sigma2 = rng.normal(size=6), rng.normal(size=6), sigma, random_covariance(rng, 6)
    assert metrics.frechet_distance_from_moments(mu1, sigma1, mu2, sigma2) == \
        pytest.approx(closed_form_fd(mu1, sigma1, mu2, sigma2), rel=1e-10)
    # A singular covariance (dead ReLU features) is fine too: a zero-variance dimension adds nothing.
    padded1, padded2 = (np.pad(s, ((0, 1), (0, 1))) for s in (sigma1, sigma2))
    assert metrics.frechet_distance_from_moments(np.append(mu1, 0), padded1, np.append(mu2, 0), padded2) == \
        pytest.approx(closed_form_fd(mu1, sigma1, mu2, sigma2), rel=1e-10)


@pytest.mark.parametrize("diagonal", [True, False])
def test_fd_of_samples_matches_the_closed_form_of_their_gaussians(diagonal):
    rng = np.random.default_rng(1)
    d, n = 8, 20_000
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    if diagonal:
        sigma1, sigma2 = np.diag(rng.uniform(0.5, 2, d)), np.diag(rng.uniform(0.5, 2, d))
        expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(np.diag(sigma1)) - np.sqrt(np.diag(sigma2))) ** 2)
    else:
        sigma1, sigma2 = random_covariance(rng, d), random_covariance(rng, d)
        expected = closed_form_fd(mu1, sigma1, mu2, sigma2)
    samples1 = rng.multivariate_normal(mu1, sigma1, n)
    samples2 = rng.multivariate_normal(mu2, sigma2, n)
    # Sampling error at n = 20k: about 0.5% of these distances (std of the mean term).
    assert metrics.frechet_distance(samples1, samples2) == pytest.approx(expected, rel=0.02)


def test_polynomial_mmd2_matches_the_unbiased_estimator_written_out():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(1.0, size=(5, 3)).astype(np.float32)
    k = lambda a, b: (float(np.dot(a, b)) / 3 + 1) ** 3  # noqa: E731
    m = 5
    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    assert metrics.polynomial_mmd2(x, y) == pytest.approx(within_x + within_y - 2 * across, rel=1e-5)


def test_kd_is_deterministic_for_a_seed():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 4)), rng.normal(0.3, size=(300, 4))
    assert metrics.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=7) == \
        metrics.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=7)
    assert metrics.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=8) != \
        metrics.kernel_distance(a, b, n_subsets=5, subset_size=100, seed=7)


def test_precision_recall_on_points_on_a_line():
    # Real: 0..9. k=3 radii: 3 at the ends, 2 inside. Fake: 0.2, 0.4, 0.6, 0.8, k=3 radii 0.6, 0.4,
    # 0.4, 0.6, so the fake balls cover [-0.4, 1.4]: reals 0 and 1. Every fake lies in a real ball.
    line = lambda xs: np.stack([np.asarray(xs, np.float32), np.zeros(len(xs), np.float32)], 1)  # noqa: E731
    real, fake = line(np.arange(10)), line([0.2, 0.4, 0.6, 0.8])
    assert metrics.precision_recall(real, fake) == pytest.approx((1.0, 0.2))
    # A fake point at 20 is 11 from the nearest real (9, radius 3): outside.
    assert metrics.precision_recall(real, line([0.2, 0.4, 0.6, 20.0]))[0] == pytest.approx(0.75)


def test_classifier_score_of_confident_predictions():
    confident_balanced = np.tile(100.0 * np.eye(10), (3, 1))  # 30 samples, 3 sure ones per class
    assert metrics.classifier_score(confident_balanced) == pytest.approx(10.0, rel=1e-9)
    assert metrics.classifier_score(np.zeros((30, 10))) == pytest.approx(1.0)  # unsure about everything
    assert metrics.classifier_score(confident_balanced[:, [0] * 10]) == pytest.approx(1.0)  # one class


def test_class_coverage_counts_classes_at_or_above_the_minimum_share():
    predicted = np.array([0] * 90 + [1] * 9 + [2] * 1)  # shares 0.9, 0.09, 0.01
    logits = np.eye(10)[predicted]
    assert metrics.class_coverage(logits) == 0.3
    assert metrics.class_coverage(logits, min_share=0.05) == 0.2
    assert metrics.predicted_class_shares(logits)[:3] == pytest.approx([0.9, 0.09, 0.01])


# --- the evaluator as a component ----------------------------------------------------------

def test_fingerprint_is_the_weight_files_hash_and_stable():
    for dataset in data.DATASETS:
        digest = hashlib.sha256(evaluator.weights_path(dataset).read_bytes()).hexdigest()[:12]
        assert evaluator.fingerprint(dataset) == digest == evaluator.fingerprint(dataset)
        assert evaluator.load_evaluator(dataset).fingerprint == digest
        print(f"evaluator {dataset}: fingerprint {digest}")  # shown with pytest -s


def test_weight_file_bytes_depend_only_on_the_arrays():
    arrays = {"b/kernel": np.arange(6, dtype=np.float32).reshape(2, 3), "a/bias": np.ones(3, np.float32)}
    assert evaluator.npz_bytes(arrays) == evaluator.npz_bytes(dict(reversed(arrays.items())))


def test_features_do_not_depend_on_how_images_are_chunked(data_dir):
    images, _ = data.load_split("mnist", "test", data_dir)
    images = data.to_model_range(images[:1500])  # one full chunk and one padded one
    ev = evaluator.load_evaluator("mnist")
    whole = ev.features(images)
    parts = np.concatenate([ev.features(images[:700]), ev.features(images[700:])])
    assert whole.shape == (1500, evaluator.FEATURE_DIM)
    np.testing.assert_allclose(whole, parts, rtol=1e-5, atol=1e-5)
    assert ev.logits(images[:3]).shape == (3, 10)


def test_uint8_images_are_refused_with_the_fix(data_dir):
    images, _ = data.load_split("mnist", "test", data_dir)
    with pytest.raises(TypeError, match="to_model_range"):
        evaluator.load_evaluator("mnist").features(images[:2, :, :, None])


def assert_regenerate_error(err: pytest.ExceptionInfo, *fragments):
    message = str(err.value)
    assert "\n" not in message and "python experiments/train_evaluators.py" in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_or_corrupt_weights_say_how_to_regenerate(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluator, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(UserError) as err:
        evaluator.load_evaluator("mnist")
    assert_regenerate_error(err, "mnist", "cannot be read")

    (tmp_path / "mnist.npz").write_bytes(b"not a zip\n")
    with pytest.raises(UserError) as err:
        evaluator.load_evaluator("mnist")
    assert_regenerate_error(err, "not a readable .npz")

    arrays = {"/".join(path): np.zeros(variable.shape, variable.dtype)
              for path, variable in nnx.to_flat_state(evaluator.abstract_net()[1])}
    (tmp_path / "mnist.npz").write_bytes(evaluator.npz_bytes({**arrays, "conv1/kernel": np.zeros((3, 3, 1, 8))}))
    with pytest.raises(UserError) as err:
        evaluator.load_evaluator("mnist")
    assert_regenerate_error(err, "'conv1/kernel' with shape (3, 3, 1, 8), expected (3, 3, 1, 32)")

    del arrays["fc/kernel"]
    (tmp_path / "mnist.npz").write_bytes(evaluator.npz_bytes(arrays))
    with pytest.raises(UserError) as err:
        evaluator.load_evaluator("mnist")
    assert_regenerate_error(err, "lack the array 'fc/kernel'")

    with pytest.raises(UserError, match="unknown dataset 'cifar10'"):
        evaluator.load_evaluator("cifar10")


# --- per class and memorisation ----------------------------------------------------------

def test_per_class_metrics_find_the_classes_a_generator_drops(data_dir):
    """Training images of classes 0-4 as the 'samples': their classes are near the real ones, the
    classes 5-9 they lack get no FD (too few samples) and no coverage."""
    test_features, _, test_labels = evaluated(data_dir, "mnist", "test")
    features, logits = generated(data_dir, "mnist", "classes 0-4")
    result = metrics.per_class_metrics(features, logits.argmax(axis=1), test_features, test_labels)
    assert all(fd is not None and fd < 50 for fd in result["fd"][:5])
    assert result["fd"][5:] == [None] * 5 and max(result["coverage"][5:]) < 0.05
    assert min(result["coverage"][:5]) > 0.5
    assert sum(result["n_fake"]) == len(features)


def test_coverage_on_points_on_a_line():
    real = np.arange(10, dtype=np.float32)[:, None]  # k=3 radius of every point: 2 (edges: 3)
    assert metrics.coverage(real, real[:5] + 0.1) == pytest.approx(0.7)  # 0..4 covered, and 5, 6 (within 2 of 4.1)
    assert metrics.coverage(real, np.array([[100.0]], np.float32)) == 0.0
    assert metrics.coverage(real, np.zeros((0, 1), np.float32)) == 0.0


def test_nearest_neighbours_match_a_brute_force_search():
    rng = np.random.default_rng(0)
    queries, references = rng.normal(size=(2500, 5)), rng.normal(size=(700, 5))  # > one CHUNK of queries
    distances, indices = metrics.nearest_neighbours(queries, references)
    full = np.linalg.norm(queries[:, None] - references[None], axis=-1)
    np.testing.assert_array_equal(indices, full.argmin(axis=1))
    np.testing.assert_allclose(distances, full.min(axis=1), rtol=1e-4, atol=1e-4)


def test_memorisation_flags_copies_of_training_images_and_not_fresh_ones(data_dir):
    train_features = evaluated(data_dir, "mnist", "train", 4000)[0]
    test_features = evaluated(data_dir, "mnist", "test", 2000)[0]
    test_to_train = metrics.nearest_neighbours(test_features, train_features)[0]
    copies = metrics.memorisation(train_features[:1000], train_features, test_to_train)
    assert copies["memorised_fraction"] == 1.0  # each is at distance 0 from itself
    assert copies["their_nearest_train"] == copies["closest_samples"]
    fresh = metrics.memorisation(evaluated(data_dir, "mnist", "test")[0][5000:6000], train_features, test_to_train)
    assert fresh["memorised_fraction"] < 0.01  # unseen real images are not copies
    assert fresh["median_sample_to_train"] == pytest.approx(fresh["median_test_to_train"], rel=0.1)
