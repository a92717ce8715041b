"""`gan_lab eval`, `train --eval-every` and `--tensorboard` through the CLI, on a tiny real run."""

import json

import pytest

from tests.helpers import TINY_FLAGS, assert_one_line_error, call_cli

# The suite's one tiny shape (tests/helpers.py), so each model's step compiles once for the suite.
TINY_RUN = ["--dataset", "mnist", *TINY_FLAGS, "--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def run_with_eval(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("eval") / "cgan"
    result = call_cli("train", "cgan", *TINY_RUN, "--eval-every", "1", "--out", str(out),
                      env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    return out


def test_eval_every_logs_the_metrics(run_with_eval):
    records = [json.loads(line) for line in (run_with_eval / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "eval_fd" in r]
    assert len(scored) == 1 and scored[0]["epoch"] == 1
    assert scored[0]["eval_fd"] > 0 and 0 <= scored[0]["eval_precision"] <= 1
    assert 0 <= scored[0]["eval_label_accuracy"] <= 1 and len(scored[0]["eval_evaluator"]) == 12


def test_eval_prints_a_table_and_saves_metrics_json(run_with_eval, data_dir):
    env = {"GAN_LAB_DATA": str(data_dir)}
    first = call_cli("eval", str(run_with_eval), "--n", "500", env=env)
    assert first.returncode == 0, first.stderr
    assert "fingerprint" in first.stdout and "FD (gan_lab evaluator features)" in first.stdout
    assert "label" in first.stdout  # conditional model: accuracy on the requested labels
    saved = json.loads((run_with_eval / "metrics.json").read_text())
    (entry,) = saved.values()
    assert entry["n_generated"] == 500 and entry["model"] == "cgan" and entry["step"] == 8
    second = call_cli("eval", str(run_with_eval), "--n", "500", env=env)
    assert second.stdout == first.stdout  # same checkpoint, same seed: the same numbers


def test_eval_errors_are_one_line(run_with_eval, tmp_path):
    assert_one_line_error(call_cli("eval", str(tmp_path)), "not a gan_lab run directory")
    assert_one_line_error(call_cli("eval", str(run_with_eval), "--n", "1"), "--n must be at least 4")
    assert_one_line_error(call_cli("train", "dcgan", "--eval-every", "0"), "--eval-every must be at least 1")


def test_tensorboard_events(tmp_path, data_dir):
    pytest.importorskip("tensorboardX")
    out = tmp_path / "run"
    result = call_cli("train", "dcgan", *TINY_RUN, "--tensorboard", "--out", str(out), env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    (events,) = (out / "tensorboard").glob("events.out.tfevents.*")
    assert events.stat().st_size > 1000  # scalars and the epoch's sample grid


def fake_references(monkeypatch, tmp_path) -> list:
    """evaluation's reference on stand-in data and metrics, with its own empty feature cache; returns the
    list of what was computed ("test", "train")."""
    import numpy as np

    from gan_lab import data, evaluation, metrics

    computed = []
    monkeypatch.setenv(evaluation.CACHE_ENV, str(tmp_path / "features"))
    monkeypatch.setattr(data, "load_split", lambda dataset, split, root: (np.zeros((2, 28, 28), np.uint8), np.zeros(2)))
    monkeypatch.setattr(metrics, "reference", lambda images, dataset, labels: computed.append("test") or metrics.Reference(
        dataset, "fp", np.full((2, 4), len(computed), np.float32), np.ones(2, np.float32), np.zeros(2)))
    monkeypatch.setattr(metrics, "with_training_set", lambda real, train: computed.append("train") or real._replace(
        train_features=np.full((3, 4), 7.0, np.float32), test_to_train=np.ones(2, np.float32)))
    evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()
    return computed


@pytest.fixture
def clear_reference_caches():
    from gan_lab import evaluation

    yield
    evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()


def test_the_test_sets_reference_is_computed_once_for_plain_and_detailed_scores(monkeypatch, tmp_path,
                                                                                clear_reference_caches):
    """A study scores a plain and a detailed draw per job, and the CLI passes the data directory as a
    string where the library passes a Path: the test set's features are still computed once."""
    from gan_lab import evaluation

    computed = fake_references(monkeypatch, tmp_path)
    plain = evaluation.reference("mnist", tmp_path)
    detailed = evaluation.reference("mnist", str(tmp_path), detail=True)
    assert evaluation.reference("mnist", str(tmp_path)) is plain
    assert evaluation.reference("mnist", tmp_path, detail=True) is detailed
    assert detailed.train_features.shape == (3, 4) and computed == ["test", "train"]
    evaluation.reference("fashion-mnist", tmp_path)
    assert computed == ["test", "train", "test"]  # each dataset its own


def test_reference_features_are_kept_for_the_next_process(monkeypatch, tmp_path, clear_reference_caches):
    """Another process (here: emptied in-process caches) reads the features from $GAN_LAB_CACHE instead
    of computing them; a damaged file is computed again and replaced."""
    import numpy as np

    from gan_lab import evaluation

    computed = fake_references(monkeypatch, tmp_path)
    first = evaluation.reference("mnist", tmp_path, detail=True)
    kept = sorted(path.name.split("-")[1] for path in (tmp_path / "features").glob("*.npz"))
    assert computed == ["test", "train"] and kept == ["test", "train"]

    evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()
    again = evaluation.reference("mnist", tmp_path, detail=True)
    assert computed == ["test", "train"]  # nothing computed
    for field in ("features", "radii", "labels", "train_features", "test_to_train"):
        assert np.array_equal(getattr(again, field), getattr(first, field)), field

    for path in (tmp_path / "features").glob("*.npz"):
        path.write_bytes(b"not an npz")
    evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()
    evaluation.reference("mnist", tmp_path, detail=True)
    assert computed == ["test", "train", "test", "train"]
    evaluation._test_reference.cache_clear(), evaluation._with_training_set.cache_clear()
    evaluation.reference("mnist", tmp_path, detail=True)
    assert computed == ["test", "train", "test", "train"]  # the damaged files were replaced
