"""MNIST and Fashion-MNIST: IDX parsing, checksums, data-dir resolution, download.

Where files are looked for, in order (the first directory holding a file wins):
  1. the primary directory: `--data-dir` if given, else $GAN_LAB_DATA, else
     $XDG_CACHE_HOME/gan_lab (or ~/.cache/gan_lab);
  2. for fashion-mnist only, Debian's system copy under /usr/share/datasets
     (`apt-get install dataset-fashion-mnist`).
Layout under a directory: `<dir>/<dataset>/<file>.gz` or the uncompressed `<dir>/<dataset>/<file>`.
A file found nowhere is downloaded into the primary directory over https, from each of the
dataset's SOURCES in turn ($GAN_LAB_DATA_URL replaces them all), while holding an exclusive
lock on `<dir>/<dataset>/.download.lock`, so processes sharing a directory do not race.
Every file is checked before use: its decompressed size may not exceed the real file's (so a
gzip bomb fails after SIZES[file] + 1 bytes), then the SHA-256 of its decompressed bytes.
Any problem is a DataError with a one-line message naming the file and saying what to do.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from http.client import HTTPException
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gan_lab import files
from gan_lab.errors import UserError

DATASETS = ("mnist", "fashion-mnist")
NUM_CLASSES = 10  # both datasets
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILES = SPLITS["train"] + SPLITS["test"]
SPLIT_SIZES = {"train": 60_000, "test": 10_000}  # images in each split, both datasets
# Decompressed sizes from the IDX layout: a 16-byte header + 28*28 bytes per image, 8 + 1 per label.
SIZES = {
    "train-images-idx3-ubyte": 16 + SPLIT_SIZES["train"] * 28 * 28,  # 47,040,016
    "train-labels-idx1-ubyte": 8 + SPLIT_SIZES["train"],
    "t10k-images-idx3-ubyte": 16 + SPLIT_SIZES["test"] * 28 * 28,    # 7,840,016
    "t10k-labels-idx1-ubyte": 8 + SPLIT_SIZES["test"],
}

# SHA-256 of the *decompressed* files: mirrors recompress, so the .gz bytes differ.
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
# Base URLs tried in order, all https (the hashes make any mirror safe; https keeps it private).
# MNIST: torchvision's mirror, then TFDS's (yann.lecun.com often refuses downloads). Fashion-MNIST:
# Keras', then the files in Zalando's own repository (its S3 site is plain http only).
SOURCES = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist",
              "https://storage.googleapis.com/cvdf-datasets/mnist"),
    "fashion-mnist": ("https://storage.googleapis.com/tensorflow/tf-keras-datasets",
                      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"),
}

DATA_ENV = "GAN_LAB_DATA"          # data directory when --data-dir is not given
URL_ENV = "GAN_LAB_DATA_URL"       # base URL replacing the official ones: <base>/<dataset>/<file>.gz
SYSTEM_ROOT = Path("/usr/share/datasets")  # module constant so tests can point it elsewhere
SYSTEM_DATASETS = ("fashion-mnist",)       # what Debian packages there
DOWNLOAD_TIMEOUT = 60  # seconds per socket operation, so a dead network fails instead of hanging
LOCK_NAME = ".download.lock"  # in each dataset directory; left in place (deleting a lock file races)

IDX_MAGIC = {0x00000801: "labels", 0x00000803: "images"}  # 0x08 = unsigned byte, then ndim


class DataError(UserError):
    """A data file is missing, unreachable or bad. The message is one line: file and fix."""

    def __init__(self, message: str):
        # The CLI prints this as a single line; reasons from urllib/gzip may carry newlines.
        super().__init__(" ".join(str(message).split()))


# Files (resolved path, size, mtime, expected hash) already hashed in this process, so
# loading the same split twice does not hash 47 MB again.
_verified: set[tuple] = set()


# --- parsing -------------------------------------------------------------------------

def parse_idx(raw: bytes) -> np.ndarray:
    """Decompressed IDX bytes -> uint8 array; the messages do not name a file (callers do)."""
    if len(raw) < 4:
        raise DataError(f"too short for an IDX file: {len(raw)} bytes")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in IDX_MAGIC:
        raise DataError(f"bad IDX magic number 0x{magic:08x}, expected 0x00000801 (labels) "
                        f"or 0x00000803 (images) with uint8 data")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX header cut short: {len(raw)} bytes, need {header}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    payload = len(raw) - header
    if payload != int(np.prod(shape)):
        raise DataError(f"IDX size mismatch: header says shape {shape} "
                        f"({int(np.prod(shape))} bytes), payload has {payload} bytes")
    # copy(): frombuffer views the immutable bytes, and callers may shuffle in place.
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def _decompressed(path: Path, limit: int) -> bytes:
    """The decompressed bytes, at most `limit`: more is an error found after reading limit + 1."""
    if path.suffix != ".gz":
        size = path.stat().st_size
        if size > limit:
            raise DataError(f"{size:,} bytes, more than the {limit:,} bytes of the real file")
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read(limit + 1)  # decompresses incrementally: a gzip bomb stops here
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataError(f"truncated or corrupt gzip ({err})") from None
    if len(raw) > limit:
        raise DataError(f"decompresses to more than the {limit:,} bytes of the real file")
    return raw


def _cache_key(path: Path, expected_sha: str) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected_sha)


def _checked_array(path: Path, dataset: str, file: str) -> np.ndarray:
    """Parse and hash one file. Messages name no file: the caller knows what it is and what to advise."""
    expected_sha = SHA256[dataset][file]
    key = _cache_key(path, expected_sha)
    raw = _decompressed(path, SIZES[file])
    array = parse_idx(raw)  # before hashing: "not an IDX file" says more than a bad hash
    if key not in _verified:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected_sha:
            raise DataError(f"SHA-256 of the decompressed bytes: expected {expected_sha}, got {actual}")
        _verified.add(key)
    return array


# --- where the files are ---------------------------------------------------------------

def _check_name(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")


def _primary_dir(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "gan_lab"


def candidate_dirs(data_dir: str | os.PathLike | None = None, dataset: str | None = None) -> list[Path]:
    """Data roots to search, in order. The first is where downloads go.

    With `dataset` given, the system root is listed only if Debian ships that dataset.
    """
    dirs = [_primary_dir(data_dir)]
    if dataset is None or dataset in SYSTEM_DATASETS:
        dirs.append(SYSTEM_ROOT)
    return dirs


def _find(dataset: str, file: str, dirs: list[Path]) -> Path | None:
    for root in dirs:
        for path in (root / dataset / f"{file}.gz", root / dataset / file):
            if path.is_file():
                return path
    return None


def locate(dataset: str, data_dir: str | os.PathLike | None = None) -> dict[str, Path | None]:
    """File name -> where it would be read from, or None if it would be downloaded."""
    _check_name(dataset)
    dirs = candidate_dirs(data_dir, dataset)
    return {file: _find(dataset, file, dirs) for file in FILES}


def download_urls(dataset: str, file: str) -> list[str]:
    """Where a download tries, in order: $GAN_LAB_DATA_URL alone if set, else the dataset's SOURCES."""
    base = os.environ.get(URL_ENV)
    if base:
        return [f"{base.rstrip('/')}/{dataset}/{file}.gz"]
    return [f"{source}/{file}.gz" for source in SOURCES[dataset]]


