"""Runs that end anyhow: real training processes killed with SIGKILL at random moments (during steps,
during checkpoint saves, before the first checkpoint), stopped by Ctrl-C and SIGTERM, resumed each
time, and compared bit for bit with one uninterrupted run. Plus one writer per run directory."""

import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_lab import runs
from tests.helpers import call_cli

# 2,048 images in batches of 32: 64 steps an epoch, 192 in all; a checkpoint every 8 steps, so a
# good share of the run's wall time is spent in checkpoint saves, where some kills must land. The
# five stops take ~60 of the 192 steps here, so every one of them lands before the run ends.
RUN = ["dcgan", "--dataset", "mnist", "--subset", "2048", "--batch-size", "32", "--width", "0.125",
       "--epochs", "3", "--log-every", "4", "--checkpoint-every", "8", "--no-progress"]
TOTAL_STEPS = 192
# The child starts with default handlers for the signals under test: a background job (CI may run us
# as one) inherits SIGINT ignored, and the loop leaves an ignored signal ignored, as a shell user expects.
# (Set in the child itself: a preexec_fn would fork this multithreaded JAX process.)
GAN_LAB_WITH_DEFAULT_SIGNALS = (
    "import runpy, signal\n"
    "for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(signum, signal.SIG_DFL)\n"
    "runpy.run_module('gan_lab', run_name='__main__')\n"
)
SEED = 20261203  # the random kill moments; printed with each kill so a failure can be replayed


def start(args, data_dir) -> subprocess.Popen:
    env = {**os.environ, "GAN_LAB_DATA": str(data_dir)}
    return subprocess.Popen([sys.executable, "-c", GAN_LAB_WITH_DEFAULT_SIGNALS, "train", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, process, timeout=240.0, poll=0.002) -> bool:
    """Poll until condition() holds (True) or the process ended first (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(poll)
    process.kill()
    raise AssertionError("the training process made no progress in time")


def logged_steps(run_dir) -> int:
    try:
        records = runs.read_metrics(run_dir)
    except Exception:  # noqa: BLE001 - read while being written
        return 0
    return max((r["step"] for r in records), default=0)


def saving_now(run_dir) -> bool:
    """An Orbax save is under way: its temporary directory exists."""
    directory = run_dir / "checkpoints"
    return directory.is_dir() and any("tmp" in p.name for p in directory.iterdir())


def final_state(run_dir):
    return runs.load_trained(run_dir)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("straight") / "run"
    # In this process: the same program as the killed runs' processes compile (the suite's XLA flags are
    # theirs), without a process start of its own. Only the checkpoints of each epoch's end (3) instead
    # of one every 8 steps (24): saving must not change what trains, and the saves cost ~6 s.
    result = call_cli("train", *RUN, "--checkpoint-every", str(TOTAL_STEPS), "--out", str(out),
                      env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr
    return out


def assert_same_run(resumed, straight):
    a, b = final_state(straight), final_state(resumed)
    assert a.step == b.step == TOTAL_STEPS
    leaves_a, leaves_b = jax.tree.leaves(a.state), jax.tree.leaves(b.state)
    assert len(leaves_a) == len(leaves_b) > 10
    assert all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))
    assert (resumed / "samples" / "final.png").read_bytes() == (straight / "samples" / "final.png").read_bytes()
    losses = lambda run: [(r["step"], r["d_loss"], r["g_loss"]) for r in runs.read_metrics(run) if "d_loss" in r]  # noqa: E731
    assert losses(resumed) == losses(straight)


def test_killed_and_stopped_anyhow_then_resumed_equals_a_straight_run_bitwise(straight_run, tmp_path, data_dir):
    """One run, stopped five ways in turn, each stop followed by --resume; the last resume trains to
    the end. SIGKILL before its first checkpoint, during steps (a random moment) and during a
    checkpoint save (Orbax's temporary directory exists); Ctrl-C (SIGINT) and SIGTERM (a checkpoint
    of that step is saved, and the exit code says which signal). SIGHUP takes the same path as those
    two (trainer.DEFERRED_SIGNALS; tests/test_train.py stops the loop with each of the three)."""
    rng = random.Random(SEED)
    out = tmp_path / "run"
    stops = [("SIGKILL", "before the first checkpoint"), ("SIGINT", "during steps"), ("SIGKILL", "during steps"),
             ("SIGKILL", "during a save"), ("SIGTERM", "during steps")]
    done = []
    process = start([*RUN, "--out", str(out)], data_dir)
    for name, moment in stops:
        if moment == "before the first checkpoint":
            landed = wait_for(lambda: (out / "config.json").exists(), process)
        elif moment == "during a save":
            landed = wait_for(lambda: saving_now(out), process)
        else:
            reached = logged_steps(out) + 4
            landed = wait_for(lambda: logged_steps(out) >= reached, process)
            time.sleep(rng.uniform(0.0, 0.1))
        signum = getattr(signal, name)
        if not landed or process.poll() is not None:
            break  # the run finished first: nothing left to stop
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
        checkpoints = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()) \
            if (out / "checkpoints").is_dir() else []
        done.append((name, moment, logged_steps(out), checkpoints))
        if name == "SIGKILL":
            assert process.returncode == -signal.SIGKILL, (done, stderr)
            if moment == "before the first checkpoint":
                assert checkpoints == [], done
        else:  # deferred to the end of a step, saved, and reported
            assert process.returncode == 128 + signum, (done, stderr)
            assert f"stopped by {name}" in stderr, stderr
            step = int(stderr.split("checkpoint saved at step ")[1].split(";")[0])
            assert step in checkpoints and 0 < step < TOTAL_STEPS, (done, stderr)
        process = start(["--resume", str(out), "--no-progress"], data_dir)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, (done, stderr)
    assert len(done) == len(stops), done  # every way of stopping was tried
    assert_same_run(out, straight_run)


def test_one_writer_per_run_directory_while_it_trains(tmp_path, data_dir, capsys):
    from gan_lab import cli, files

    out = tmp_path / "run"
    process = start([*RUN, "--epochs", "20", "--out", str(out)], data_dir)
    try:
        assert wait_for(lambda: logged_steps(out) >= 4, process)
        assert cli.main(["train", "--resume", str(out), "--data-dir", str(data_dir)]) == 2
        assert cli.main(["train", *RUN, "--out", str(out), "--data-dir", str(data_dir)]) == 2
        first, second = capsys.readouterr().err.strip().splitlines()
        assert f"in use by another gan_lab process (PID {process.pid}" in first
        assert f"being trained right now by process {process.pid}" in second
    finally:
        process.kill()
        process.wait()
    assert files.RunLock(out).holder() is None  # the kernel released the lock with its holder
