"""The library API (gan_lab/api.py): one tiny cgan run on real Fashion-MNIST, trained once through
api.train and shared by every test here, then sampled, scored, drawn and loaded back."""

from __future__ import annotations

import json
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

import gan_lab
from gan_lab import api, data, evaluation, metrics, registry, sheets
from gan_lab.errors import UserError
from tests.helpers import TINY, TINY_SUBSET

# The suite's one tiny shape (tests/helpers.py), so cgan's step compiles once for the suite.
RUN_SETTINGS = dict(TINY, dataset="fashion-mnist", subset=TINY_SUBSET, epochs=3, steps=20)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N = 6  # images per run.sample call: one size, one compilation of the decoder


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    # A library changes nothing in the importing process: the API never opts into the CLI's settings.
    with mock.patch("gan_lab.runtime.configure", side_effect=AssertionError("the API called runtime.configure")):
        return api.train("cgan", out=tmp_path_factory.mktemp("api") / "cgan", data_dir=data_dir, progress=False,
                             **RUN_SETTINGS)


def test_train_writes_a_run_with_the_settings_given(run):
    assert isinstance(run, gan_lab.Run)
    assert (run.dir / "config.json").is_file() and (run.dir / "samples" / "final.png").is_file()
    assert (run.config.model, run.config.dataset, run.config.steps, run.config.width) == ("cgan", "fashion-mnist",
                                                                                          20, 0.125)
    # 20 steps at the tiny shape's 8 an epoch
    assert repr(run) == f"<gan_lab.Run cgan on fashion-mnist, 2.50 epochs (20 steps), seed 0, in {run.dir}>"
    assert gan_lab.list_models() == api.list_models() == registry.names() and "cgan" in api.list_models()


def test_sample_is_the_cli_export(run, tmp_path):
    images = run.sample(N, seed=0, labels=[3, 7])
    assert images.shape == (N, 28, 28) and images.dtype == np.uint8
    exported = np.load(sheets.export(run.dir, N, 0, tmp_path / "export.npz", [3, 7]))  # `sample --n 6 --labels 3,7`
    np.testing.assert_array_equal(images, exported["images"])
    np.testing.assert_array_equal(exported["labels"], [3, 7, 3, 7, 3, 7])
    np.testing.assert_array_equal(images, run.sample(N, seed=0, labels=[3, 7]))
    assert not np.array_equal(images, run.sample(N, seed=1, labels=[3, 7]))


def test_sample_labels_choose_the_classes(run):
    # The same noise for the same seed and n: only the label of the odd images differs.
    threes, mixed = run.sample(N, seed=0, labels=[3]), run.sample(N, seed=0, labels=[3, 7])
    np.testing.assert_array_equal(threes[0::2], mixed[0::2])
    assert not np.array_equal(threes[1::2], mixed[1::2])
    # default labels: 0..9 in turn
    np.testing.assert_array_equal(run.sample(N, seed=2), run.sample(N, seed=2, labels=range(N)))


@pytest.mark.parametrize(("arguments", "message"), [
    (dict(n=4, labels=[10]), "label 10 is out of range: labels are 0..9"),
    (dict(n=4, labels=[]), "labels names no class"),
    (dict(n=4, labels=[1.5]), "labels are class numbers"),
    (dict(n=0), "n must be at least 1, got 0"),
])
def test_sample_refuses_what_the_cli_refuses(run, arguments, message):
    with pytest.raises(UserError, match=message):
        run.sample(**arguments)


@pytest.fixture
def small_reference(monkeypatch, data_dir):
    """The first 1,000 test images as what generated images are scored against, not all 10,000: their
    features and k-NN radii take most of a `gan_lab eval` of a tiny run, and tests/test_eval.py scores
    against the whole test set. The scoring is evaluation.score's all the same."""
    images, labels = data.load_split("fashion-mnist", "test", data_dir)
    real = metrics.reference(data.to_model_range(images[:1000]), "fashion-mnist", labels[:1000])
    monkeypatch.setattr(evaluation, "reference", lambda dataset, data_dir=None, detail=False: real)