def download_url(dataset: str, file: str) -> str:
    """The first source: the one messages tell a user to fetch by hand."""
    return download_urls(dataset, file)[0]


def _download_target(dataset: str, file: str, data_dir) -> Path:
    return candidate_dirs(data_dir, dataset)[0] / dataset / f"{file}.gz"


def _manual_fix(dataset: str, file: str, data_dir) -> str:
    """The advice every 'could not get it' message ends with."""
    url, dest = download_url(dataset, file), _download_target(dataset, file, data_dir)
    return (f"download {url} yourself and put it at {dest}, or point --data-dir / "
            f"{DATA_ENV} at a directory holding {dataset}/{file}.gz")


# --- download --------------------------------------------------------------------------

def _download_cap(file: str) -> int:
    """Most .gz bytes a source may send: deflate grows incompressible data by well under 1%."""
    return SIZES[file] + SIZES[file] // 100 + 4096


def _fetch(url: str, out, limit: int) -> None:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=url.rsplit("/", 1)[-1]) as bar:
            written = 0
            while chunk := response.read(1 << 16):
                written += len(chunk)
                if written > limit:  # an endless or wrong response must not fill the disk
                    raise DataError(f"sent more than {limit:,} bytes, too many for this file")
                out.write(chunk)
                bar.update(len(chunk))


