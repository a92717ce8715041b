"""Process settings that make XLA:CPU faster, applied when gan_lab is imported (before JAX starts).

Together they take the DCGAN step from 6.64 to 8.26 steps/s at batch 64 and from 2.09 to 2.30 at
batch 256 (experiments/bench.py, the `GAN_LAB_CPU_TUNING=0` rows of experiments/results/bench.md):

* XLA flags: copy insertion with region analysis drops buffer copies around the optimizer updates,
  and multi-output fusion lets one loop fusion write several results (e.g. both Adam moments in
  one pass over memory). Both are XLA:CPU options; other backends ignore them.
* The C allocator: XLA:CPU allocates each step's scratch memory (~90 MB at batch 64, seen with
  strace) from an Eigen worker thread. glibc serves a request that large from a per-thread arena by
  mmap and returns it by munmap when the step ends, so every step page-faulted all of it in again:
  ~31,000 faults and ~54 ms of kernel CPU time per step at batch 64 (experiments/profile_step.py
  reports them; tests/test_runtime.py checks they are gone).
  With one arena, no mmap and no trimming, the freed block is reused by the next step. Memory freed
  this way stays with the process (peak RSS in bench.md).

The allocator setting has a price: XLA's parallel compiler threads then share one arena, which
makes a compilation slower (DCGAN step at batch 64: 2.8 -> 4.1 s, bench.md's first-step column). A
training run compiles once and gains that back in ~50 steps; the test suite, which compiles
hundreds of small steps, does not.
`GAN_LAB_CPU_TUNING=xla` keeps only the XLA flags (the tests' setting), `GAN_LAB_CPU_TUNING=0` turns
both off (e.g. to measure them). Flags the user set win: a flag already in XLA_FLAGS is not added.
"""

from __future__ import annotations

import ctypes
import os
import platform

XLA_CPU_FLAGS = {
    "--xla_cpu_copy_insertion_use_region_analysis": "true",
    "--xla_backend_extra_options": "xla_cpu_use_multi_output_fusion",
}

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
NEVER_TRIM = 2**31 - 1


TUNING_LEVELS = {"1": ("xla", "malloc"), "xla": ("xla",), "0": ()}


def tuning_level() -> tuple[str, ...]:
    """What GAN_LAB_CPU_TUNING asks for: 1 (default) everything, xla the XLA flags only, 0 nothing."""
    value = os.environ.get("GAN_LAB_CPU_TUNING", "1").strip().lower()
    if value not in TUNING_LEVELS:
        # Raised at import, before the CLI's error handling exists: keep it one readable line.
        raise SystemExit(f"GAN_LAB_CPU_TUNING={value!r} is not one of {', '.join(TUNING_LEVELS)}")
    return TUNING_LEVELS[value]


def with_xla_cpu_flags(xla_flags: str) -> str:
    """XLA_FLAGS plus gan_lab's CPU flags, except those the user already set (theirs win)."""
    present = {flag.split("=", 1)[0] for flag in xla_flags.split()}
    added = [f"{name}={value}" for name, value in XLA_CPU_FLAGS.items() if name not in present]
    return " ".join([xla_flags.strip(), *added]).strip()


def keep_freed_memory() -> bool:
    """One malloc arena, no mmap for large blocks, no trimming: big blocks freed at the end of a step
    are reused by the next one instead of going back to the kernel. glibc only; True if applied."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in
               ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM)))


def configure() -> dict:
    """Apply the settings (idempotent); returns what was applied, for run metadata and the benchmark."""
    level = tuning_level()
    applied = {"cpu_tuning": list(level)}  # [] when GAN_LAB_CPU_TUNING=0
    if "xla" in level:
        os.environ["XLA_FLAGS"] = applied["xla_flags"] = with_xla_cpu_flags(os.environ.get("XLA_FLAGS", ""))
    applied["malloc_kept"] = "malloc" in level and keep_freed_memory()
    return applied


APPLIED = configure()
