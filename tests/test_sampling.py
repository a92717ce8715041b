"""Sampling and sheets: the class rows really ask for every class, exports are what they say, and every
sampling error is one line."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gan_lab import registry, sampling
from gan_lab.errors import UserError
from tests.helpers import TINY, TINY_FLAGS, TINY_SUBSET, assert_one_line_error, call_cli, tiny_config

# The suite's one tiny shape (tests/helpers.py), so each model's step compiles once for the suite.
SMALL = [*TINY_FLAGS, "--epochs", "2", "--no-progress"]


@pytest.fixture
def uncompiled_decoder(monkeypatch):
    """sampling's functions decode op by op, so a recording decode (below) sees concrete arrays."""
    monkeypatch.setattr(sampling, "decoder", lambda model: model.decode)


def recording(model):
    """The model with a decode that records what it was asked for."""
    calls = []

    def decode(state, z, labels=None):
        calls.append((np.asarray(z), None if labels is None else np.asarray(labels)))
        return model.decode(state, z, labels)

    return model._replace(decode=decode), calls


def test_wardrobe_rows_ask_for_every_class_with_one_style_per_column(uncompiled_decoder):
    model, calls = recording(registry.get("cgan").build(tiny_config("cgan")))
    state = model.init(jax.random.key(0))
    images, labels = sampling.class_rows(model, state, jax.random.key(1), 6, range(10))
    (z, asked), = calls
    assert images.shape == (10, 6, 28, 28, 1)
    assert sorted(set(asked.tolist())) == list(range(10))
    assert np.array_equal(asked.reshape(10, 6), np.repeat(np.arange(10)[:, None], 6, axis=1))
    z = z.reshape(10, 6, -1)
    assert all(np.array_equal(z[0], z[row]) for row in range(10))  # same style down each column
    assert not np.array_equal(z[0, 0], z[0, 1])
    rows = np.asarray(images)
    assert all(not np.allclose(rows[a], rows[b]) for a in range(10) for b in range(a + 1, 10))


def test_label_checks():
    dcgan = registry.get("dcgan").build(tiny_config("dcgan"))
    cgan = registry.get("cgan").build(tiny_config("cgan"))
    with pytest.raises(UserError, match="unconditional"):
        sampling.check_labels(dcgan, [1], "dcgan")
    with pytest.raises(UserError, match="label 10 is out of range"):
        sampling.check_labels(cgan, [3, 10], "cgan")
    with pytest.raises(UserError, match="label -1 is out of range"):
        sampling.check_labels(cgan, [-1], "cgan")
    sampling.check_labels(cgan, [0, 9], "cgan")
    sampling.check_labels(dcgan, None, "dcgan")


def test_slerp_ends_at_its_endpoints_and_keeps_the_norm():
    z0, z1 = jax.random.normal(jax.random.key(0), (2, 64))
    assert np.allclose(sampling.slerp(z0, z1, 0.0), z0, atol=1e-5)
    assert np.allclose(sampling.slerp(z0, z1, 1.0), z1, atol=1e-5)
    middle = sampling.slerp(z0, z1, 0.5)
    assert float(jnp.linalg.norm(middle)) > 0.9 * min(float(jnp.linalg.norm(z0)), float(jnp.linalg.norm(z1)))


