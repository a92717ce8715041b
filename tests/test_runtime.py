"""gan_lab/runtime.py: the XLA flags reach XLA, a user's own flags win, and the allocator setting
really stops the per-step page faults it exists for (checked on a full-width DCGAN step in fresh
processes, since it must be applied before JAX starts)."""

import os
import platform
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gan_lab import runtime
from tests.helpers import assert_one_line_error, run_cli

FAULTS_PER_STEP = textwrap.dedent("""
    from gan_lab import runtime
    runtime.configure()  # as the gan_lab command does, before JAX starts
    import resource, jax
    from gan_lab import config, registry, trainer
    from tests.helpers import real_subset
    cfg = config.make_config("dcgan", {{"batch_size": 64}})  # full width: XLA's scratch is ~90 MB per step
    model = registry.get("dcgan").build(cfg)
    images, labels = real_subset({data_dir!r}, "mnist", 64 * 4)
    mesh = trainer.make_mesh()
    loop = trainer.place(trainer.init_loop_state(model, 0), mesh)
    permutation = trainer.make_epoch_permutation(images.shape[0], 4, mesh)(loop)
    step = trainer.make_train_step(model, 64, 4, mesh)
    for _ in range(4):  # the heap settles at its size over the first few steps
        loop, metrics = step(loop, images, labels, permutation)
    jax.block_until_ready(loop)
    faults = []
    for _ in range(5):  # one step at a time, so a late growth of the heap (or two) is an outlier of the median
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        loop, metrics = step(loop, images, labels, permutation)
        jax.block_until_ready(loop)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print("FAULTS", sorted(faults)[len(faults) // 2], runtime.APPLIED["malloc_kept"], faults)
""")


def faults_per_step(data_dir, tuning: str) -> tuple[float, bool, str]:
    """(median page faults of one step, whether the allocator setting was applied, every step's count)."""
    env = {**os.environ, "GAN_LAB_CPU_TUNING": tuning}
    result = subprocess.run([sys.executable, "-c", FAULTS_PER_STEP.format(data_dir=str(data_dir))],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _, faults, kept, every_step = next(line for line in result.stdout.splitlines()
                                       if line.startswith("FAULTS")).split(maxsplit=3)
    return float(faults), kept == "True", every_step


def transparent_huge_pages_always() -> bool:
    try:
        return "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
@pytest.mark.skipif(bool(os.environ.get("LD_PRELOAD")), reason="another allocator is preloaded")
@pytest.mark.skipif(transparent_huge_pages_always(), reason="with THP always, a large mmap faults in 2 MB pages")
def test_kept_memory_stops_the_page_faults_of_every_step(data_dir):
    plain, kept_plain, plain_steps = faults_per_step(data_dir, "xla")
    tuned, kept_tuned, tuned_steps = faults_per_step(data_dir, "1")
    assert (kept_plain, kept_tuned) == (False, True)
    # Without it every step faults its scratch memory in again (~25,000-31,000 4 KiB pages per step,
    # experiments/results/profile-untuned.md); with it, the typical step reuses the freed block. The
    # median, not the mean: on some machines the heap still grows once in a while (CI once saw a mean
    # of 6,191 faults over 4 steps, i.e. one growth), which is not the every-step cost this removes.
    assert plain > 10_000 and tuned < 0.05 * plain, (plain_steps, tuned_steps)


def test_flags_are_added_once_and_the_users_own_win():
    flags = runtime.with_xla_cpu_flags("--xla_force_host_platform_device_count=2")
    assert flags.startswith("--xla_force_host_platform_device_count=2 ")
    assert all(name in flags for name in runtime.XLA_CPU_FLAGS)
    assert runtime.with_xla_cpu_flags(flags) == flags
    mine = runtime.with_xla_cpu_flags("--xla_cpu_copy_insertion_use_region_analysis=false")
    assert "--xla_cpu_copy_insertion_use_region_analysis=true" not in mine
    # A list-valued option keeps the user's entries and gains gan_lab's.
    merged = runtime.with_xla_cpu_flags("--xla_backend_extra_options=mine")
    assert "--xla_backend_extra_options=mine,xla_cpu_use_multi_output_fusion" in merged.split()


ADAM_FUSIONS = textwrap.dedent("""
    from gan_lab import runtime
    runtime.configure()
    import re, jax, jax.numpy as jnp, optax
    tx = optax.adam(1e-3)
    p = jnp.ones((512, 512))
    def update(p, g, s):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s
    hlo = jax.jit(update).lower(p, p, tx.init(p)).compile().as_text()
    print("MULTI_OUTPUT_FUSIONS", len(re.findall(r"= \\(f32\\[512,512\\][^)]*\\) fusion\\(", hlo)))
""")


def multi_output_fusions(tuning: str) -> int:
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}  # not the parent's flags
    ran = subprocess.run([sys.executable, "-c", ADAM_FUSIONS], capture_output=True, text=True, timeout=120,
                         env={**env, "GAN_LAB_CPU_TUNING": tuning})
    assert ran.returncode == 0, ran.stderr[-2000:]
    return int(next(line for line in ran.stdout.splitlines() if line.startswith("MULTI_OUTPUT_")).split()[1])


