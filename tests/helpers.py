"""Small shared pieces for the tests: tiny configs, real-data subsets, running the CLI."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from unittest import mock

import jax
import numpy as np

from gan_lab import config, data

TINY = dict(width=0.125, batch_size=32, log_every=5)
# The images every tiny run trains on: 8 steps an epoch at TINY's batch size. One shape for the whole suite,
# so JAX's persistent cache compiles each model's training step once (experiments/README.md, "The test
# suite's time"); a test that trains at another shape pays that model's compilation again.
TINY_SUBSET = 256
STEPS_PER_EPOCH = TINY_SUBSET // TINY["batch_size"]
# The same shape as command-line flags.
TINY_FLAGS = ("--subset", str(TINY_SUBSET), "--batch-size", str(TINY["batch_size"]), "--width", str(TINY["width"]))


def tiny_config(model: str, **overrides) -> config.Config:
    """Tiny settings where the model has them (vae-mlp has no width to shrink)."""
    return config.make_config(model, {**TINY, **overrides}, strict=False)


def real_subset(data_dir, dataset: str = "mnist", n: int = 512):
    """The first n real training images and labels, on the device."""
    images, labels = data.load_split(dataset, "train", data_dir)
    return data.to_device(images[:n], labels[:n])


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run_cli(*args, env=None, cwd=None, timeout=300):
    """`python -m gan_lab ARGS` in a new process: for what only a whole process shows (exactly one
    line on stderr after a user error, signals, process settings)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "gan_lab", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def call_cli(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    """`gan_lab ARGS` called in this process through cli.main (the function `python -m gan_lab`
    runs), with `env` added to the environment and `cwd` as the working directory for the call.
    For tests that need what a command made: a new process costs each of them seconds of imports
    and JAX start-up, and the suite runs dozens."""
    from gan_lab import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env or {}), contextlib.chdir(cwd or os.getcwd()), \
            contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main([str(arg) for arg in args])
    return subprocess.CompletedProcess(["gan_lab", *args], code, stdout.getvalue(), stderr.getvalue())


def assert_one_line_error(result, *fragments):
    """Exit code 2, exactly one line on stderr, no traceback, and the expected words in it."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