def test_export_is_uint8_with_the_labels_used():
    cgan = registry.get("cgan").build(tiny_config("cgan"))
    images, labels = sampling.export_samples(cgan, cgan.init(jax.random.key(0)), jax.random.key(1), 25, chunk=10)
    assert images.shape == (25, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [i % 10 for i in range(25)]
    dcgan = registry.get("dcgan").build(tiny_config("dcgan"))
    _, labels = sampling.export_samples(dcgan, dcgan.init(jax.random.key(0)), jax.random.key(1), 5)
    assert labels.tolist() == [-1] * 5


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("sample")
    env = {"GAN_LAB_DATA": str(data_dir)}
    for model in ("cgan", "dcgan"):
        result = call_cli("train", model, "--dataset", "fashion-mnist", *SMALL, "--out", str(root / model), env=env)
        assert result.returncode == 0, result.stderr
    return root


def test_sheets_from_the_cli(trained_runs, tmp_path):
    cgan = trained_runs / "cgan"
    env = {"GAN_LAB_DATA": str(tmp_path / "no-data-here")}  # sampling needs no training data
    for args, name in [(["--sheet", "wardrobe"], "wardrobe-seed0.png"), (["--sheet", "interpolate"], "interpolate-seed0.png"),
                       (["--gif"], "epochs.gif")]:
        result = call_cli("sample", str(cgan), *args, env=env)
        assert result.returncode == 0, result.stderr
        picture = Image.open(cgan / "sheets" / name)
        assert picture.size[0] >= 300, (name, picture.size)
    assert Image.open(cgan / "sheets" / "epochs.gif").n_frames == 2
    again = call_cli("sample", str(cgan), "--sheet", "wardrobe", env=env)
    assert again.returncode == 0 and (cgan / "sheets" / "wardrobe-seed0-2.png").exists()  # never overwritten

    out = tmp_path / "samples.npz"
    assert call_cli("sample", str(cgan), "--n", "30", "--labels", "2,7", "--out", str(out), env=env).returncode == 0
    exported = np.load(out)
    assert exported["images"].shape == (30, 28, 28) and exported["images"].dtype == np.uint8
    assert set(exported["labels"].tolist()) == {2, 7}


def test_a_wardrobe_asked_of_a_model_without_classes_is_refused_and_no_flag_draws_a_grid(trained_runs):
    dcgan = trained_runs / "dcgan"
    refused = call_cli("sample", str(dcgan), "--sheet", "wardrobe")
    assert_one_line_error(refused, "dcgan is unconditional: it has no classes to draw a wardrobe of",
                          "--sheet interpolate", "such as cgan")
    assert not list(dcgan.glob("sheets/*"))  # nothing else drawn in its place
    plain = call_cli("sample", str(dcgan))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == f"wrote {dcgan / 'sheets' / 'grid-seed0.png'}\n"
    # Written through a temporary file like every output, with the mode of any new file (not mkstemp's 0600).
    umask = os.umask(0)
    os.umask(umask)
    assert (dcgan / "sheets" / "grid-seed0.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_sampling_errors_are_one_line(trained_runs, tmp_path):
    cgan, dcgan = trained_runs / "cgan", trained_runs / "dcgan"
    assert_one_line_error(call_cli("sample", str(dcgan), "--labels", "3"), "dcgan is unconditional")
    assert_one_line_error(call_cli("sample", str(cgan), "--labels", "3,11"), "label 11 is out of range")
    assert_one_line_error(call_cli("sample", str(cgan), "--labels", "shoe"), "--labels takes class numbers")
    assert_one_line_error(call_cli("sample", str(tmp_path)), "not a gan_lab run directory")
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"mine")
    assert_one_line_error(call_cli("sample", str(cgan), "--out", str(existing)), "already exists")
    assert existing.read_bytes() == b"mine"


def test_outputs_are_checked_after_their_suffix_is_added(trained_runs, tmp_path):
    """`--out samples` becomes samples.npz: an existing samples.npz is refused, not replaced."""
    cgan = trained_runs / "cgan"
    (tmp_path / "samples.npz").write_bytes(b"mine")
    (tmp_path / "sheet.png").write_bytes(b"mine too")
    assert_one_line_error(call_cli("sample", str(cgan), "--n", "8", "--out", str(tmp_path / "samples")),
                          f"{tmp_path / 'samples.npz'} already exists")
    assert_one_line_error(call_cli("sample", str(cgan), "--out", str(tmp_path / "sheet")), "sheet.png already exists")
    assert_one_line_error(call_cli("sample", str(cgan), "--n", "8", "--out", str(tmp_path / "x.png")), "a .npz file")
    assert (tmp_path / "samples.npz").read_bytes() == b"mine" and (tmp_path / "sheet.png").read_bytes() == b"mine too"
    result = call_cli("sample", str(cgan), "--n", "8", "--out", str(tmp_path / "fresh"))
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "fresh.npz")["images"].shape == (8, 28, 28)
    # No temporary file is left beside the outputs, and none has a fixed name.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.npz", "samples.npz", "sheet.png"]


