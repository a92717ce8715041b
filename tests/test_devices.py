"""Data parallelism: the same code path on one device or several; 2 devices match 1 to float tolerance.

Runs in a subprocess because the CPU only offers 2 devices if XLA_FLAGS says so before JAX starts.
"""

import os
import subprocess
import sys
import textwrap

from tests.helpers import assert_one_line_error, run_cli

STEPS = 6


def train_tiny_dcgan(data_dir, devices: int):
    """(the logged losses, 64 samples) of tiny dcgan on TINY_SUBSET MNIST images, STEPS steps on `devices` devices."""
    import jax
    import numpy as np

    from gan_lab import registry, trainer
    from tests.helpers import TINY_SUBSET, real_subset, tiny_config

    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)
    cfg = tiny_config("dcgan", devices=devices, steps=STEPS, log_every=1)
    model = registry.get("dcgan").build(cfg)
    history = []
    loop = trainer.fit(model, cfg, images, labels, show_progress=False,
                       on_log=lambda step, epoch, values, rate: history.append(list(values.values())))
    if devices > 1:
        leaves = jax.tree.leaves(loop.model)
        assert all(leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == devices for leaf in leaves)
    return np.array(history), np.asarray(model.sample(loop.model, jax.random.key(3), 64))


# In a subprocess, the 2-device run (the CPU offers 2 devices only if XLA_FLAGS says so before JAX starts);
# the 1-device run is this process's, the same program the other tests compile.
SCRIPT = textwrap.dedent("""
    import jax, numpy as np
    from tests.test_devices import train_tiny_dcgan
    assert jax.device_count() == 2, jax.devices()
    losses, samples = train_tiny_dcgan({data_dir!r}, 2)
    np.savez({out!r}, losses=losses, samples=samples)
""")


def test_two_devices_match_one(data_dir, tmp_path):
    import numpy as np

    from gan_lab import runtime

    out = tmp_path / "two_devices.npz"
    # The suite's XLA flags plus the device count, so the subprocess compiles what users compile.
    env = {**os.environ, "XLA_FLAGS": runtime.with_xla_cpu_flags("--xla_force_host_platform_device_count=2"),
           "GAN_LAB_DATA": str(data_dir)}
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(data_dir=str(data_dir), out=str(out))],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    two = np.load(out)
    losses, samples = train_tiny_dcgan(data_dir, 1)
    # Compare what the parameters compute, not the parameters: the biases in front of a BatchNorm get
    # pure rounding-noise gradients (BN cancels them), which Adam scales to lr-sized steps of either
    # sign, so those leaves legitimately differ by ~lr per step while every output agrees.
    loss_gap = float(np.max(np.abs(losses - two["losses"])))
    sample_gap = float(np.max(np.abs(samples - two["samples"])))
    # Losses are ~0.7-2; float32 rounding (sums split across devices in another order) carried through
    # 6 Adam steps: the gap seen here was 1.0e-4 for losses and 1.3e-4 for samples (2026-11-23).
    assert losses.shape == two["losses"].shape == (STEPS, 4) and loss_gap < 5e-4 and sample_gap < 1e-3, \
        (loss_gap, sample_gap)


def test_unavailable_devices_and_uneven_batches_are_one_line_errors(data_dir, tmp_path):
    env = {"GAN_LAB_DATA": str(data_dir)}
    assert_one_line_error(run_cli("train", "dcgan", "--dataset", "mnist", "--devices", "4", env=env, cwd=tmp_path),
                          "--devices 4 is not available: there are 1")
    assert not (tmp_path / "runs").exists()  # refused before any run directory is made
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    assert_one_line_error(run_cli("train", "dcgan", "--dataset", "mnist", "--devices", "2", "--batch-size", "33",
                                  env=env), "does not split evenly")
