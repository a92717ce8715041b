"""Orbax checkpoints of the loop state, inside the run directory (RUN_DIR/checkpoints/<step>).

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a save
killed half-way leaves the previous checkpoint as the latest usable one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import orbax.checkpoint as ocp
from gan_lab.errors import UserError

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
    # The handler named, so that a checkpoint's metadata (its tree of shapes) can be read on its own.
    return ocp.CheckpointManager(checkpoint_dir(run_dir), options=options,
                                 item_handlers=ocp.StandardCheckpointHandler())


def save(mgr: ocp.CheckpointManager, step: int, loop_state) -> None:
    """Write the checkpoint of `step`; a failure (a full disk, a lost mount) is one line saying what
    happened and that the previous checkpoints are still there."""
    try:
        mgr.save(step, args=ocp.args.StandardSave(loop_state), force=True)
        mgr.wait_until_finished()
    except Exception as err:  # noqa: BLE001 - Orbax wraps I/O errors in its own types
        cause = _os_error(err)
        what = "the disk is full" if cause is not None and cause.errno == errno.ENOSPC else "it failed"
        previous = [s for s in mgr.all_steps() if s != step]
        kept = f"the checkpoint of step {max(previous)} is kept" if previous else "no earlier checkpoint exists"
        raise CheckpointWriteError(
            f"could not write the checkpoint of step {step} to {mgr.directory}: {what} "
            f"({_one_line(cause or err)}); {kept}; free space or fix the directory, then resume the run"
        ) from None


class CheckpointWriteError(UserError):
    pass


def _os_error(err: BaseException) -> OSError | None:
    """The OSError behind an exception, following its causes and contexts."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _leaf_signatures(tree) -> dict[str, tuple]:
    """Key path -> (shape, dtype) of every array leaf; works on abstract states and on Orbax metadata."""
    def key_name(key) -> str:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                return str(getattr(key, attribute))
        return str(key)

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(key_name(k) for k in path): (tuple(leaf.shape), str(leaf.dtype)) for path, leaf in leaves}


def structure_difference(mgr: ocp.CheckpointManager, step: int, abstract_state) -> str | None:
    """What differs between checkpoint `step`'s stored tree and the state this code builds, or None
    if they match. Raises if the metadata itself cannot be read (then the checkpoint is damaged)."""
    stored = _leaf_signatures(mgr.item_metadata(step).tree)
    wanted = _leaf_signatures(abstract_state)
    missing = sorted(set(wanted) - set(stored))
    extra = sorted(set(stored) - set(wanted))
    if missing or extra:
        return f"{len(missing)} arrays missing (e.g. {(missing or extra)[0]}), {len(extra)} unexpected"
    for path, signature in wanted.items():
        if stored[path] != signature:
            return f"{path} is {stored[path][0]} {stored[path][1]} there, {signature[0]} {signature[1]} here"
    return None


class Restored(NamedTuple):
    state: object
    step: int
    skipped: list  # [(step, reason)] newer checkpoints that could not be read


def restore_latest(run_dir: Path, abstract_state) -> Restored:
    """The newest readable checkpoint, restored into the structure of `abstract_state`.

    A damaged newest checkpoint (a file cut short, bytes changed) is skipped for the one before, and
    the caller says so. A checkpoint that is intact but was written for another structure (another
    gan_lab version, another model definition) is not damaged: that is one error saying so, and no
    checkpoint is skipped, since every older one has the same structure.
    """
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        raise NoCheckpoint(f"no checkpoint in {run_dir}: {directory} does not exist; train the run first")
    try:
        mgr = manager(run_dir, read_only=True)
        steps = sorted(mgr.all_steps(), reverse=True)
    except Exception as err:  # noqa: BLE001 - any failure to list is reported the same way
        raise UserError(f"cannot read checkpoints in {directory}: {_one_line(err)}") from None
    if not steps:
        raise NoCheckpoint(f"no complete checkpoint in {directory}; train the run (again) to make one")
    restored = None
    with quiet_stderr():
        try:
            restored = _newest_readable(mgr, directory, steps, abstract_state, run_dir)
        finally:
            mgr.close()
            if restored is None or restored.skipped:
                # A failed read leaves Orbax I/O threads that print tracebacks once the manager is
                # closed: let them finish while stderr still goes nowhere.
                time.sleep(0.5)
    return restored


def _newest_readable(mgr, directory: Path, steps: list, abstract_state, run_dir: Path) -> Restored:
    skipped = []
    for step in steps:
        try:
            difference = structure_difference(mgr, step, abstract_state)
        except Exception as err:  # noqa: BLE001 - unreadable metadata: a damaged checkpoint
            skipped.append((step, f"its metadata is unreadable: {_one_line(err)}"))
            continue
        if difference is not None:
            raise UserError(
                f"checkpoint {directory / str(step)} is intact but was written for another model "
                f"structure ({difference}); it was probably made by another gan_lab version (see the "
                f"versions in {Path(run_dir) / 'config.json'}): use that version to read it; keep the checkpoint"
            )
        try:
            return Restored(mgr.restore(step, args=ocp.args.StandardRestore(abstract_state)), step, skipped)
        except Exception as err:  # noqa: BLE001
            skipped.append((step, _one_line(err)))
    newest, reason = skipped[0]
    raise UserError(f"no readable checkpoint in {directory}: every one is damaged (step {newest}: {reason}); "
                    "the run cannot be continued or sampled; train it again")


class NoCheckpoint(UserError):
    """The run has not saved any checkpoint yet (e.g. it was killed before its first one)."""


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


def abstract_like(init_fn, *args):
    """Shapes and dtypes of `init_fn(*args)` without computing it: the restore target, on this process's
    first device. Without a sharding, Orbax would restore onto the devices that saved it: a run trained
    on 2 devices (or 2 processes) could then not be sampled or resumed by a process with 1."""
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=here),
                        jax.eval_shape(init_fn, *args))


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(err).__name__
