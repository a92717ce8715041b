"""Process settings that make XLA:CPU faster, for programs that opt in where they start (before JAX
starts): the `gan_lab` command does (cli.run), and so does every script in experiments/. Importing
gan_lab changes nothing: a program embedding the library calls `runtime.configure()` itself if it
wants them.

Together they take the DCGAN step from 4.74 to 6.32 steps/s at batch 64 and from 1.48 to 1.76 at
batch 256 on an AMD EPYC (6.92 to 8.72 and 2.20 to 2.50 on an Intel Xeon; experiments/bench.py: the
`GAN_LAB_CPU_TUNING` rows of experiments/results/bench-dcgan-amd.md and bench-dcgan-intel.md):

* XLA flags: copy insertion with region analysis drops buffer copies around the optimizer updates,
  and multi-output fusion lets one loop fusion write several results (e.g. both Adam moments in
  one pass over memory). Both are XLA:CPU options; other backends ignore them.
* The C allocator: XLA:CPU allocates each step's scratch memory (~90 MB at batch 64, seen with
  strace) from an Eigen worker thread. glibc serves a request that large from a per-thread arena by
  mmap and returns it by munmap when the step ends, so every step page-faulted all of it in again:
  ~25,000-31,000 faults and 54-74 ms of kernel CPU time per step at batch 64 (experiments/profile_step.py
  reports them; tests/test_runtime.py checks they are gone).
  With one arena, no mmap and no trimming, the freed block is reused by the next step. Memory freed
  this way stays with the process (peak RSS in those files).

The allocator setting has a price: XLA's parallel compiler threads then share one arena, which
makes a compilation slower (DCGAN step at batch 64: 4.0 s with the flags alone, 4.5 s with both on
the AMD machine, 2.5 and 4.0 s on the Intel one; the first-step column of those files). A training run
compiles once and gains that back in ~100 steps; the test suite, which compiles hundreds of small
steps, does not.
`GAN_LAB_CPU_TUNING=xla` keeps only the XLA flags (the tests' setting), `GAN_LAB_CPU_TUNING=0` turns
both off (e.g. to measure them). Flags the user set win: a flag already in XLA_FLAGS keeps its value.
configure() changes the whole process (XLA_FLAGS in os.environ, inherited by child processes, the
allocator, and absl's log level, through which Orbax reports every save), which is what a training
process wants, and why a library import must not do it.

It also keeps what XLA compiles on disk, JAX's persistent compilation cache, so that the next process
compiling the same program loads it instead: every `gan_lab train`, `--resume`, `eval` and `sample`
compiles its model's programs again, and a study or learning curve starts hundreds of such processes
or legs. A 20-step `gan_lab train dcgan --dataset mnist --width 0.5` starts 2.27x faster from a warm
cache than from a cold one on the AMD EPYC (`python experiments/compile_cache.py`,
experiments/results/compile_cache-amd.md). The executable loaded is the one the same compilation made,
so results are the same bits. The cache is `$GAN_LAB_COMPILE_CACHE` (a directory; `0` turns it off),
else ~/.cache/gan_lab/xla (under $XDG_CACHE_HOME where set), in a subdirectory per machine_key(): code
compiled for one CPU's instructions is never loaded on another that shares the home directory. JAX keeps it
under COMPILE_CACHE_MAX_BYTES, dropping the least recently used programs. A JAX_COMPILATION_CACHE_DIR
the user set wins. Scripts that time compilation (experiments/bench.py) call
configure(compile_cache=False), which turns any cache off.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import sys
from pathlib import Path

XLA_CPU_FLAGS = {
    "--xla_cpu_copy_insertion_use_region_analysis": "true",
    "--xla_backend_extra_options": "xla_cpu_use_multi_output_fusion",
}

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
NEVER_TRIM = 2**31 - 1


TUNING_LEVELS = {"1": ("xla", "malloc"), "xla": ("xla",), "0": ()}
# Options XLA reads as one comma-separated list: gan_lab's entry is added to the user's.
LIST_FLAGS = {"--xla_backend_extra_options"}


def tuning_request() -> tuple[tuple[str, ...], str | None]:
    """(what GAN_LAB_CPU_TUNING asks for, an error message if its value is not valid). 1 (default,
    also when empty) is everything, xla the XLA flags only, 0 nothing. An invalid value applies
    nothing: importing a library must not end the process or print, so the CLI reports it (one line,
    exit 2) and a program importing gan_lab finds it in APPLIED["error"] (saved with every run)."""
    value = os.environ.get("GAN_LAB_CPU_TUNING", "").strip() or "1"
    if value.lower() not in TUNING_LEVELS:
        return (), f"GAN_LAB_CPU_TUNING={value!r} is not one of {', '.join(TUNING_LEVELS)} (1 is the default)"
    return TUNING_LEVELS[value.lower()], None


def with_xla_cpu_flags(xla_flags: str) -> str:
    """XLA_FLAGS plus gan_lab's CPU flags. A flag the user already set keeps the user's value, except
    list-valued options, to which gan_lab's entry is appended if missing."""
    flags = xla_flags.split()
    for name, value in XLA_CPU_FLAGS.items():
        mine = [i for i, flag in enumerate(flags) if flag.split("=", 1)[0] == name]
        if not mine:
            flags.append(f"{name}={value}")
        elif name in LIST_FLAGS:
            i = mine[-1]
            entries = flags[i].split("=", 1)[1].split(",") if "=" in flags[i] else []
            if value not in entries:
                flags[i] = f"{name}={','.join([*filter(None, entries), value])}"
    return " ".join(flags)