def test_evaluate_scores_and_records_like_gan_lab_eval(run, data_dir, small_reference):
    scores = run.evaluate(n=200, seed=0, data_dir=data_dir)
    assert (scores["model"], scores["step"], scores["epochs"], scores["n_generated"]) == ("cgan", 20, 2.5, 200)
    for name in ("fd", "kd_mean", "precision", "recall", "class_coverage"):
        assert np.isfinite(scores[name]), name
    assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
    recorded = json.loads((run.dir / "metrics.json").read_text())["step_20_n200_seed0"]
    assert recorded == json.loads(json.dumps(scores))
    with pytest.raises(UserError, match="n must be at least 4"):
        run.evaluate(n=3)


def test_sheet_never_overwrites(run, tmp_path):
    first, second = run.sheet("wardrobe", seed=0), run.sheet("wardrobe", seed=0)
    assert (first, second) == (run.dir / "sheets" / "wardrobe-seed0.png", run.dir / "sheets" / "wardrobe-seed0-2.png")
    assert first.read_bytes().startswith(PNG_MAGIC) and second.read_bytes() == first.read_bytes()
    gif = run.sheet("gif", out=tmp_path / "epochs")
    assert gif == tmp_path / "epochs.gif" and gif.read_bytes().startswith(b"GIF8")
    with pytest.raises(UserError, match="already exists"):
        run.sheet("gif", out=gif)


@pytest.mark.parametrize(("arguments", "message"), [
    (dict(kind="portrait"), "unknown sheet 'portrait'; valid sheets: wardrobe, interpolate, manifold, codes, gif"),
    (dict(kind="gif", seed=3), "seed does not apply to the gif sheet"),
    (dict(kind="interpolate", labels=[1]), "labels apply to the wardrobe sheet only"),
    (dict(kind="codes"), "cgan has no continuous latent codes"),
])
def test_sheet_refuses_what_the_cli_refuses(run, arguments, message):
    with pytest.raises(UserError, match=message):
        run.sheet(**arguments)


def test_load_gives_the_same_run(run):
    loaded = gan_lab.load(run.dir)
    assert loaded.dir == run.dir and loaded.config == run.config
    np.testing.assert_array_equal(loaded.sample(N, seed=1), run.sample(N, seed=1))
    with pytest.raises(UserError, match="cannot read run config"):
        gan_lab.load(run.dir / "samples")
    with pytest.raises(UserError, match="no run directory .*nowhere: give the directory `gan_lab train` printed"):
        gan_lab.load(run.dir / "nowhere")


def test_resume_goes_through_the_clis_checks(run, capsys):
    resumed = api.train(resume=run.dir, progress=False)  # already at its 20 steps: nothing to train
    assert resumed.dir == run.dir and "nothing left to train" in capsys.readouterr().err
    with pytest.raises(UserError, match="cannot resume .* with width=0.25"):
        api.train(resume=run.dir, width=0.25)
    with pytest.raises(UserError, match="out and resume exclude each other"):
        api.train(resume=run.dir, out=run.dir / "other")


@pytest.mark.parametrize(("model", "settings", "message"), [
    ("nope", {}, r"unknown model 'nope'; valid models: .*cgan, .*dcgan"),
    ("cgan", dict(epoch=2), r"unknown setting 'epoch'; did you mean 'epochs'\? valid settings of cgan: "
                            r"preset, dataset, epochs, .*, width, loss$"),
    ("cgan", dict(n_critic=5), "--n-critic does not apply to cgan"),
    ("cgan", dict(batch_size=0), "--batch-size must be at least 1, got 0"),
    ("cgan", dict(epochs="2"), "epochs must be a whole number, got '2'"),
    ("cgan", dict(loss="mse"), "unknown loss 'mse'"),
    (None, {}, "name a model to train"),
])
def test_bad_train_arguments_raise_the_clis_one_line_error(model, settings, message):
    with pytest.raises(UserError, match=message) as raised:
        api.train(model, **settings)
    assert "\n" not in str(raised.value)


def test_import_gan_lab_imports_no_jax():
    code = "import gan_lab, sys; print('jax' in sys.modules, 'gan_lab.api' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
    assert (gan_lab.api, gan_lab.load, gan_lab.Run, gan_lab.train) == (api, api.load, api.Run, api.train)
    from gan_lab import models, trainer  # gan_lab's modules: the model families and the training loop

    assert callable(trainer.fit) and models.__path__
    with pytest.raises(AttributeError, match="has no attribute 'trian'"):
        gan_lab.trian  # noqa: B018