def _reason(err: Exception) -> object:
    # URLError's str wraps the cause as "<urlopen error ...>"; HTTPError's str ("HTTP Error 404: ...") reads well.
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        return err.reason
    return err


def _cannot_write(file: str, directory: Path, err: OSError) -> DataError:
    return DataError(f"cannot write {file}.gz into {directory} ({err}); choose a writable "
                     f"directory with --data-dir or {DATA_ENV}, or put the file there yourself")


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable where the OS can (POSIX; Windows cannot open a directory)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):  # best effort: the file is already in place and verified
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _download(dataset: str, file: str, data_dir) -> np.ndarray:
    """Download into the primary dir under the dataset directory's lock.

    Under the lock: a file another process finished meanwhile is used as it is, and partials
    left by a killed download of this file are deleted (no live process can be writing one).
    Each source is fetched into a temp file beside the target, fsynced, verified, then
    os.replace'd into place; a bad download is deleted, so a half-written or corrupt file is
    never found later.
    """
    dest = _download_target(dataset, file, data_dir)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = files.open_lock(dest.parent / LOCK_NAME)
    except OSError as err:
        raise _cannot_write(file, dest.parent, err) from None
    with files.holding_lock(lock_fd) as locked:
        found = _find(dataset, file, candidate_dirs(data_dir, dataset))
        if found is not None:
            return _load_placed(found, dataset, file)
        if locked:
            for stale in dest.parent.glob(f".{dest.name}.*.part.gz"):
                stale.unlink(missing_ok=True)
        try:
            # Hidden, so never found as data; ends in .gz, so it is checked like the target.
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part.gz")
        except OSError as err:
            raise _cannot_write(file, dest.parent, err) from None
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            return _download_from_sources(tmp, dest, dataset, file, data_dir)
        finally:
            tmp.unlink(missing_ok=True)  # no-op after os.replace


def _download_from_sources(tmp: Path, dest: Path, dataset: str, file: str, data_dir) -> np.ndarray:
    failures = []
    for url in download_urls(dataset, file):
        try:
            with open(tmp, "wb") as out:
                _fetch(url, out, _download_cap(file))
                out.flush()
                os.fsync(out.fileno())  # on disk before os.replace makes it the file
        # URLError, HTTPError and timeouts are OSErrors; ValueError is a malformed $GAN_LAB_DATA_URL.
        except (OSError, HTTPException, ValueError, DataError) as err:
            failures.append(f"{url} ({_reason(err)})")
            continue
        try:
            array = _checked_array(tmp, dataset, file)
        except DataError as err:
            failures.append(f"{url} (unusable: {err})")
            continue
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        _verified.add(_cache_key(dest, SHA256[dataset][file]))
        return array
    raise DataError(f"could not download {file}.gz: tried {'; '.join(failures)}; nothing was saved; "
                    f"retry, or {_manual_fix(dataset, file, data_dir)}")


# --- loading -------------------------------------------------------------------------

def _load_file(dataset: str, file: str, data_dir, download: bool) -> np.ndarray:
    dirs = candidate_dirs(data_dir, dataset)
    path = _find(dataset, file, dirs)
    if path is None:
        if not download:
            raise DataError(f"{dataset} file {file}.gz not found in {', '.join(map(str, dirs))}; "
                            f"{_manual_fix(dataset, file, data_dir)}")
        return _download(dataset, file, data_dir)
    return _load_placed(path, dataset, file)


