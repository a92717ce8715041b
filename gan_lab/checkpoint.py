"""Orbax checkpoints of the loop state, inside the run directory (RUN_DIR/checkpoints/<step>).

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a save
killed half-way leaves the previous checkpoint as the latest usable one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging

from gan_lab.errors import UserError

# Orbax logs every save and restore through absl at WARNING/INFO; the CLI reports what matters itself.
absl_logging.set_verbosity(absl_logging.ERROR)

KEEP_LAST = 3


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir).resolve() / "checkpoints"


def manager(run_dir: Path, read_only: bool = False) -> ocp.CheckpointManager:
    if read_only:
        options = ocp.CheckpointManagerOptions(read_only=True, create=False)
    else:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=KEEP_LAST,
            create=True,
            # Synchronous: a save has finished when save() returns, so Ctrl-C right after is safe.
            enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
        )
    return ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)


def save(mgr: ocp.CheckpointManager, step: int, loop_state) -> None:
    mgr.save(step, args=ocp.args.StandardSave(loop_state), force=True)
    mgr.wait_until_finished()


def restore_latest(run_dir: Path, abstract_state):
    """The newest complete checkpoint, restored into the structure of `abstract_state`."""
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        raise UserError(f"no checkpoint in {run_dir}: {directory} does not exist; train the run first")
    try:
        mgr = manager(run_dir, read_only=True)
        step = mgr.latest_step()
    except Exception as err:  # noqa: BLE001 - any failure to read is reported the same way
        raise UserError(f"cannot read checkpoints in {directory}: {_one_line(err)}") from None
    if step is None:
        raise UserError(f"no complete checkpoint in {directory}; train the run (again) to make one")
    with quiet_stderr():
        try:
            restored = mgr.restore(step, args=ocp.args.StandardRestore(abstract_state))
        except Exception as err:  # noqa: BLE001
            # Not closed here: closing after a failed read lets Orbax's I/O threads print tracebacks;
            # the CLI exits at once on this error.
            time.sleep(0.5)  # let those threads finish printing into /dev/null
            raise UserError(
                f"checkpoint {directory / str(step)} is unreadable ({_one_line(err)}); "
                "delete that step's directory to fall back to the one before"
            ) from None
    mgr.close()
    return restored


@contextlib.contextmanager
def quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block: a failed Orbax/TensorStore read makes its
    I/O threads print tracebacks, and a user must only see gan_lab's one-line error."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def latest_step(run_dir: Path) -> int | None:
    mgr = manager(run_dir, read_only=True)
    try:
        return mgr.latest_step()
    finally:
        mgr.close()


def abstract_like(init_fn, *args):
    """Shapes and dtypes of `init_fn(*args)` without computing it: the restore target."""
    return jax.eval_shape(init_fn, *args)


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(err).__name__
