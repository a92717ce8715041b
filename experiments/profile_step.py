"""Where the DCGAN training step's time goes: a jax.profiler trace, time per kind of op, and every
dense product's speed when it runs alone.

    python experiments/profile_step.py                 # batch 64 and 256, ~3 min; writes
                                                       # experiments/results/profile-<vendor>.md (amd, intel)
    python experiments/profile_step.py --batches 64    # prints only; the trace stays in experiments/out/trace-b64-*/
                                                       # (TensorBoard, Perfetto: `tensorboard --logdir experiments/out`)
    GAN_LAB_CPU_TUNING=0 python experiments/profile_step.py --batches 64 \
        --results experiments/results/profile-untuned.md   # the same without gan_lab/runtime.py's settings

Per op, from the trace: the time XLA:CPU's worker threads spent in each compiled op, grouped as
  dense products (YNNPACK)   dots XLA hands to YNNPACK (ynn_fusion ops);
  dense products (Eigen)     dots run by Eigen: the trace shows their launch, while the work runs on
                             the thread pool concurrently with the next ops, so their cost shows up
                             inside their neighbours' time (mostly the YNNPACK dots);
  optimizer                  ops under jax.named_scope("optimizer") (Adam, models/gan.py);
  gathers                    concatenates, slices, pads and reverses: im2col/col2im of the 4x4 layers;
  other                      BatchNorm, activations, losses, random numbers.
Then each dense product of the compiled step (shapes and contraction read from its HLO) is timed
alone, on random inputs of its shapes: its FLOPs over its best time of 5 is what the hardware
gives that product when nothing else runs. The machine is shared: run it when it is idle
(it waits for that, like bench.py).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import os
import re
import resource
import sys
import time
from pathlib import Path

import jax
import numpy as np

from gan_lab import data, runtime

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from docs_sync import write_result  # noqa: E402
from bench import best_seconds, compile_training_step, cpu_field, cpu_model, vendor_results, wait_for_idle  # noqa: E402

DOT = re.compile(r"%(\S+) = f32\[([\d,]*)\]\S* dot\(%(\S+), %(\S+)\), lhs_contracting_dims=\{([\d,]*)\}, "
                 r"rhs_contracting_dims=\{([\d,]*)\}")
INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\S+) ")


def build(batch: int, data_dir):
    images, labels = data.to_device(*data.load_split("mnist", "train", data_dir))
    built = compile_training_step("dcgan", batch, images, labels)
    return built["step"], built["loop"], (built["images"], built["labels"], built["permutation"])


def op_table(hlo: str) -> dict:
    """HLO instruction name -> (shape text, full line), over every computation."""
    table = {}
    for line in hlo.splitlines():
        match = INSTRUCTION.match(line)
        if match:
            table[match.group(1)] = (match.group(2), line)
    return table


def category(name: str, line: str) -> str:
    if name.startswith("ynn_fusion"):
        return "dense products (YNNPACK)"
    if re.fullmatch(r"dot(\.\d+)?", name):
        return "dense products (Eigen, launch only)"
    if "/optimizer/" in line:
        return "optimizer (Adam)"
    if re.match(r"(concatenate|slice|pad|reverse|wrapped_slice|dynamic)", name) or "_concatenate" in name \
            or "slice_" in name or "pad_" in name:
        return "gathers (im2col, col2im, concatenate)"
    return "other (BatchNorm, activations, losses, ...)"


def kernel_work(compiled, loop, args_, steps: int):
    """(page faults, kernel CPU ms) per step over `steps` untraced steps, after a warm-up: what
    gan_lab/runtime.py's allocator setting is for (compare GAN_LAB_CPU_TUNING=0)."""
    for _ in range(6):  # the heap settles at its size over the first few steps
        loop, metrics = compiled(loop, *args_)
    jax.block_until_ready(loop)
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(steps):
        loop, metrics = compiled(loop, *args_)
    jax.block_until_ready(loop)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return loop, (after.ru_minflt - before.ru_minflt) / steps, (after.ru_stime - before.ru_stime) * 1e3 / steps


def trace_step(compiled, loop, args_, steps: int, trace_dir: Path):
    if trace_dir.exists():
        for f in sorted(trace_dir.rglob("*"), reverse=True):
            f.unlink() if f.is_file() else f.rmdir()
    with jax.profiler.trace(str(trace_dir)):
        started = time.perf_counter()
        for _ in range(steps):
            loop, metrics = compiled(loop, *args_)
        jax.block_until_ready(loop)
        wall = (time.perf_counter() - started) / steps
    profile = jax.profiler.ProfileData.from_file(glob.glob(str(trace_dir / "**" / "*.xplane.pb"), recursive=True)[0])
    per_op = collections.defaultdict(float)
    for plane in profile.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLAEigen"):  # XLA:CPU's worker threads
                continue
            for event in line.events:
                if event.name.startswith(("ThunkExecutor", "Threadpool", "end:", "Slinky", "Thunk")):
                    continue
                per_op[event.name] += event.duration_ns / 1e6 / steps
    return wall * 1e3, per_op


