"""Several processes, one run: jax.distributed set up from the environment, for programs that opt in
(`GAN_LAB_DISTRIBUTED=1 python -m gan_lab train ...` on every host; see docs/scaling.md).

Every process runs the same command. The coordinator (process 0's host and a free port), the number
of processes and each one's id come from the environment, under JAX's own names; on a cluster JAX
recognises (SLURM, Open MPI, Kubernetes, Cloud TPU) they may be left out and JAX finds them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from gan_lab.errors import UserError

ENABLE = "GAN_LAB_DISTRIBUTED"  # "1": this process is one of several
COORDINATOR = "JAX_COORDINATOR_ADDRESS"  # host:port of process 0 (JAX reads this name itself too)
NUM_PROCESSES = "JAX_NUM_PROCESSES"
PROCESS_ID = "JAX_PROCESS_ID"
# A process that dies (killed, its host gone) is noticed by the others within this many seconds, and
# they stop with an error instead of waiting for it forever in the next collective. JAX's default is 100.
HEARTBEAT_TIMEOUT = "GAN_LAB_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_TIMEOUT = 20
WORKER = "GAN_LAB_DISTRIBUTED_WORKER"  # set by supervise() in the process that does the work
# Where a report starts that may be about a lost peer: an error or fatal line of the C++ runtime's log
# (absl: severity, MMDD, time), as it aborts the process (dozens of lines and a stack trace), or a
# Python traceback (the step's collective failing as the peer's connection closes).
RUNTIME_ERROR_LINE = re.compile(rb"(?m)^([EF]\d{4} \d\d:\d\d:\d\d|Traceback \(most recent call last\):)")
PEER_LOST = ("heartbeat timeout", "stopped sending heartbeats", "detected fatal errors")


def requested() -> bool:
    return os.environ.get(ENABLE) == "1"


def _whole_number(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{name}={text!r} is not a whole number") from None


def initialize() -> None:
    """Join the other processes (blocks until all have joined). CPU processes exchange their collectives
    over gloo (TCP), which XLA:CPU needs for any computation spanning processes; GPUs use NCCL."""
    import jax

    num_processes, process_id = _whole_number(NUM_PROCESSES), _whole_number(PROCESS_ID)
    if (num_processes is None) != (process_id is None):
        raise UserError(f"set both {NUM_PROCESSES} and {PROCESS_ID} (or neither, on a cluster JAX detects)")
    if process_id is not None and not 0 <= process_id < num_processes:
        raise UserError(f"{PROCESS_ID}={process_id} must be 0..{num_processes - 1} ({NUM_PROCESSES}={num_processes})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    heartbeat = _whole_number(HEARTBEAT_TIMEOUT) or DEFAULT_HEARTBEAT_TIMEOUT
    try:
        jax.distributed.initialize(coordinator_address=os.environ.get(COORDINATOR), num_processes=num_processes,
                                   process_id=process_id, heartbeat_timeout_seconds=heartbeat)
    except (ValueError, RuntimeError) as err:
        raise UserError(f"could not join the other processes ({str(err).splitlines()[0]}); set {COORDINATOR}="
                        f"host:port of process 0, {NUM_PROCESSES} and {PROCESS_ID} on every process") from None


def is_worker() -> bool:
    return os.environ.get(WORKER) == "1"


def _stop_with_parent() -> None:
    """In the worker, before it starts: Linux sends it SIGTERM if the supervisor dies (killed, say)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker then outlives a killed supervisor until its peers' heartbeats time out


def supervise(argv: list[str]) -> int:
    """Run `gan_lab argv` as this process's worker and stand between it and the terminal.

    When another process of the run dies, JAX's runtime notices the lost heartbeat and aborts this
    worker with a report of dozens of lines. The supervisor keeps that report in a log file and says
    what happened in one line. Everything else the worker prints (progress bars, gan_lab's own
    messages, any other error) passes through as it comes. Signals to the supervisor go to the worker,
    which stops the way a single process does (a checkpoint, then exit)."""
    process_id = os.environ.get(PROCESS_ID, "?")
    worker = subprocess.Popen([sys.executable, "-m", "gan_lab", *argv], env={**os.environ, WORKER: "1"},
                              stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_stop_with_parent)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda received, frame: worker.send_signal(received))
    log_path = Path(tempfile.gettempdir()) / f"gan_lab-process-{process_id}-{os.getpid()}.log"
    held, pending = [], b""
    with open(log_path, "wb") as log:
        while chunk := os.read(worker.stderr.fileno(), 65536):
            log.write(chunk)
            if held:
                held.append(chunk)
                continue
            pending += chunk
            report = RUNTIME_ERROR_LINE.search(pending)
            if report:
                held.append(pending[report.start():])
                pending = pending[:report.start()]
            # Up to the last line end (\r too: a progress bar's update), so a line is never split.
            end = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1 if not report else len(pending)
            sys.stderr.buffer.write(pending[:end])
            sys.stderr.flush()
            pending = pending[end:]
    code = worker.wait()
    text = b"".join(held).decode(errors="replace")
    if code != 0 and any(sign in text for sign in PEER_LOST):
        sys.stderr.write(f"gan_lab: error: process {process_id} stopped because another process of this run "
                         f"stopped (its heartbeat was lost); start every process again with `gan_lab train "
                         f"--resume RUN_DIR` (the runtime's report: {log_path})\n")
        return 2
    sys.stderr.write(pending.decode(errors="replace") + text)  # any other report is shown as it came
    if code < 0:
        sys.stderr.write(f"gan_lab: error: process {process_id} was stopped by {signal.Signals(-code).name}\n")
        return 128 - code
    log_path.unlink()  # nothing to keep: everything was shown
    return code
