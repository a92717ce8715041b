"""gan_lab/runtime.py: the XLA flags reach XLA, a user's own flags win, and the allocator setting
really stops the per-step page faults it exists for (checked on a full-width DCGAN step in fresh
processes, since it must be applied before JAX starts)."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from gan_lab import runtime

FAULTS_PER_STEP = textwrap.dedent("""
    import resource, jax
    from gan_lab import config, registry, runtime, train
    from tests.helpers import real_subset
    cfg = config.make_config("dcgan", {{"batch_size": 64}})  # full width: XLA's scratch is ~90 MB per step
    model = registry.get("dcgan").build(cfg)
    images, labels = real_subset({data_dir!r}, "mnist", 64 * 4)
    mesh = train.make_mesh()
    loop = train.place(train.init_loop_state(model, 0), mesh)
    permutation = train.make_epoch_permutation(images.shape[0], 4, mesh)(loop)
    step = train.make_train_step(model, 64, 4, mesh)
    for _ in range(6):  # the heap settles at its size over the first few steps
        loop, metrics = step(loop, images, labels, permutation)
    jax.block_until_ready(loop)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        loop, metrics = step(loop, images, labels, permutation)
    jax.block_until_ready(loop)
    print("FAULTS", (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4, runtime.APPLIED["malloc_kept"])
""")


def faults_per_step(data_dir, tuning: str) -> tuple[float, bool]:
    env = {**os.environ, "GAN_LAB_CPU_TUNING": tuning}
    result = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP.format(data_dir=str(data_dir))],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _, faults, kept = next(line for line in result.stdout.splitlines() if line.startswith("FAULTS")).split()
    return float(faults), kept == "True"


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_kept_memory_stops_the_page_faults_of_every_step(data_dir):
    plain, kept_plain = faults_per_step(data_dir, "xla")
    tuned, kept_tuned = faults_per_step(data_dir, "1")
    assert (kept_plain, kept_tuned) == (False, True)
    # Without it every step faults its ~90 MB of scratch in again (~22,000 4 KiB pages).
    assert plain > 10_000 and tuned < 0.05 * plain, (plain, tuned)


def test_flags_are_added_once_and_the_users_own_win():
    flags = runtime.with_xla_cpu_flags("--xla_force_host_platform_device_count=2")
    assert flags.startswith("--xla_force_host_platform_device_count=2 ")
    assert all(name in flags for name in runtime.XLA_CPU_FLAGS)
    assert runtime.with_xla_cpu_flags(flags) == flags
    mine = runtime.with_xla_cpu_flags("--xla_cpu_copy_insertion_use_region_analysis=false")
    assert "--xla_cpu_copy_insertion_use_region_analysis=true" not in mine


def test_the_flags_reach_xla_and_a_bad_setting_is_one_line():
    # XLA rejects an unknown flag at start-up, so "it ran" shows these were accepted; the process
    # also reports them as applied.
    check = "import gan_lab, jax; jax.numpy.zeros(1).block_until_ready(); print(gan_lab.runtime.APPLIED)"
    ran = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GAN_LAB_CPU_TUNING": "1"})
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "xla_cpu_use_multi_output_fusion" in ran.stdout
    bad = subprocess.run([sys.executable, "-m", "gan_lab", "list"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "GAN_LAB_CPU_TUNING": "fast"})
    assert bad.returncode != 0 and bad.stderr.strip() == "GAN_LAB_CPU_TUNING='fast' is not one of 1, xla, 0"