def test_compare_trains_what_is_missing_then_reuses_it(tmp_path, data_dir):
    env = {"GAN_LAB_DATA": str(data_dir)}
    # One model on both datasets: what compare finds, trains and reuses is the same for any number of models.
    args = ["compare", "dcgan", "--datasets", "mnist", "fashion-mnist", "--runs-dir", str(tmp_path / "runs"),
            "--epochs", "1", "--subset", "128", "--width", "0.125", "--no-progress"]
    first = call_cli(*args, "--out", str(tmp_path / "a.png"), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("training one") == 2
    assert len(list((tmp_path / "runs").iterdir())) == 2
    second = call_cli(*args, "--out", str(tmp_path / "b.png"), env=env)
    assert second.returncode == 0 and "training one" not in second.stdout
    assert Image.open(tmp_path / "b.png").size[0] > 200
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))
    assert_one_line_error(call_cli("compare", "dcgan", "--datasets", "cifar"), "unknown dataset 'cifar'")
    # Runs that stopped at the --steps asked for are the runs asked for: reused, not "nothing left to train".
    short = [*args, "--steps", "2", "--datasets", "mnist", "--runs-dir", str(tmp_path / "short")]
    assert call_cli(*short, "--out", str(tmp_path / "c.png"), env=env).stdout.count("training one") == 1
    again = call_cli(*short, "--out", str(tmp_path / "d.png"), env=env)
    assert again.returncode == 0, again.stderr
    assert "training one" not in again.stdout and "continuing" not in again.stdout


def test_a_cut_run_of_the_same_settings_is_continued_not_trained_again(tmp_path, data_dir):
    """compare (and the showcase) continue a run a session's end or a kill left behind."""
    import shutil

    from gan_lab import config, runs

    settings = {"width": TINY["width"], "batch_size": TINY["batch_size"], "subset": TINY_SUBSET, "epochs": 1,
                "checkpoint_every": 4}  # STEPS_PER_EPOCH (8) steps
    cfg = config.make_config("dcgan", {**settings, "dataset": "mnist"}, strict=False)
    run_dir = runs.train_run(cfg, runs_dir=tmp_path, data_dir=data_dir, show_progress=False)
    # As if killed after step 4's checkpoint: no later checkpoint, no final grid.
    shutil.rmtree(run_dir / "checkpoints" / "8")
    (run_dir / "samples" / "final.png").unlink()
    assert runs.find_finished_run(tmp_path, "dcgan", "mnist", 1) is None
    assert runs.find_cut_run(tmp_path, cfg) == run_dir
    other = config.make_config("dcgan", {**settings, "dataset": "mnist", "seed": 1}, strict=False)
    assert runs.find_cut_run(tmp_path, other) is None  # other settings: not the same run
    # A run started before a setting existed (here --precision) is still the same run at its default.
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["config"]["precision"]
    (run_dir / "config.json").write_text(json.dumps(saved))
    assert runs.find_cut_run(tmp_path, cfg) == run_dir

    found = runs.find_or_train(["dcgan"], ["mnist"], tmp_path, settings, data_dir=data_dir, show_progress=False)
    assert found[("dcgan", "mnist")] == run_dir and list(tmp_path.iterdir()) == [run_dir]
    assert runs.newest_step(run_dir) == 8 and runs.finished_config(run_dir) is not None
