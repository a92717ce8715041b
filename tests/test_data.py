"""gan_lab.data on the real MNIST / Fashion-MNIST files, plus every way a file can go wrong."""

import contextlib
import functools
import gzip
import http.server
import os
import socket
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gan_lab import data, files
from gan_lab.data import DataError

IMAGES, LABELS = data.SPLITS["test"]  # the small split: the file-handling tests use it

# Per-class label counts of the published datasets.
CLASS_COUNTS = {
    ("mnist", "train"): [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    ("mnist", "test"): [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ("fashion-mnist", "train"): [6000] * 10,
    ("fashion-mnist", "test"): [1000] * 10,
}


def closed_port_url() -> str:
    """A local URL nothing listens on: connecting fails at once, no real network involved."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test reads the user's cache or /usr/share, or touches the internet by accident."""
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(data, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv(data.URL_ENV, closed_port_url())


@pytest.fixture(scope="session")
def real(data_dir):
    """(dataset, split) -> (images, labels), each file hashed once per session."""
    return {(name, split): data.load_split(name, split, data_dir=data_dir, download=False)
            for name in data.DATASETS for split in data.SPLITS}


def link(src_root: Path, root: Path, dataset: str, *files: str) -> None:
    """Place real .gz files under root/dataset as a user would (symlinks: no 47 MB copies)."""
    (root / dataset).mkdir(parents=True, exist_ok=True)
    for file in files:
        (root / dataset / f"{file}.gz").symlink_to(src_root / dataset / f"{file}.gz")


def raw_bytes(data_dir: Path, dataset: str, file: str) -> bytes:
    return gzip.decompress((data_dir / dataset / f"{file}.gz").read_bytes())


def left_in(directory: Path) -> list[str]:
    """What a download left in a dataset directory, but for the lock file it keeps (hidden partials count)."""
    return sorted(p.name for p in directory.iterdir() if p.name != data.LOCK_NAME)


def with_one_label_changed(raw: bytes) -> bytes:
    """Still a valid IDX label file, so only the checksum can catch it."""
    changed = bytearray(raw)
    changed[8] = (changed[8] + 1) % 10
    return bytes(changed)


def assert_one_line(err: pytest.ExceptionInfo, *needles: str) -> str:
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message
    return message


@contextlib.contextmanager
def serving(root: Path):
    """A local HTTP server for root, in a thread that is always shut down."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the real files ---------------------------------------------------------------------

@pytest.mark.parametrize("dataset", data.DATASETS)
@pytest.mark.parametrize("split", data.SPLITS)
def test_real_split_shapes_and_classes(real, dataset, split):
    images, labels = real[dataset, split]
    n = 60000 if split == "train" else 10000
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == CLASS_COUNTS[dataset, split]
    assert images.min() == 0 and images.max() == 255
    assert images.flags.writeable  # callers may shuffle in place
    assert len(data.CLASS_NAMES[dataset]) == 10


@pytest.mark.parametrize("dataset", data.DATASETS)
def test_verify_dataset_and_describe_on_real_files(real, data_dir, dataset):
    results = data.verify_dataset(dataset, data_dir)
    assert [(file, ok) for file, _, ok, _ in results] == [(file, True) for file in data.FILES]
    assert all(path == data_dir / dataset / f"{file}.gz" for file, path, _, _ in results)
    lines = data.describe(dataset, data_dir, verify=True)
    assert len(lines) == 1 + len(data.FILES)
    assert all("verified" in line for line in lines[1:])


def test_to_model_range(real):
    images = real["mnist", "test"][0]
    scaled = data.to_model_range(images)
    assert scaled.shape == (10000, 28, 28, 1) and scaled.dtype == np.float32
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    np.testing.assert_allclose(data.to_model_range(np.array([[0, 51, 255]], np.uint8))[..., 0],
                               [[-1.0, -0.6, 1.0]], rtol=0, atol=1e-6)
    with pytest.raises(TypeError):
        data.to_model_range(images.astype(np.float32))


def test_to_device(real):
    images, labels = real["fashion-mnist", "test"]
    device_images, device_labels = data.to_device(images[:8], labels[:8])
    assert device_images.dtype == np.float32 and device_images.shape == (8, 28, 28, 1)
    assert device_labels.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(device_images), data.to_model_range(images[:8]))
    np.testing.assert_array_equal(np.asarray(device_labels), labels[:8])


# --- the parser -------------------------------------------------------------------------

def idx(magic: int, dims: tuple, payload: bytes) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims) + payload


def test_parse_idx_small_files():
    images = data.parse_idx(idx(0x803, (2, 1, 3), bytes(range(6))))
    np.testing.assert_array_equal(images, np.arange(6, dtype=np.uint8).reshape(2, 1, 3))
    np.testing.assert_array_equal(data.parse_idx(idx(0x801, (3,), b"\x07\x08\x09")), [7, 8, 9])


@pytest.mark.parametrize("raw, needle", [
    (idx(0x804, (2,), b"\x00\x00"), "bad IDX magic number 0x00000804"),
    (idx(0xD01, (2,), b"\x00\x00"), "bad IDX magic number"),  # 0x0D: float data, not uint8
    (idx(0x801, (3,), b"\x00\x00"), "payload has 2 bytes"),
    (idx(0x801, (3,), b"\x00" * 4), "payload has 4 bytes"),
    (idx(0x803, (), b"")[:6], "header cut short"),
    (b"\x00\x00", "too short"),
])
def test_parse_idx_rejects(raw, needle):
    with pytest.raises(DataError) as err:
        data.parse_idx(raw)
    assert_one_line(err, needle)


# --- bad files the user placed ----------------------------------------------------------

@pytest.mark.parametrize("damage, needles", [
    ("magic", ["bad IDX magic number 0xff000801"]),
    ("truncated", ["truncated or corrupt gzip"]),
    ("checksum", ["expected " + data.SHA256["mnist"][LABELS], "got "]),
])
def test_bad_placed_file_is_reported_and_kept(data_dir, tmp_path, damage, needles):
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)
    raw = raw_bytes(data_dir, "mnist", LABELS)
    bad = root / "mnist" / f"{LABELS}.gz"
    if damage == "magic":
        bad.write_bytes(gzip.compress(b"\xff" + raw[1:]))
    elif damage == "truncated":
        whole = (data_dir / "mnist" / f"{LABELS}.gz").read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
    else:
        bad.write_bytes(gzip.compress(with_one_label_changed(raw)))
    before = bad.read_bytes()
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "test", data_dir=root)  # download allowed: must not replace it
    assert_one_line(err, str(bad), "remove or replace this file", *needles)
    assert bad.read_bytes() == before
    [(_, _, ok, message)] = [r for r in data.verify_dataset("mnist", root) if r[0] == LABELS]
    assert not ok and str(bad) in message


def test_uncompressed_file_is_accepted(real, data_dir, tmp_path):
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)
    (root / "mnist" / LABELS).write_bytes(raw_bytes(data_dir, "mnist", LABELS))
    images, labels = data.load_split("mnist", "test", data_dir=root, download=False)
    np.testing.assert_array_equal(labels, real["mnist", "test"][1])
    assert data.locate("mnist", root)[LABELS] == root / "mnist" / LABELS


def test_verified_file_is_hashed_once_until_it_changes(data_dir, tmp_path, monkeypatch):
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)
    labels_file = root / "mnist" / LABELS
    labels_file.write_bytes(raw_bytes(data_dir, "mnist", LABELS))
    data.load_split("mnist", "test", data_dir=root)

    def no_hashing(_):
        raise AssertionError("hashed again")

    monkeypatch.setattr(data.hashlib, "sha256", no_hashing)
    data.load_split("mnist", "test", data_dir=root)  # cached: no hash
    os.utime(labels_file, ns=(0, 0))  # a changed file must be checked again
    with pytest.raises(AssertionError, match="hashed again"):
        data.load_split("mnist", "test", data_dir=root)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(DataError) as err:
        data.load_split("cifar10")
    assert_one_line(err, "'cifar10'", "mnist, fashion-mnist")
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "validation")
    assert_one_line(err, "'validation'", "train, test")
    with pytest.raises(DataError):
        data.locate("cifar10")


# --- where files are looked for ---------------------------------------------------------

def test_candidate_dirs_order(tmp_path, monkeypatch):
    system = data.SYSTEM_ROOT
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "env"))
    assert data.candidate_dirs(tmp_path / "explicit", "fashion-mnist") == [tmp_path / "explicit", system]
    assert data.candidate_dirs(None, "fashion-mnist") == [tmp_path / "env", system]
    assert data.candidate_dirs(None, "mnist") == [tmp_path / "env"]  # Debian ships no MNIST
    monkeypatch.delenv(data.DATA_ENV)
    assert data.candidate_dirs() == [tmp_path / "xdg-cache" / "gan_lab", system]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.candidate_dirs(dataset="mnist") == [tmp_path / "home" / ".cache" / "gan_lab"]


def test_locate_first_dir_holding_the_file_wins(data_dir, tmp_path, monkeypatch):
    env, explicit = tmp_path / "env", tmp_path / "explicit"
    link(data_dir, data.SYSTEM_ROOT, "fashion-mnist", *data.FILES)
    link(data_dir, env, "fashion-mnist", IMAGES)
    link(data_dir, explicit, "fashion-mnist", LABELS)
    monkeypatch.setenv(data.DATA_ENV, str(env))

    found = data.locate("fashion-mnist")
    assert found[IMAGES] == env / "fashion-mnist" / f"{IMAGES}.gz"
    assert found[LABELS] == data.SYSTEM_ROOT / "fashion-mnist" / f"{LABELS}.gz"

    found = data.locate("fashion-mnist", explicit)  # explicit dir: env var ignored
    assert found[IMAGES] == data.SYSTEM_ROOT / "fashion-mnist" / f"{IMAGES}.gz"
    assert found[LABELS] == explicit / "fashion-mnist" / f"{LABELS}.gz"


def test_system_copy_serves_fashion_mnist_but_not_mnist(real, data_dir):
    link(data_dir, data.SYSTEM_ROOT, "fashion-mnist", IMAGES, LABELS)
    link(data_dir, data.SYSTEM_ROOT, "mnist", IMAGES, LABELS)
    images, labels = data.load_split("fashion-mnist", "test")  # download would hit a closed port
    np.testing.assert_array_equal(labels, real["fashion-mnist", "test"][1])
    assert data.locate("mnist") == dict.fromkeys(data.FILES)


# --- download ---------------------------------------------------------------------------

def test_no_network_says_where_to_put_the_file(tmp_path):
    url = os.environ[data.URL_ENV] + f"/mnist/{IMAGES}.gz"
    root = tmp_path / "data"
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "test", data_dir=root)
    assert_one_line(err, f"could not download {IMAGES}.gz", f"download {url} yourself", f"put it at {root / 'mnist' / IMAGES}.gz",
                    "--data-dir", data.DATA_ENV)
    assert left_in(root / "mnist") == []


def test_missing_without_download_says_where_to_put_the_file(tmp_path):
    with pytest.raises(DataError) as err:
        data.load_split("fashion-mnist", "train", data_dir=tmp_path, download=False)
    assert_one_line(err, "not found in", f"put it at {tmp_path / 'fashion-mnist' / data.FILES[0]}.gz")


def test_unwritable_data_dir_is_a_data_error(tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "test", data_dir=blocker)
    assert_one_line(err, f"cannot write {IMAGES}.gz", "--data-dir")


def test_download_lands_verified_files_atomically(real, data_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    link(data_dir, served, "mnist", IMAGES, LABELS)
    root = tmp_path / "data"
    with serving(served) as base:
        monkeypatch.setenv(data.URL_ENV, base)
        images, labels = data.load_split("mnist", "test", data_dir=root)
    np.testing.assert_array_equal(images, real["mnist", "test"][0])
    np.testing.assert_array_equal(labels, real["mnist", "test"][1])
    assert left_in(root / "mnist") == sorted([f"{IMAGES}.gz", f"{LABELS}.gz"])

    monkeypatch.setenv(data.URL_ENV, closed_port_url())  # now served from disk
    data._verified.clear()  # and hashed again from the landed files
    images, _ = data.load_split("mnist", "test", data_dir=root, download=False)
    np.testing.assert_array_equal(images, real["mnist", "test"][0])


@pytest.mark.parametrize("damage, needle", [
    ("checksum", "expected " + data.SHA256["mnist"][LABELS]),
    ("truncated", "truncated or corrupt gzip"),
    ("absent", "HTTP Error 404"),
])
def test_bad_download_leaves_nothing_behind(data_dir, tmp_path, monkeypatch, damage, needle):
    served = tmp_path / "served"
    link(data_dir, served, "mnist", IMAGES)
    gz = gzip.compress(with_one_label_changed(raw_bytes(data_dir, "mnist", LABELS)))
    if damage != "absent":
        (served / "mnist" / f"{LABELS}.gz").write_bytes(gz if damage == "checksum" else gz[:-20])
    root = tmp_path / "data"
    with serving(served) as base:
        monkeypatch.setenv(data.URL_ENV, base)
        with pytest.raises(DataError) as err:
            data.load_split("mnist", "test", data_dir=root)
    assert_one_line(err, f"{base}/mnist/{LABELS}.gz", needle, str(root / "mnist" / LABELS))
    # The good images file stays; nothing of the bad labels file, not even a temp file.
    assert left_in(root / "mnist") == [f"{IMAGES}.gz"]


# --- sources, size caps, locking, durability --------------------------------------------

def test_every_built_in_source_is_https(monkeypatch):
    monkeypatch.delenv(data.URL_ENV)
    for dataset in data.DATASETS:
        assert len(data.SOURCES[dataset]) >= 1
        for file in data.FILES:
            urls = data.download_urls(dataset, file)
            assert urls == [f"{source}/{file}.gz" for source in data.SOURCES[dataset]]
            assert all(url.startswith("https://") for url in urls)
            assert data.download_url(dataset, file) == urls[0]
    monkeypatch.setenv(data.URL_ENV, "http://127.0.0.1:8000/")  # the override replaces every source
    assert data.download_urls("fashion-mnist", LABELS) == [f"http://127.0.0.1:8000/fashion-mnist/{LABELS}.gz"]


def test_sources_are_tried_in_order_and_the_message_names_each(real, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(data.URL_ENV)
    dead, empty = closed_port_url(), (tmp_path / "empty").as_uri()
    link(data_dir, tmp_path / "mirror", "mnist", IMAGES, LABELS)
    monkeypatch.setitem(data.SOURCES, "mnist", (dead, (tmp_path / "mirror" / "mnist").as_uri()))
    root = tmp_path / "data"
    images, labels = data.load_split("mnist", "test", data_dir=root)
    np.testing.assert_array_equal(labels, real["mnist", "test"][1])

    monkeypatch.setitem(data.SOURCES, "mnist", (dead, empty))
    train_images = data.SPLITS["train"][0]
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "train", data_dir=root)
    assert_one_line(err, f"could not download {train_images}.gz: tried {dead}/{train_images}.gz (",
                    f"; {empty}/{train_images}.gz (", "nothing was saved", f"download {dead}/{train_images}.gz yourself")


def test_sizes_are_those_of_the_real_files(real):
    assert data.SIZES == {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,
                          "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008}
    for (_, split), (images, labels) in real.items():
        images_file, labels_file = data.SPLITS[split]
        assert data.SIZES[images_file] == 16 + images.nbytes
        assert data.SIZES[labels_file] == 8 + labels.nbytes


def labels_bomb(mebibytes: int) -> bytes:
    """A gzip'd t10k labels file with a valid header, decompressing to `mebibytes` MiB (~1 KB per MiB)."""
    first = gzip.compress(idx(0x801, (10000,), bytes((1 << 20) - 8)))
    return first + gzip.compress(bytes(1 << 20)) * (mebibytes - 1)  # gzip members concatenate


@pytest.mark.parametrize("form", ["gzip bomb", "uncompressed, one byte too many"])
def test_oversized_placed_file_fails_without_being_read_whole(data_dir, tmp_path, form):
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)
    if form == "gzip bomb":
        bad = root / "mnist" / f"{LABELS}.gz"
        bad.write_bytes(labels_bomb(64))
        needle = "decompresses to more than the 10,008 bytes of the real file"
    else:
        bad = root / "mnist" / LABELS
        bad.write_bytes(raw_bytes(data_dir, "mnist", LABELS) + b"\x00")
        needle = "10,009 bytes, more than the 10,008 bytes of the real file"
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as err:
            data.load_split("mnist", "test", data_dir=root)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_one_line(err, str(bad), needle, "remove or replace this file")
    # The 7.8 MB images file is in memory twice (bytes, array); the bomb's 64 MiB never are.
    assert peak < 32 * 2**20


def test_gzip_bomb_download_is_refused_and_not_saved(data_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    link(data_dir, served, "mnist", IMAGES)
    (served / "mnist" / f"{LABELS}.gz").write_bytes(labels_bomb(8))  # 8 KB: under the download cap
    monkeypatch.setenv(data.URL_ENV, served.as_uri())
    root = tmp_path / "data"
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "test", data_dir=root)
    assert_one_line(err, f"could not download {LABELS}.gz: tried {served.as_uri()}/mnist/{LABELS}.gz",
                    "unusable: decompresses to more than the 10,008 bytes", "nothing was saved")
    assert left_in(root / "mnist") == [f"{IMAGES}.gz"]


def test_download_bigger_than_any_gzip_of_the_file_is_cut_off(data_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    link(data_dir, served, "mnist", IMAGES)
    (served / "mnist" / f"{LABELS}.gz").write_bytes(bytes(1 << 20))
    monkeypatch.setenv(data.URL_ENV, served.as_uri())
    root = tmp_path / "data"
    with pytest.raises(DataError) as err:
        data.load_split("mnist", "test", data_dir=root)
    # 10,008 + 1% + 4 KiB of gzip overhead.
    assert_one_line(err, f"could not download {LABELS}.gz", "sent more than 14,204 bytes", "nothing was saved")
    assert left_in(root / "mnist") == [f"{IMAGES}.gz"]


def test_download_removes_stale_partials_of_its_file(real, data_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    link(data_dir, served, "mnist", IMAGES, LABELS)
    monkeypatch.setenv(data.URL_ENV, served.as_uri())
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    (root / "mnist" / f".{LABELS}.gz.k1lled.part.gz").write_bytes(b"\x1f\x8b half a download")
    (root / "mnist" / "notes.txt").write_text("not ours")
    _, labels = data.load_split("mnist", "test", data_dir=root)
    np.testing.assert_array_equal(labels, real["mnist", "test"][1])
    assert left_in(root / "mnist") == sorted([f"{IMAGES}.gz", f"{LABELS}.gz", "notes.txt"])
    data._verified.clear()  # the landed file is verified afresh
    _, labels = data.load_split("mnist", "test", data_dir=root, download=False)
    np.testing.assert_array_equal(labels, real["mnist", "test"][1])


@pytest.mark.parametrize("interruption", [ConnectionResetError("connection reset by peer"), KeyboardInterrupt()],
                         ids=["network error", "ctrl-c"])
def test_download_killed_half_way_leaves_no_partial(data_dir, tmp_path, monkeypatch, interruption):
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)
    whole = (data_dir / "mnist" / f"{LABELS}.gz").read_bytes()
    partials = []

    def half_then_interrupted(url, out, limit):
        out.write(whole[: len(whole) // 2])
        out.flush()
        partials.extend(p.name for p in (root / "mnist").glob(".*.part.gz"))
        raise interruption

    monkeypatch.setattr(data, "_fetch", half_then_interrupted)
    expected = DataError if isinstance(interruption, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as err:
        data.load_split("mnist", "test", data_dir=root)
    assert len(partials) == 1 and partials[0].startswith(f".{LABELS}.gz.")  # there while downloading
    assert left_in(root / "mnist") == [f"{IMAGES}.gz"]
    if expected is DataError:
        assert_one_line(err, f"could not download {LABELS}.gz", "connection reset by peer", "nothing was saved")


@pytest.mark.skipif(files.fcntl is None, reason="no fcntl.flock on this platform")
def test_download_waits_for_the_lock_then_uses_the_file_another_process_finished(real, data_dir, tmp_path, monkeypatch):
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)
    real_flock, asked = files.fcntl.flock, threading.Event()

    def flock(fd, operation):
        asked.set()
        real_flock(fd, operation)

    outcome = {}

    def load():
        try:
            outcome["labels"] = data.load_split("mnist", "test", data_dir=root)[1]
        except BaseException as err:  # reported below, from the test's thread
            outcome["error"] = err

    loader = threading.Thread(target=load)
    with open(root / "mnist" / data.LOCK_NAME, "a") as other:  # the other process's lock
        real_flock(other.fileno(), files.fcntl.LOCK_EX)
        monkeypatch.setattr(files.fcntl, "flock", flock)
        loader.start()
        assert asked.wait(timeout=10)
        time.sleep(0.2)  # without the lock the loader would fail by now: its URL is a closed port
        assert loader.is_alive()
        link(data_dir, root, "mnist", LABELS)  # the other process finishes the file
    loader.join(timeout=30)  # closing `other` released the lock
    assert outcome.keys() == {"labels"}, outcome
    np.testing.assert_array_equal(outcome["labels"], real["mnist", "test"][1])


def test_without_flock_downloads_work_and_leave_partials_alone(real, data_dir, tmp_path, monkeypatch):
    """As on Windows: no lock, so a partial may be another process's live download."""
    monkeypatch.setattr(files, "fcntl", None)
    served = tmp_path / "served"
    link(data_dir, served, "mnist", IMAGES, LABELS)
    monkeypatch.setenv(data.URL_ENV, served.as_uri())
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    partial = root / "mnist" / f".{LABELS}.gz.live.part.gz"
    partial.write_bytes(b"\x1f\x8b")
    _, labels = data.load_split("mnist", "test", data_dir=root)
    np.testing.assert_array_equal(labels, real["mnist", "test"][1])
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted([partial.name, f"{IMAGES}.gz", f"{LABELS}.gz"])


def test_download_is_fsynced_before_the_rename_and_the_directory_after(data_dir, tmp_path, monkeypatch):
    served = tmp_path / "served"
    link(data_dir, served, "mnist", LABELS)
    monkeypatch.setenv(data.URL_ENV, served.as_uri())
    root = tmp_path / "data"
    link(data_dir, root, "mnist", IMAGES)  # so exactly one file is downloaded
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(data.os, "fsync", fsync)
    monkeypatch.setattr(data.os, "replace", replace)
    data.load_split("mnist", "test", data_dir=root)
    landed = (root / "mnist" / f"{LABELS}.gz").stat().st_ino
    assert events == [("fsync", landed), ("replace", landed), ("fsync", (root / "mnist").stat().st_ino)]