def dots_alone(hlo: str, table: dict) -> list[dict]:
    """Every f32 dot in the step, timed alone: shapes from the HLO, random inputs."""
    results, seen = [], set()
    for line in hlo.splitlines():
        match = DOT.search(line)
        if not match:
            continue
        name, out_shape, lhs, rhs, lhs_c, rhs_c = match.groups()
        lhs_shape, rhs_shape = (tuple(int(d) for d in re.findall(r"\d+", table[x][0].split("[", 1)[1].split("]")[0]))
                                for x in (lhs, rhs))
        key = (lhs_shape, rhs_shape, lhs_c, rhs_c)
        dims = (((int(lhs_c),), (int(rhs_c),)), ((), ()))
        flops = 2 * np.prod(lhs_shape) * rhs_shape[1 - int(rhs_c)] if len(rhs_shape) == 2 else 0
        if key in seen or len(lhs_shape) != 2 or len(rhs_shape) != 2 or flops < 1e8:
            continue
        seen.add(key)
        a = jax.random.normal(jax.random.key(0), lhs_shape)
        b = jax.random.normal(jax.random.key(1), rhs_shape)
        best = best_seconds(lambda a, b, dims=dims: jax.lax.dot_general(a, b, dims), a, b, repeats=5)
        results.append({"op": name, "lhs": lhs_shape, "rhs": rhs_shape, "contract": f"{lhs_c},{rhs_c}",
                        "gflop": flops / 1e9, "ms": best * 1e3})
    return sorted(results, key=lambda r: -r["gflop"])


def profile(batch: int, args) -> str:
    compiled, loop, args_ = build(batch, args.data_dir)
    hlo = compiled.as_text()
    table = op_table(hlo)
    idle = wait_for_idle(args.idle_timeout)
    loop, faults, kernel_ms = kernel_work(compiled, loop, args_, args.steps)
    settings = "+".join(runtime.APPLIED["cpu_tuning"]) or "untuned"
    wall_ms, per_op = trace_step(compiled, loop, args_, args.steps, args.out / f"trace-b{batch}-{settings}")
    by_category = collections.defaultdict(float)
    for name, ms in per_op.items():
        by_category[category(name, table.get(name, ("", ""))[1])] += ms
    dots = dots_alone(hlo, table)
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    dot_gflop, dot_ms = sum(d["gflop"] for d in dots), sum(d["ms"] for d in dots)
    lines = [f"## Batch {batch}", "",
             f"Wall time {wall_ms:.1f} ms per step under the profiler ({args.steps} steps; machine idle at start: "
             f"{'yes' if idle['idle'] else 'no'}); XLA's cost analysis: {float(cost['flops']) / 1e9:.1f} GFLOP per step, "
             f"i.e. {float(cost['flops']) / wall_ms / 1e6:.0f} GFLOP/s over the whole step. Without the profiler: "
             f"{faults:,.0f} page faults and {kernel_ms:.0f} ms of kernel CPU time per step.", "",
             "| kind of op | ms per step (worker threads) |", "|---|---:|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in sorted(by_category.items(), key=lambda kv: -kv[1])]
    lines += ["", "Top ops by time:", "", "| op | shape | kind | ms per step |", "|---|---|---|---:|"]
    for name, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:args.top]:
        shape, line = table.get(name, ("", ""))
        lines.append(f"| {name} | `{shape}` | {category(name, line)} | {ms:.2f} |")
    lines += ["", f"The step's dense products of at least 0.1 GFLOP, each run alone: {dot_gflop:.1f} GFLOP in "
              f"{dot_ms:.1f} ms, {dot_gflop / dot_ms * 1e3:.0f} GFLOP/s.", "",
              "| op | lhs | rhs | contracting dims | GFLOP | ms alone | GFLOP/s alone |", "|---|---|---|---|---:|---:|---:|"]
    for d in dots:
        lines.append(f"| {d['op']} | {d['lhs']} | {d['rhs']} | {d['contract']} | {d['gflop']:.2f} | {d['ms']:.2f} | "
                     f"{d['gflop'] / d['ms'] * 1e3:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    runtime.configure()  # gan_lab's process settings (XLA flags, allocator), before JAX starts
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--idle-timeout", type=float, default=60)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where the traces go")
    parser.add_argument("--results", type=Path, default=None,
                        help="markdown file (default: experiments/results/profile-<vendor>.md for a run of the default batch sizes, "
                             "none otherwise)")
    args = parser.parse_args(argv)
    sections = [profile(batch, args) for batch in args.batches]
    text = "\n".join([
        "# Where the DCGAN step's time goes (gan_lab, XLA:CPU)", "",
        f"Produced by `{'GAN_LAB_CPU_TUNING=0 ' if not runtime.APPLIED['cpu_tuning'] else ''}python {' '.join(sys.argv)}` on {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"{os.cpu_count()} CPUs, {cpu_model()} (family {cpu_field('cpu family') or '?'} model {cpu_field('model') or '?'}); jax {jax.__version__}; gan_lab's CPU settings: "
        f"{' + '.join(runtime.APPLIED['cpu_tuning']) or 'off'}. Traces: `{os.path.relpath(args.out, HERE.parent)}/trace-b*` (TensorBoard or Perfetto).", "",
        *sections])
    default = vendor_results("profile")
    results = args.results or (default if args.batches == [64, 256] else None)
    if results is not None:
        write_result(results, text)
    print(text)


if __name__ == "__main__":
    main()