def test_the_flags_reach_xla():
    # Adam's update compiles to a loop fusion with several outputs only when gan_lab's flag got to XLA.
    assert multi_output_fusions("0") == 0
    assert multi_output_fusions("1") >= 1


def test_a_bad_setting_is_one_line_for_the_cli_and_harmless_for_programs_that_opt_in():
    assert_one_line_error(run_cli("list", env={"GAN_LAB_CPU_TUNING": "fast"}),
                          "GAN_LAB_CPU_TUNING='fast' is not one of 1, xla, 0")
    opted_in = subprocess.run([sys.executable, "-c", "from gan_lab import runtime; print(runtime.configure())"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "GAN_LAB_CPU_TUNING": "fast"})
    assert opted_in.returncode == 0 and opted_in.stderr == "" and "'error'" in opted_in.stdout


IMPORT_EVERYTHING = textwrap.dedent("""
    import ctypes, logging, os, sys
    import matplotlib
    from absl import logging as absl_logging
    before = (dict(os.environ), matplotlib.get_backend(), absl_logging.get_verbosity(), logging.getLogger().level)
    import gan_lab, gan_lab.cli, gan_lab.checkpoint, gan_lab.plotting, gan_lab.runs, gan_lab.sheets, gan_lab.evaluation
    from gan_lab import registry, runtime
    registry.names()  # imports every model module
    after = (dict(os.environ), matplotlib.get_backend(), absl_logging.get_verbosity(), logging.getLogger().level)
    print("UNCHANGED", before == after, runtime.APPLIED == {})
""")


def test_importing_gan_lab_changes_nothing_in_the_process():
    """Environment (XLA_FLAGS), plotting backend, log levels and gan_lab's own settings: all as they
    were; a program opts in with runtime.configure(), as the CLI does."""
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    ran = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, timeout=120,
                         env={**env, "GAN_LAB_CPU_TUNING": "1"})
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "UNCHANGED True True" in ran.stdout, ran.stdout


def test_the_compile_cache_is_one_directory_per_cpu_and_its_instruction_set_or_off(monkeypatch, tmp_path):
    cpu = {"model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17",
           "flags": "fpu sse2 avx2 avx512f"}
    monkeypatch.setattr(runtime, "cpu_field", lambda name: cpu.get(name, ""))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(runtime.COMPILE_CACHE_ENV, raising=False)
    default = runtime.compile_cache_dir()
    assert default.parent == tmp_path / "xdg" / "gan_lab" / "xla" and default.name.startswith("amd-epyc-")
    cpu["flags"] = "fpu sse2 avx2"  # the same model name without AVX-512: another directory
    assert runtime.compile_cache_dir().name.startswith("amd-epyc-") and runtime.compile_cache_dir() != default
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(runtime.COMPILE_CACHE_ENV, "mine")  # relative: made absolute for child processes
    assert runtime.compile_cache_dir() == tmp_path / "mine" / runtime.machine_key()
    for off in ("0", "off", "False"):
        monkeypatch.setenv(runtime.COMPILE_CACHE_ENV, off)
        assert runtime.compile_cache_dir() is None


