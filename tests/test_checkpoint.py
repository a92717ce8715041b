"""Checkpoints: resume is bitwise exact, broken checkpoints are one-line errors, sampling needs no data."""

import json
import shutil

import jax
import numpy as np
import pytest

from gan_lab import checkpoint, runs
from gan_lab.errors import UserError
from tests.helpers import TINY, TINY_FLAGS, TINY_SUBSET, assert_one_line_error, call_cli, run_cli

# The suite's one tiny shape (tests/helpers.py: 8 steps an epoch), so dcgan's step compiles once for the suite.
SMALL = ["--dataset", "mnist", *TINY_FLAGS, "--log-every", "4", "--no-progress"]


@pytest.fixture(scope="module")
def straight_and_resumed(tmp_path_factory, data_dir):
    """Run A: 2 epochs straight. Run B: 1 epoch, then --resume to 2 epochs. Both through the CLI."""
    root = tmp_path_factory.mktemp("resume")
    env = {"GAN_LAB_DATA": str(data_dir)}
    a, b = root / "straight", root / "resumed"
    assert call_cli("train", "dcgan", *SMALL, "--epochs", "2", "--out", str(a), env=env).returncode == 0
    first = call_cli("train", "dcgan", *SMALL, "--epochs", "1", "--out", str(b), env=env)
    assert first.returncode == 0, first.stderr
    second = call_cli("train", "--resume", str(b), "--epochs", "2", "--no-progress", env=env)
    assert second.returncode == 0, second.stderr
    return a, b


def latest_state(run_dir):
    return runs.load_trained(run_dir)[2]


def test_one_epoch_resume_one_epoch_equals_two_epochs_bitwise(straight_and_resumed):
    a, b = straight_and_resumed
    state_a, state_b = latest_state(a), latest_state(b)
    leaves_a, leaves_b = jax.tree.leaves(state_a), jax.tree.leaves(state_b)
    assert len(leaves_a) == len(leaves_b) > 10
    assert all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))
    losses = lambda run: [(r["step"], r["d_loss"], r["g_loss"]) for r in runs.read_metrics(run)]  # noqa: E731
    assert losses(a) == losses(b) and len(losses(a)) == 4
    assert sorted(p.name for p in (b / "samples").glob("epoch_*.png")) == ["epoch_001.png", "epoch_002.png"]
    assert len(json.loads((b / "config.json").read_text())["resumed"]) == 1


def test_only_the_last_checkpoints_are_kept(straight_and_resumed):
    a, _ = straight_and_resumed
    steps = sorted(int(p.name) for p in (a / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [8, 16]  # one per epoch, at most checkpoint.KEEP_LAST


def test_a_half_written_checkpoint_leaves_the_previous_one_usable(straight_and_resumed, tmp_path):
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    # What a save killed half-way leaves: Orbax's temporary directory for the next step.
    partial = copy / "checkpoints" / "24.orbax-checkpoint-tmp-1234"
    partial.mkdir()
    (partial / "garbage").write_bytes(b"\0" * 10)
    state = latest_state(copy)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(latest_state(a))))


def damage(checkpoint_dir):
    """Overwrite a checkpoint's data files (not its metadata): what a bad disk sector leaves."""
    for path in checkpoint_dir.rglob("*"):
        if path.is_file() and path.stat().st_size > 0 and "METADATA" not in path.name:
            path.write_bytes(b"not a checkpoint")


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_and_says_so(straight_and_resumed, tmp_path,
                                                                               data_dir):
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    damage(copy / "checkpoints" / "16")
    result = run_cli("sample", str(copy), "--n", "4", "--out", str(tmp_path / "x.npz"))
    assert result.returncode == 0, result.stderr
    assert "checkpoint of step 16" in result.stderr and "unreadable" in result.stderr and "using step 8" in result.stderr
    assert (copy / "checkpoints" / "16").is_dir()  # reading a run never changes it

    result = run_cli("train", "--resume", str(copy), "--no-progress", env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    assert "resuming from step 8" in result.stderr
    assert (copy / "checkpoints-unreadable" / "16").is_dir()  # kept, out of the way of the new step 16
    # Steps 9..16 trained again from step 8 give the straight run's state back.
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(latest_state(copy)),
                                                    jax.tree.leaves(latest_state(a))))


def test_every_checkpoint_damaged_or_none_is_a_one_line_error(straight_and_resumed, tmp_path, data_dir):
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    for step in ("8", "16"):
        damage(copy / "checkpoints" / step)
    line = assert_one_line_error(run_cli("sample", str(copy), "--n", "4"), "no readable checkpoint", "step 16")
    assert "train it again" in line

    shutil.rmtree(copy / "checkpoints")
    assert_one_line_error(run_cli("sample", str(copy), "--n", "4"), "no checkpoint yet", f"--resume {copy}")
    assert_one_line_error(call_cli("train", "--resume", str(tmp_path / "nowhere")), "no run directory")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(call_cli("train", "--resume", str(tmp_path / "empty")), "cannot read run config")


