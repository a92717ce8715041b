"""The slowest product of the DCGAN step, D's second convolution's weight gradient, in every form
tried: is there one XLA:CPU runs faster?

    python experiments/weight_gradient_forms.py > experiments/results/weight_gradient_forms.md   # ~1 min

Each form runs alone, one after another in this process, once the machine is idle (it waits for
that, like bench.py). Single products on a shared machine vary by +-20% between runs: compare forms
within one run, and rerun before concluding.

The product is taps^T @ d_out: taps (rows, 16 * 64) is the layer's im2col, d_out (rows, 128) the
gradient of its output, rows = 2 * batch * 7 * 7 (D sees real and fake images in one call). It
contracts over the long row axis, which is what XLA:CPU's kernels do worst
(experiments/results/profile-amd.md: `dot.3`). For comparison, G's first transposed convolution's weight
gradient has the same form with the wide and the narrow operand swapped (`dot.8`).
Forms: XLA's dot_general as autodiff writes it; the operands swapped and the (small) result
transposed; either operand transposed in memory first; the rows split into chunks summed after a
batched product (each chunk's operands fit in cache).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import lax

from gan_lab import runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import best_seconds, cpu_model, wait_for_idle  # noqa: E402

CONTRACT_ROWS = (((0,), (0,)), ((), ()))


def chunked(chunk: int):
    def product(a, b):
        rows = a.shape[0]
        return lax.dot_general(a.reshape(rows // chunk, chunk, -1), b.reshape(rows // chunk, chunk, -1),
                               (((1,), (1,)), ((0,), (0,)))).sum(0)
    return product


FORMS = {
    "as autodiff writes it": lambda a, b: lax.dot_general(a, b, CONTRACT_ROWS),
    "operands swapped": lambda a, b: lax.dot_general(b, a, CONTRACT_ROWS).T,
    "a transposed first": lambda a, b: jnp.dot(a.T, b),
    "b transposed first": lambda a, b: jnp.dot(b.T, a).T,
    "chunks of 1568 rows": chunked(1568),
    "chunks of 3136 rows": chunked(3136),
}

SHAPES = {  # name: (rows, wide operand's columns, narrow operand's columns)
    "D conv2 weight gradient, batch 64 (dot.3)": (6272, 1024, 128),
    "D conv2 weight gradient, batch 256 (dot.3)": (25088, 1024, 128),
    "G deconv1 weight gradient, batch 256 (dot.8)": (12544, 1024, 128),
}


def main() -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    idle = wait_for_idle(60)["idle"]
    print(f"# D's slowest product in other forms\n\n`python experiments/weight_gradient_forms.py` on {cpu_model()}, "
          f"{jax.devices()[0].platform}, jax {jax.__version__}; machine idle at start: {'yes' if idle else 'NO'}. "
          "GFLOP/s, best of 7 (higher is better).\n")
    print("| product | " + " | ".join(FORMS) + " |")
    print("|---|" + "---:|" * len(FORMS))
    for name, (rows, wide, narrow) in SHAPES.items():
        a = jax.random.normal(jax.random.key(0), (rows, wide))
        b = jax.random.normal(jax.random.key(1), (rows, narrow))
        if name.startswith("G"):  # the narrow operand comes first there
            a, b = b, a
        gflop = 2 * rows * wide * narrow / 1e9
        rates = [f"{gflop / best_seconds(form, a, b, repeats=7):.0f}" for form in FORMS.values()]
        print(f"| {name} | " + " | ".join(rates) + " |", flush=True)


if __name__ == "__main__":
    main()