def test_a_cache_directory_that_cannot_be_made_is_no_cache_and_no_warning(tmp_path):
    (tmp_path / "a-file").write_text("")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JAX_COMPILATION", "JAX_PERSISTENT"))}
    ran = subprocess.run([sys.executable, "-c", COMPILE_TWICE, "on"], capture_output=True, text=True, timeout=120,
                         env={**env, runtime.COMPILE_CACHE_ENV: str(tmp_path / "a-file")})
    assert ran.returncode == 0 and "APPLIED None HITS 0" in ran.stdout, ran.stderr[-2000:]
    assert "compilation cache" not in ran.stderr, ran.stderr[-2000:]


COMPILE_TWICE = textwrap.dedent("""
    import sys
    from gan_lab import runtime
    applied = runtime.configure(compile_cache=sys.argv[1] == "on")
    import jax, jax.numpy as jnp
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(lambda event, **_: hits.append(event) if event.endswith("cache_hits") else None)
    jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64))).block_until_ready()
    print("APPLIED", applied["compile_cache"], "HITS", len(hits))
""")


def compile_in_a_fresh_process(env: dict, cache: str = "on") -> tuple[str, int]:
    ran = subprocess.run([sys.executable, "-c", COMPILE_TWICE, cache], capture_output=True, text=True, timeout=120,
                         env=env)
    assert ran.returncode == 0, ran.stderr[-2000:]
    line = next(line for line in ran.stdout.splitlines() if line.startswith("APPLIED")).split()
    return line[1], int(line[3])


def test_a_second_process_loads_what_the_first_compiled_and_a_users_cache_setting_wins(tmp_path):
    # Not the suite's cache settings: configure()'s own, which keep even a tiny program like this one.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JAX_COMPILATION", "JAX_PERSISTENT"))}
    env[runtime.COMPILE_CACHE_ENV] = str(tmp_path / "xla")
    first_dir, first_hits = compile_in_a_fresh_process(env)
    assert Path(first_dir).parent == tmp_path / "xla" and any(Path(first_dir).iterdir()) and first_hits == 0
    again_dir, again_hits = compile_in_a_fresh_process(env)
    assert again_dir == first_dir and again_hits >= 1
    # A user's own JAX cache settings are theirs, all of them (here: keep every program, as configure() would).
    theirs = tmp_path / "theirs"
    users = {**env, "JAX_COMPILATION_CACHE_DIR": str(theirs), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    assert compile_in_a_fresh_process(users) == (str(theirs), 0)
    kept = sorted(theirs.rglob("*"))
    assert kept
    # A program that times compilation turns every cache off, the user's too: nothing loaded, nothing kept.
    assert compile_in_a_fresh_process(env, cache="off") == ("None", 0)
    assert compile_in_a_fresh_process(users, cache="off") == ("None", 0)
    assert sorted(theirs.rglob("*")) == kept


JAX_FIRST = textwrap.dedent("""
    import sys
    import jax
    if sys.argv[1] != "-":
        jax.config.update("jax_compilation_cache_dir", sys.argv[1])  # the notebook's own choice, before opting in
    from gan_lab import runtime
    print("APPLIED", runtime.configure()["compile_cache"], jax.config.jax_compilation_cache_dir)
""")


def test_a_program_that_imported_jax_first_keeps_its_own_cache_or_gets_gan_labs(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JAX_COMPILATION", "JAX_PERSISTENT"))}
    env[runtime.COMPILE_CACHE_ENV] = str(tmp_path / "xla")
    for own in (str(tmp_path / "theirs"), "-"):
        ran = subprocess.run([sys.executable, "-c", JAX_FIRST, own], capture_output=True, text=True, timeout=120, env=env)
        assert ran.returncode == 0, ran.stderr[-2000:]
        applied, in_jax = next(line for line in ran.stdout.splitlines() if line.startswith("APPLIED")).split()[1:]
        assert applied == in_jax and (applied == own if own != "-" else Path(applied).parent == tmp_path / "xla")
