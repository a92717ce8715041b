"""The CLI as a user meets it: exit codes, one-line errors, the files a run writes; in this process (cli.main)
where a whole process adds nothing, in a real one where it does."""

import json
import os
import socket

import pytest
from PIL import Image

from tests.helpers import TINY_FLAGS, assert_one_line_error, call_cli, run_cli


def test_list_groups_every_model_with_a_description():
    from gan_lab import registry

    result = call_cli("list")
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert [line for line in lines if not line.startswith("  ")] == [f"{family}:" for family in registry.FAMILIES]
    rows = dict(line.split(maxsplit=1) for line in lines if line.startswith("  ") and line.split()[0] not in ("--preset", "!"))
    assert set(rows) == set(registry.names()) and all(len(text) > 10 for text in rows.values())
    # Under each model, a line per preset with the settings it changes.
    presets = [line.split() for line in lines if "--preset" in line]
    assert len(presets) == sum(len(registry.get(name).presets) for name in registry.names())
    for name in registry.names():
        row = lines.index(next(line for line in lines if line.split()[0] == name))
        for offset, (preset, values) in enumerate(registry.get(name).presets.items(), start=1):
            assert lines[row + offset].split()[:2] == ["--preset", f"{preset}:"]
            assert all(f"--{key.replace('_', '-')} " in lines[row + offset] for key in values)
    # A model measured not to learn as well as the lab asks says so, below its presets.
    warned = [line.split()[0] for line in lines if line.strip().startswith("! ")]
    assert len(warned) == sum(bool(registry.get(name).shortfall) for name in registry.names())
    cgan = next(i for i, line in enumerate(lines) if line.split()[0] == "cgan")
    assert lines.index("conditional GANs:") < cgan < lines.index("VAEs:")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "stylegan9"], ["unknown model 'stylegan9'", "dcgan", "cgan"]),
        (["train", "dcgan", "--dataset", "cifar"], ["unknown dataset 'cifar'", "mnist", "fashion-mnist"]),
        (["train", "dcgan", "--epochs", "0"], ["--epochs must be at least 1"]),
        (["train", "dcgan", "--epochs", "-3"], ["--epochs must be at least 1"]),
        (["train", "dcgan", "--batch-size", "0"], ["--batch-size must be at least 1"]),
        (["train", "dcgan", "--steps", "0"], ["--steps must be at least 1"]),
        (["train", "dcgan", "--lr", "-1"], ["--lr must be a positive finite number"]),
        (["train", "dcgan", "--loss", "wgan-xyz"], ["unknown loss", "hinge"]),
        (["train", "dcgan", "--epochs", "two"], ["--epochs", "invalid int value"]),
        (["train"], ["model"]),
        (["fly"], ["invalid choice"]),
        (["data", "--dataset", "cifar"], ["unknown dataset 'cifar'"]),
    ],
)
def test_bad_input_is_one_line(args, fragments):
    """In this process (cli.main, what `python -m gan_lab` runs); the process around it is checked below."""
    assert_one_line_error(call_cli(*args), *fragments)


@pytest.mark.parametrize("args, fragment", [(["train", "stylegan9"], "unknown model 'stylegan9'"),  # a UserError
                                            (["fly"], "invalid choice")])  # argparse's own error
def test_bad_input_is_one_line_from_a_real_process(args, fragment):
    """`python -m gan_lab` itself: exit code 2 and one line on stderr, whatever the runtime prints at exit."""
    assert_one_line_error(run_cli(*args), fragment)


def test_batch_larger_than_the_dataset(data_dir):
    result = call_cli("train", "dcgan", "--dataset", "mnist", "--batch-size", "70000", env={"GAN_LAB_DATA": str(data_dir)})
    assert_one_line_error(result, "--batch-size 70000 is larger than the dataset (60000 images)")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_missing_data_without_network_says_where_to_put_the_file(tmp_path):
    env = {"GAN_LAB_DATA": str(tmp_path / "empty"), "GAN_LAB_DATA_URL": f"http://127.0.0.1:{closed_port()}"}
    result = run_cli("train", "dcgan", "--dataset", "mnist", env=env)
    line = assert_one_line_error(result, "train-images-idx3-ubyte", "GAN_LAB_DATA")
    assert str(tmp_path / "empty") in line
    assert not (tmp_path / "runs").exists()


def test_train_writes_a_complete_run_and_never_overwrites_it(tmp_path, data_dir):
    out = tmp_path / "run"
    # The suite's one tiny shape (tests/helpers.py), so dcgan's step compiles once for the suite.
    args = ["train", "dcgan", "--dataset", "mnist", *TINY_FLAGS, "--epochs", "2", "--log-every", "4", "--out", str(out),
            "--no-progress"]
    result = call_cli(*args, env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    # Before the first step: how long the run is and where it is, to be watched (`gan_lab serve`).
    lines = result.stdout.splitlines()
    assert lines[:2] == ["dcgan on mnist: 2 epochs x 8 steps per epoch = 16 steps",
                         f"run directory: {out}  (watch it train: gan_lab serve {tmp_path})"]
    assert lines[-1].startswith(f"run saved in {out}")
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["model"] == "dcgan" and saved["config"]["epochs"] == 2
    assert saved["versions"]["jax"] and saved["device"]["platform"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16]
    assert {"d_loss", "g_loss", "steps_per_sec"} <= set(records[0])
    for name in ["samples/epoch_001.png", "samples/epoch_002.png", "samples/final.png", "loss_curves.png"]:
        assert Image.open(out / name).size[0] > 100, name
    first = (out / "metrics.jsonl").read_bytes()

    again = call_cli(*args, env={"GAN_LAB_DATA": str(data_dir)})
    assert_one_line_error(again, "already exists", "--resume")
    assert (out / "metrics.jsonl").read_bytes() == first


def test_data_command_finds_checks_and_reports(data_dir):
    result = call_cli("data", "--dataset", "mnist", env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("verified (SHA-256 ok)") == 4
