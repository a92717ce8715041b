"""Several processes, one run: 2 real processes on 127.0.0.1 through jax.distributed (gloo collectives on
the CPU), each with 1 device, exactly the commands docs/scaling.md gives for two hosts."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from gan_lab import runs
from tests.helpers import TINY_FLAGS, call_cli

TRAIN = ["train", "dcgan", "--dataset", "mnist", *TINY_FLAGS, "--log-every", "1", "--devices", "2", "--no-progress"]
TIMEOUT = 300  # seconds for a whole 2-process command; a hang fails the test instead of stalling CI


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_processes(args, data_dir, extra_env=None) -> list[subprocess.Popen]:
    """The same command in 2 processes joined through a coordinator on loopback (docs/scaling.md, two hosts)."""
    port = free_port()
    env = {**os.environ, "GAN_LAB_DATA": str(data_dir), "GAN_LAB_DISTRIBUTED": "1", "JAX_NUM_PROCESSES": "2",
           "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", **(extra_env or {})}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    return [subprocess.Popen([sys.executable, "-m", "gan_lab", *args], env={**env, "JAX_PROCESS_ID": str(i)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
            for i in range(2)]


def finish(processes) -> list[tuple[int, str, str]]:
    """Wait for both, killing both (and their workers) if either overruns."""
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT)
            results.append((process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return results


def train_two_processes(args, data_dir) -> list[tuple[int, str, str]]:
    results = finish(start_processes(args, data_dir))
    for code, out, err in results:
        assert code == 0, err[-3000:]
    return results


def child_of(pid: int) -> int:
    """The process `pid` started (gan_lab's worker under its supervising process), from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(command name)"
        except OSError:
            continue
        if int(fields[1]) == pid:  # the parent's pid
            return int(stat.parent.name)
    raise AssertionError(f"process {pid} has no child")


def losses(run_dir) -> np.ndarray:
    return np.array([[r["d_loss"], r["g_loss"]] for r in runs.read_metrics(run_dir) if "d_loss" in r])


def samples(run_dir) -> np.ndarray:
    run = runs.load_trained(run_dir)
    return np.asarray(run.model.sample(run.state, jax.random.key(5), 16))


def test_two_processes_train_as_one_process_and_resume_bit_for_bit(tmp_path, data_dir):
    # The reference: the same command on one device, in this process (a third subprocess with 2
    # devices cost ~20 s; tests/test_devices.py shows 2 devices in one process match 1 to the same tolerance).
    one = tmp_path / "one-process"
    one_device = [*TRAIN[:TRAIN.index("--devices")], "--devices", "1", *TRAIN[TRAIN.index("--devices") + 2:]]
    result = call_cli(*one_device, "--steps", "4", "--out", one, env={"GAN_LAB_DATA": str(data_dir)})
    assert result.returncode == 0, result.stderr[-3000:]

    two = tmp_path / "two-processes"
    results = train_two_processes([*TRAIN, "--steps", "4", "--checkpoint-every", "2", "--out", str(two)], data_dir)
    # Process 0 alone wrote the run: one record per step, not two.
    assert [r["step"] for r in runs.read_metrics(two)] == [1, 2, 3, 4]
    assert json.loads((two / "config.json").read_text())["config"]["devices"] == 2
    assert all("run saved in" in out for _, out, _ in results)
    # The same step, its batch split over two processes: losses and samples agree to float tolerance
    # (sums split across devices add in another order; tests/test_devices.py's bounds).
    assert np.abs(losses(one) - losses(two)).max() < 5e-4
    assert np.abs(samples(one) - samples(two)).max() < 1e-3

    # Cut at step 2 (as a kill after that checkpoint leaves it), then resumed by both processes: bit
    # for bit the straight run.
    cut = tmp_path / "cut"
    shutil.copytree(two, cut)
    shutil.rmtree(cut / "checkpoints" / "4")
    (cut / "samples" / "final.png").unlink()
    train_two_processes(["train", "--resume", str(cut), "--no-progress"], data_dir)
    assert runs.newest_step(cut) == 4 and [r["step"] for r in runs.read_metrics(cut)] == [1, 2, 3, 4]
    assert np.array_equal(losses(cut), losses(two))
    assert np.array_equal(samples(cut), samples(two))


def test_a_killed_process_stops_the_other_with_one_line(tmp_path, data_dir):
    run_dir = tmp_path / "run"
    processes = start_processes([*TRAIN, "--epochs", "1000", "--out", str(run_dir)], data_dir,
                                {"GAN_LAB_HEARTBEAT_TIMEOUT": "10"})
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ((run_dir / "metrics.jsonl").exists() and runs.read_metrics(run_dir)):  # training started
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "never started training"
            time.sleep(0.5)
        worker = child_of(processes[1].pid)
        os.kill(worker, signal.SIGKILL)  # process 1's worker dies as a crash or a lost host would
        stopped = time.monotonic()
        (code, _, err), (code_killed, _, err_killed) = finish(processes)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert time.monotonic() - stopped < 120  # noticed within the heartbeat timeout, not a hang
    assert code == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[Gloo]")]
    assert len(lines) == 1 and lines[0].startswith("gan_lab: error: process 0 stopped because another process "
                                                   "of this run stopped"), err[-3000:]
    assert code_killed == 128 + signal.SIGKILL and "process 1 was stopped by SIGKILL" in err_killed