def _load_placed(path: Path, dataset: str, file: str) -> np.ndarray:
    try:
        return _checked_array(path, dataset, file)
    except DataError as err:
        # A file the user placed is theirs: say what is wrong, never delete it.
        raise DataError(f"{path}: {err}; remove or replace this file with a good copy of "
                        f"{download_url(dataset, file)}") from None


def load_split(dataset: str, split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Verified (images uint8 (N, 28, 28), labels uint8 (N,)); downloads missing files."""
    _check_name(dataset)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    images_file, labels_file = SPLITS[split]
    images = _load_file(dataset, images_file, data_dir, download)
    labels = _load_file(dataset, labels_file, data_dir, download)
    return images, labels


# Fixed seeds of the binarised copies of each split, so a binarised dataset is the same everywhere.
BINARIZE_SEEDS = {"train": 0, "test": 1}


def load_for_model(cfg, split: str, data_dir=None):
    """A split on the device as the model sees it: subset (train only) and binarisation applied."""
    images, labels = load_split(cfg.dataset, split, data_dir)
    if split == "train" and cfg.subset is not None:
        images, labels = images[: cfg.subset], labels[: cfg.subset]
    if cfg.binarize:
        images = binarize(images, BINARIZE_SEEDS[split])
    return to_device(images, labels)


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [-1, 1], the range of a tanh generator."""
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images[..., None].astype(np.float32) / 127.5 - 1.0


def to_device(images: np.ndarray, labels: np.ndarray):
    """Device-resident (float32 images in [-1, 1], int32 labels) for indexing inside a jitted step."""
    import jax  # lazily: the data tools and tests should not pay for starting JAX

    return jax.device_put(to_model_range(images)), jax.device_put(labels.astype(np.int32))


# --- reporting (for `gan_lab data`) ----------------------------------------------------

def verify_dataset(dataset: str, data_dir: str | os.PathLike | None = None
                   ) -> list[tuple[str, Path | None, bool, str]]:
    """(file, path or None, ok, message) for each file; never downloads."""
    results = []
    for file, path in locate(dataset, data_dir).items():
        if path is None:
            results.append((file, None, False, _missing_message(dataset, file, data_dir)))
            continue
        try:
            _load_placed(path, dataset, file)
            results.append((file, path, True, "SHA-256 ok"))
        except DataError as err:
            results.append((file, path, False, str(err)))
    return results


def _missing_message(dataset: str, file: str, data_dir) -> str:
    return (f"missing; will be downloaded from {download_url(dataset, file)} "
            f"to {_download_target(dataset, file, data_dir)}")


def describe(dataset: str, data_dir: str | os.PathLike | None = None, verify: bool = False) -> list[str]:
    """Human-readable lines: where each file is and, with verify, whether it checks out."""
    dirs = candidate_dirs(data_dir, dataset)
    lines = [f"{dataset}: searching {', '.join(map(str, dirs))}"]
    if verify:
        for file, path, ok, message in verify_dataset(dataset, data_dir):
            status = f"{path}  verified (SHA-256 ok)" if ok else f"PROBLEM: {message}"
            lines.append(f"  {file}: {status}")
    else:
        for file, path in locate(dataset, data_dir).items():
            status = f"{path}  (not verified; add --verify)" if path else _missing_message(dataset, file, data_dir)
            lines.append(f"  {file}: {status}")
    return lines


def binarize(images: np.ndarray, seed: int) -> np.ndarray:
    """One fixed random binarisation (pixel on with probability intensity/255), as in binarised MNIST.

    The same seed gives the same binary dataset every time, so it is a fixed dataset, not augmentation.
    """
    rng = np.random.default_rng(seed)
    return np.where(rng.random(images.shape) < images / 255.0, 255, 0).astype(np.uint8)