def keep_freed_memory() -> bool:
    """One malloc arena, no mmap for large blocks, no trimming: big blocks freed at the end of a step
    are reused by the next one instead of going back to the kernel. glibc's malloc only (not under
    an LD_PRELOADed allocator such as jemalloc or tcmalloc); True if applied."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or os.environ.get("LD_PRELOAD"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in
               ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM)))


def backend_started() -> bool:
    """Whether JAX's backends exist already (then new XLA_FLAGS no longer reach XLA)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # private API: if it moves, assume the usual import order
        return False


COMPILE_CACHE_ENV = "GAN_LAB_COMPILE_CACHE"
COMPILE_CACHE_OFF = ("0", "off", "false", "no")  # its values that turn the cache off
COMPILE_CACHE_MAX_BYTES = 2 * 2**30  # a model's programs take a few MB: room for every model, many times over


def cpu_field(name: str) -> str:
    """A field of /proc/cpuinfo's first processor ('' where there is none, e.g. not Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == name), "")


def cpu_model() -> str:
    return cpu_field("model name") or platform.processor() or "unknown"


def user_cache_dir() -> Path:
    """gan_lab's directory in the user's cache (~/.cache/gan_lab, or under $XDG_CACHE_HOME)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gan_lab"


def machine_key() -> str:
    """This machine's compiled code's directory name: its CPU model, readable, and a hash of what decides
    the instructions XLA may emit (architecture, vendor, family, model, the flags line). JAX's own cache
    key names only the platform ("cpu"), and two machines that report one model name ("AMD EPYC") can
    differ in instruction sets."""
    readable = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")[:40] or "cpu"
    identity = "|".join([platform.machine(), cpu_model(), *(cpu_field(f) for f in ("vendor_id", "cpu family", "model", "flags"))])
    return f"{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


def compile_cache_dir() -> Path | None:
    """Where this machine's compiled programs are kept (None: GAN_LAB_COMPILE_CACHE is 0, off, false or
    no): a directory per machine_key() under $GAN_LAB_COMPILE_CACHE (made absolute, so that child
    processes elsewhere find the same one), else under the user cache."""
    root = os.environ.get(COMPILE_CACHE_ENV, "").strip()
    if root.lower() in COMPILE_CACHE_OFF:
        return None
    return (Path(root).expanduser().absolute() if root else user_cache_dir() / "xla") / machine_key()


def keep_compiled_programs() -> str | None:
    """Point JAX's persistent compilation cache at compile_cache_dir(), through the environment (read
    when JAX is imported); the directory in use, or None (turned off, or not writable: the program runs
    without it). A cache directory the user set (JAX_COMPILATION_CACHE_DIR, or in JAX's config before
    this) wins, with the user's other cache settings."""
    import_time = "jax" not in sys.modules
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    if not import_time:
        import jax

        if jax.config.jax_compilation_cache_dir:
            return jax.config.jax_compilation_cache_dir
    directory = compile_cache_dir()
    if directory is None:
        return None
    try:  # a directory the process cannot write (a read-only home) is no cache, and no warning at each compile
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return None
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(COMPILE_CACHE_MAX_BYTES))
    # JAX keeps only programs that took over a second to compile by default; most of a run's programs
    # (sampling, initialisation, the evaluator's) take less, and together they are much of its start.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if not import_time:  # JAX read its environment already; its cache starts at the first compilation
        jax.config.update("jax_compilation_cache_dir", str(directory))
        jax.config.update("jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
    return str(directory)


def compile_every_program() -> None:
    """JAX's persistent compilation cache off, whoever set it: for programs that time compilation."""
    os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    if "jax" in sys.modules:
        import jax

        jax.config.update("jax_enable_compilation_cache", False)


# What configure() applied, saved with every run; empty until a program opts in.
APPLIED: dict = {}


def configure(compile_cache: bool = True) -> dict:
    """Apply the settings (idempotent); returns what was applied, for run metadata and the benchmark.
    An invalid GAN_LAB_CPU_TUNING applies nothing and is reported in APPLIED["error"] (the CLI prints
    it in one line): a setting must not end a program that only asked for speed. compile_cache=False
    turns JAX's persistent compilation cache off, even one the user set: for programs that time
    compilation."""
    if APPLIED:
        return APPLIED
    level, error = tuning_request()
    applied = {"cpu_tuning": list(level)}  # [] when GAN_LAB_CPU_TUNING=0 (or invalid)
    if error:
        applied["error"] = error
    if "xla" in level:
        os.environ["XLA_FLAGS"] = applied["xla_flags"] = with_xla_cpu_flags(os.environ.get("XLA_FLAGS", ""))
        if backend_started():  # e.g. a notebook that ran JAX before opting in
            applied["xla_flags_effective"] = False
    applied["malloc_kept"] = "malloc" in level and keep_freed_memory()
    if compile_cache:
        applied["compile_cache"] = keep_compiled_programs()
        if applied["compile_cache"] and backend_started():  # e.g. a notebook that compiled before opting in
            applied["compile_cache_effective"] = False
    else:
        compile_every_program()
        applied["compile_cache"] = None
    # Orbax logs every save and restore through absl at WARNING/INFO; the CLI reports what matters itself.
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    APPLIED.update(applied)
    return APPLIED
