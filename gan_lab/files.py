"""Writing files so that nothing a user made is lost or silently overwritten.

* `write_new`: a new output appears whole or not at all, and never replaces a file: it is written to
  a uniquely named temporary file beside it, then hard-linked into place (link() fails if the name
  exists, atomically, so two writers cannot both win) and the temporary name removed.
* `replace_atomically`: a file the program owns (config.json, metrics.jsonl) is rewritten through a
  uniquely named temporary file, flushed to disk, then renamed over the old one: a crash leaves the
  old or the new version, never half of one. No fixed `*.tmp` names, which a planted symlink could
  redirect.
* `RunLock`: one writer per run directory, an advisory lock held for the life of the process (the
  kernel releases it when the process dies, however it dies).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Callable

from gan_lab.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a second writer is then not detected
    fcntl = None


class AlreadyExists(UserError):
    pass


def _temporary_beside(path: Path) -> Path:
    """A new, uniquely named, hidden file in path's directory, with path's suffix (writers such as
    matplotlib pick the format from it). Created exclusively, like tempfile.mkstemp, but with the mode
    any new file gets (0666 less the umask, usually 0644): mkstemp's 0600 became the mode of
    config.json and every picture once renamed into place."""
    while True:
        candidate = path.parent / f".{path.name}.{secrets.token_hex(4)}{path.suffix}"
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return candidate
        except FileExistsError:
            continue


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable. Not every OS can open a directory (Windows): there it is skipped."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_new(path: Path, write: Callable[[Path], object]) -> Path:
    """Create `path` by calling write(temporary path); a UserError if `path` exists already."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(path)
    try:
        write(tmp)
        _fsync(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise AlreadyExists(f"{path} already exists; choose another --out (nothing is overwritten)") from None
        except OSError as err:  # a filesystem without hard links: exclusive rename is not possible there
            if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if path.exists():
                raise AlreadyExists(f"{path} already exists; choose another --out (nothing is overwritten)") from None
            os.replace(tmp, path)
        _fsync_directory(path.parent)
        return path
    finally:
        tmp.unlink(missing_ok=True)


def write_new_numbered(path: Path, write: Callable[[Path], object]) -> Path:
    """Create `path`, or path-2, path-3, ... where it exists: a new picture never replaces an old one."""
    path, n = Path(path), 2
    candidate = path
    while True:
        try:
            return write_new(candidate, write)
        except AlreadyExists:
            candidate, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1


def replace_atomically(path: Path, text: str) -> None:
    """Replace `path` (a file this program owns) with `text`, all or nothing."""
    replace_with(path, lambda tmp: tmp.write_text(text))


def replace_with(path: Path, write: Callable[[Path], object]) -> None:
    """Replace `path` (a file this program owns) with what `write(tmp)` writes, all or nothing: a reader
    sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = _temporary_beside(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def open_lock(path: Path) -> int | None:
    """`path` (made if missing) opened as a lock file for holding_lock; None without fcntl (Windows),
    where the work runs unlocked. An OSError says the directory cannot be written."""
    if fcntl is None:
        return None
    return os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)


@contextlib.contextmanager
def holding_lock(fd: int | None):
    """Hold an exclusive lock on an open lock file (open_lock), waiting while another process holds it,
    then close it; yields whether the lock is held. For work that several processes would otherwise
    all do at once (a download, features to compute)."""
    if fd is None:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits while another process holds it
            held = True
        except OSError:  # a filesystem refusing flock (some NFS): the work runs unlocked
            held = False
        yield held
    finally:
        os.close(fd)  # releases the lock


class RunLock:
    """An exclusive lock on a run directory, held until release() or the process's end.

    The lock file (RUN_DIR/.lock) holds the holder's PID, so a second writer is told who holds it.
    """

    NAME = ".lock"

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / self.NAME
        self._handle = None

    def acquire(self) -> "RunLock":
        handle = open(self.path, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise UserError(f"{self.path.parent} is in use by another gan_lab process (PID {holder}, "
                                f"lock {self.path}); wait for it to finish or stop it, then try again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    @classmethod
    def held_elsewhere(cls, run_dir: Path) -> bool:
        """Whether another process holds the run's lock (e.g. is training it), without taking it."""
        path = Path(run_dir) / cls.NAME
        if fcntl is None or not path.exists():
            return False
        with open(path) as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None

    def holder(self) -> str | None:
        """The PID holding this lock if another process holds it now, else None (no side effects
        beyond a brief lock test: the lock file is never created here)."""
        if fcntl is None or not self.path.is_file():
            return None
        with open(self.path) as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return handle.read().strip() or "unknown"
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
