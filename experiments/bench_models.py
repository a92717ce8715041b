"""Every registered model's training step with gan_lab's layers vs the same model on plain Flax layers.

    python experiments/bench_models.py             # ~8 min; writes experiments/results/bench_models.md
    python experiments/bench_models.py --quick     # smoke run, writes nothing unless --out

Issue 4 asks that the speed-up reach every model, not only DCGAN. The speed-up is in the shared layers
(gan_lab/nets.py: 4x4 stride-2 convolutions and transposed convolutions as one matmul each) and in the
process settings (gan_lab/runtime.py), so every model built from nets gets it. Here each model is
built twice in one process: once as shipped, once with nets.conv_down / nets.conv_up swapped for
nnx.Conv / nnx.ConvTranspose (same parameters and outputs, tests/test_layers.py), and the two compiled
steps are timed in alternation (round-robin repeats), so a noisy machine slows both alike. Both run
under gan_lab's process settings; experiments/bench.py measures those separately
(`GAN_LAB_CPU_TUNING=0` rows). vae-mlp has no convolutions: it shows the two builds are then the same.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax

from gan_lab import config, data, nets, registry, runtime, trainer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bench_models.md"
sys.path.insert(0, str(HERE))
from bench import busy_cores, compile_training_step, cpu_model, publish, wait_for_idle  # noqa: E402  (same idle wait as bench.py)


@contextlib.contextmanager
def plain_flax_layers():
    shipped = nets.conv_down, nets.conv_up
    nets.conv_down, nets.conv_up = nets.plain_conv_down, nets.plain_conv_up
    try:
        yield
    finally:
        nets.conv_down, nets.conv_up = shipped


def run(entry, images, labels, steps: int) -> float:
    """steps/s over `steps` consecutive steps."""
    started = time.perf_counter()
    for _ in range(steps):
        entry["loop"], metrics = entry["step"](entry["loop"], images, labels, entry["permutation"])
    jax.block_until_ready((entry["loop"], metrics))
    return steps / (time.perf_counter() - started)


def measure_model(name: str, images, labels, args) -> dict:
    batch_size = config.make_config(name, {}).batch_size
    builds = {"gan_lab": compile_training_step(name, batch_size, images, labels)}
    with plain_flax_layers():
        builds["plain Flax"] = compile_training_step(name, batch_size, images, labels)
    # Warm-up, and enough steps per repeat that the slower build takes ~seconds_per_repeat.
    slowest = min(run(entry, images, labels, 2) for entry in builds.values())
    steps = 2 if args.quick else max(2, round(slowest * args.seconds_per_repeat))
    idle = wait_for_idle(args.idle_timeout)
    load_during = []
    rates = {key: [] for key in builds}
    for _ in range(args.repeats):
        for key, entry in builds.items():
            rates[key].append(run(entry, images, labels, steps))
        load_during.append(busy_cores(0.2))
    return {"batch_size": batch_size, "steps": steps, "rates": rates, "idle": idle["idle"],
            "others_cores": max(load_during),
            "compile_s": {key: entry["compile_s"] for key, entry in builds.items()}}


def report(args, results: dict) -> str:
    lines = [
        "# Every model: gan_lab's layers vs plain Flax layers (training steps/s)",
        "",
        f"Produced by `python experiments/bench_models.py{' --quick' if args.quick else ''}` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {platform.node()}, {os.cpu_count()} CPUs, "
        f"{cpu_model()}; jax {jax.__version__}; gan_lab's CPU settings: {' + '.join(runtime.APPLIED['cpu_tuning']) or 'off'}.",
        f"Each model's default batch size and width, MNIST; median of {args.repeats} alternating repeats of "
        f"~{args.seconds_per_repeat} s.",
        "",
        "| model | batch | gan_lab steps/s | plain Flax steps/s | speed-up | compile s (gan_lab / plain) | "
        "idle at start | others' CPU between repeats (cores, max) |",
        "|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for name, r in results.items():
        ours, plain = statistics.median(r["rates"]["gan_lab"]), statistics.median(r["rates"]["plain Flax"])
        lines.append(f"| {name} | {r['batch_size']} | {ours:.2f} | {plain:.2f} | **{ours / plain:.2f}x** | "
                     f"{r['compile_s']['gan_lab']:.1f} / {r['compile_s']['plain Flax']:.1f} | "
                     f"{'yes' if r['idle'] else 'no'} | {r['others_cores']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    runtime.configure(compile_cache=False)  # gan_lab's process settings, before JAX starts; it times compilations
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seconds-per-repeat", type=int, default=2)
    parser.add_argument("--idle-timeout", type=float, default=60)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (2 if args.quick else 5)
    images, labels = data.to_device(*data.load_split("mnist", "train", args.data_dir))
    mesh = trainer.make_mesh()
    images, labels = trainer.place((images, labels), mesh)
    results = {}
    for name in args.models or registry.names():
        results[name] = measure_model(name, images, labels, args)
        r = results[name]
        print(f"{name:8s} " + "  ".join(f"{key} {statistics.median(v):.2f} steps/s" for key, v in r["rates"].items()),
              flush=True)
    publish(report(args, results), args.out or (None if args.quick else RESULTS))


if __name__ == "__main__":
    main()
