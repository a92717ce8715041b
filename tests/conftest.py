"""Shared fixtures. Tests read the real datasets through the project's own data-directory setting:
$GAN_LAB_DATA if set (CI points it at the shared copy), else the user cache that
`python -m gan_lab data` / `train` downloads into."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Before JAX starts: XLA flags as users get them, but not the allocator setting, which slows every
# compilation (gan_lab/runtime.py) and the suite is hundreds of small compilations.
# tests/test_runtime.py checks the allocator setting in subprocesses. Subprocesses inherit this.
os.environ.setdefault("GAN_LAB_CPU_TUNING", "xla")
# The flags themselves, in this process too, not only in the CLI subprocesses that apply them: the
# models' in-process tests must compile what a user's `gan_lab train` compiles (an XLA:CPU crash that
# only the multi-output fusion flag triggers went unseen in ACGAN's registry tests without this).
# Only the flags: runtime.configure() would also record them as a program's choice (runtime.APPLIED).
from gan_lab import runtime  # noqa: E402  (imports no JAX)

if "xla" in runtime.tuning_request()[0]:
    os.environ["XLA_FLAGS"] = runtime.with_xla_cpu_flags(os.environ.get("XLA_FLAGS", ""))
# Many tests (and the CLI subprocesses they start) compile the same tiny programs again: JAX's
# persistent compilation cache compiles each of them once. One directory for the whole run, made by
# the first process (pytest-xdist's workers and the CLI subprocesses inherit it) and removed by it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="gan_lab-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
# The real images' evaluator features (gan_lab/evaluation.py), computed once for the whole run in the
# same way, in a directory of this run's own, so every run starts cold like a fresh machine.
if "GAN_LAB_CACHE" not in os.environ:
    os.environ["GAN_LAB_CACHE"] = tempfile.mkdtemp(prefix="gan_lab-test-features-")
    atexit.register(shutil.rmtree, os.environ["GAN_LAB_CACHE"], ignore_errors=True)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from gan_lab import data  # noqa: E402

# In-process CLI calls (tests/helpers.call_cli) run with Orbax's log level as the CLI's own process sets it
# (runtime.configure: errors only), so their stderr is what a user's terminal shows.
from absl import logging as absl_logging  # noqa: E402

absl_logging.set_verbosity(absl_logging.ERROR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory holding <dataset>/<file>[.gz] for mnist and fashion-mnist."""
    path = Path(os.environ.get(data.DATA_ENV) or data.candidate_dirs()[0])
    if not (path / "mnist").is_dir() or not (path / "fashion-mnist").is_dir():
        pytest.fail(f"no datasets in {path}: run `python -m gan_lab data` to download them (the README's test command does), or set "
                    f"GAN_LAB_DATA to a directory holding mnist/ and fashion-mnist/", pytrace=False)
    return path


# pytest-xdist hands each worker whole test files (`--dist loadfile` in pyproject.toml), so a file's
# module-scoped trained runs are built once, not once per worker. The files that take longest start
# first, so neither worker is left with a long file at the end while the other waits.
LONGEST_FIRST = ("test_distributed", "test_kill", "test_learning", "test_heads", "test_registry", "test_gan_step", "test_checkpoint",
                 "test_study", "test_sampling", "test_precision", "test_devices", "test_cli", "test_metrics",
                 "test_api", "test_docs", "test_browser")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = Path(str(item.fspath)).stem
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order