def test_an_intact_checkpoint_of_another_structure_is_not_called_damaged(straight_and_resumed, tmp_path):
    """What upgrading gan_lab to a version whose model differs looks like (here: another width)."""
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    saved = json.loads((copy / "config.json").read_text())
    saved["config"]["settings"]["width"] = 0.25
    (copy / "config.json").write_text(json.dumps(saved))
    line = assert_one_line_error(run_cli("sample", str(copy), "--n", "4"), "is intact but was written for another "
                                 "model structure", "another gan_lab version", "keep the checkpoint")
    assert "delete" not in line
    assert sorted(p.name for p in (copy / "checkpoints").iterdir()) == ["16", "8"]


def test_a_torn_last_metrics_line_does_not_block_resume(straight_and_resumed, tmp_path, data_dir):
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    with (copy / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"step": 17, "epoch": 3, "d_lo')  # power lost mid-write
    assert [r["step"] for r in runs.read_metrics(copy)] == [4, 8, 12, 16]
    result = call_cli("train", "--resume", str(copy), "--epochs", "3", "--no-progress",
                      env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [4, 8, 12, 16, 20, 24]


def test_a_finished_run_has_nothing_left_and_steps_can_be_cleared_or_raised(straight_and_resumed, tmp_path, data_dir):
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    env = {"GAN_LAB_DATA": str(data_dir)}
    before = (copy / "config.json").read_bytes()
    result = call_cli("train", "--resume", str(copy), "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    assert "nothing left to train" in result.stdout and "has trained 16 steps (2 epochs)" in result.stdout
    assert (copy / "config.json").read_bytes() == before  # untouched

    result = call_cli("train", "--resume", str(copy), "--epochs", "4", "--steps", "20", "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("dcgan on mnist: 4 epochs x 8 steps per epoch = 32 steps, stopping at "
                                             "--steps 20 (2.50 epochs); resuming at step 16 (2 epochs)")
    assert runs.load_trained(copy).step == 20
    # Titles and eval report what was trained (2.5 epochs, mid-epoch), not the 4-epoch target.
    assert "dcgan on mnist, 2.50 epochs (20 steps), seed 0" == runs.load_trained(copy).describe()
    result = call_cli("train", "--resume", str(copy), "--steps", "none", "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    assert runs.load_trained(copy).step == 32  # the limit cleared: all 4 epochs
    assert json.loads((copy / "config.json").read_text())["config"]["steps"] is None


def test_resume_with_a_config_that_matters_names_the_field(straight_and_resumed, data_dir):
    a, _ = straight_and_resumed
    # In this process: refused before any checkpoint is read (a real process's one line: tests/test_cli.py).
    result = call_cli("train", "--resume", str(a), "--batch-size", "16", env={"GAN_LAB_DATA": str(data_dir)})
    assert_one_line_error(result, "batch_size=16", "batch_size=32")
    result = call_cli("train", "cgan", "--resume", str(a), env={"GAN_LAB_DATA": str(data_dir)})
    assert_one_line_error(result, "model='cgan'", "model='dcgan'")


def test_restore_without_checkpoint_dir_raises(tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        checkpoint.restore_latest(tmp_path, None)


def test_a_full_disk_during_a_save_is_reported_as_such(tmp_path, data_dir, monkeypatch):
    import errno

    import orbax.checkpoint as ocp

    from gan_lab import config

    def disk_full(self, step, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "save", disk_full)
    cfg = config.make_config("dcgan", {**TINY, "dataset": "mnist", "subset": TINY_SUBSET, "epochs": 1, "log_every": 1})
    with pytest.raises(checkpoint.CheckpointWriteError) as failed:
        runs.train_run(cfg, out=tmp_path / "run", data_dir=data_dir, show_progress=False)
    message = str(failed.value)
    assert "could not write the checkpoint of step 8" in message and "the disk is full" in message
    assert "No space left on device" in message and "no earlier checkpoint exists" in message
    assert "\n" not in message


def test_two_runs_started_in_the_same_second_get_two_directories(tmp_path, monkeypatch):
    from gan_lab import config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs.time, "strftime", lambda fmt: "20261203-120000")
    cfg = config.make_config("dcgan", {"dataset": "mnist"})
    (first, lock_a), (second, lock_b) = runs.new_run_dir(cfg, None), runs.new_run_dir(cfg, None)
    assert first != second and first.is_dir() and second.is_dir()
    assert second.name == first.name + "-2"
    lock_a.release()
    lock_b.release()


def test_resume_warns_when_jax_or_xla_flags_differ_from_the_runs(straight_and_resumed, tmp_path, data_dir):
    a, _ = straight_and_resumed
    copy = tmp_path / "run"
    shutil.copytree(a, copy)
    saved = json.loads((copy / "config.json").read_text())
    saved["versions"]["jaxlib"] = "0.4.1"
    saved["xla_flags"] = "--xla_cpu_enable_fast_math=true"
    (copy / "config.json").write_text(json.dumps(saved))
    result = call_cli("train", "--resume", str(copy), "--epochs", "3", "--no-progress",
                      env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stderr
    assert "jaxlib is" in warnings[0] and "0.4.1 when the run last trained" in warnings[0]
    assert "XLA_FLAGS is" in warnings[1] and "to float tolerance, not bit for bit" in warnings[1]
