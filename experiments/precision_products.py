"""Which of the DCGAN step's matrix products run in bfloat16 under `--precision bf16`: what gan_lab asks
for (the lowered StableHLO) against what XLA compiled (the optimised HLO of this backend).

    python experiments/precision_products.py     # ~1 min; writes experiments/results/precision_products-<vendor>.md

Counts, for each precision, the products (dot_general / dot, and any convolution) by the element
types of their two operands. The counts do not depend on the machine's load, only on the backend and
the XLA version, so this runs alongside other work. On the AMD EPYC of 2026-12-03 `--batch 256` gave
the same counts as the default batch 64.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
import sys
from pathlib import Path

from gan_lab import runtime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import compile_training_step, cpu_field, cpu_model, publish, vendor_results  # noqa: E402

# StableHLO: `stablehlo.dot_general %a, %b, ... : (tensor<64x62xbf16>, tensor<62x1024xbf16>) -> tensor<64x1024xf32>`
LOWERED_PRODUCT = re.compile(r"stablehlo\.(dot_general|convolution)\b.*?:\s*\(tensor<(?:[\d?]+x)*(\w+)>, tensor<(?:[\d?]+x)*(\w+)>\)")
# Optimised HLO: `%name = bf16[64,62]{1,0} parameter(0)` defines each operand's element type, and a
# product names its operands: `%dot.3 = f32[64,1024]{1,0} dot(%a, %b), ...` (names are unique in a module).
DEFINITION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+) = (\w+)\[", re.M)
COMPILED_PRODUCT = re.compile(r"= \w+\[[^\]]*\]\S*\s+(dot|convolution)\(%([\w.\-]+), %([\w.\-]+)\)")


def lowered_products(text: str) -> collections.Counter:
    """{(op, 'lhs x rhs' element types): count} of the products gan_lab's program asks for."""
    return collections.Counter((op, f"{a} x {b}") for op, a, b in LOWERED_PRODUCT.findall(text))


def compiled_products(text: str) -> collections.Counter:
    """The same count in XLA's optimised HLO, with each operand's type from its definition, forward and
    backward products apart."""
    types = dict(DEFINITION.findall(text))
    counts = collections.Counter()
    for line in text.splitlines():
        if found := COMPILED_PRODUCT.search(line):
            op, a, b = found.groups()
            # A product of the backward pass carries transpose(jvp(...)) in its op_name.
            counts[(f"{'backward' if 'transpose(' in line else 'forward'} {op}", f"{types[a]} x {types[b]}")] += 1
    return counts


def main() -> None:
    runtime.configure()  # gan_lab's process settings, before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default experiments/results/precision_products-<vendor>.md)")
    args = parser.parse_args()
    import jax

    from gan_lab import data

    images, labels = data.to_device(*data.load_split("mnist", "train", args.data_dir))
    rows = []
    for precision in ("f32", "bf16"):
        built = compile_training_step("dcgan", args.batch, images, labels, precision=precision)
        lowered = lowered_products(built["lowered"].as_text())
        compiled = compiled_products(built["step"].as_text())
        for stage, counts in (("asked for (StableHLO)", lowered), ("compiled (optimised HLO)", compiled)):
            total = sum(counts.values())
            detail = ", ".join(f"{n} {op} {types}" for (op, types), n in sorted(counts.items()))
            rows.append(f"| {precision} | {stage} | {total} | {detail} |")
    text = "\n".join([
        "# `--precision bf16`: which products of the DCGAN step multiply in bfloat16", "",
        f"Produced by `python experiments/precision_products.py` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"{cpu_model()} (family {cpu_field('cpu family') or '?'} model {cpu_field('model') or '?'}); backend "
        f"{jax.default_backend()}, jax {jax.__version__}; DCGAN (MNIST, width 1) training step at batch {args.batch}, "
        "compiled as the training loop compiles it.", "",
        "| precision | program | products | by operand types (lhs x rhs) |", "|---|---|---:|---|",
        *rows, "",
        "A product XLA compiled with float32 operands although gan_lab asked for bfloat16 gets its operands "
        "through a convert: the bf16 rounding stays (the numbers are those of bf16 products), the speed of a "
        "bf16 kernel does not.", ""])
    publish(text, args.out or vendor_results("precision_products"))


if __name__ == "__main__":
    main()
