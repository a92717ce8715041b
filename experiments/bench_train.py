"""DCGAN training speed through gan_lab's real training step: compile time and steps/s.

    python experiments/bench_train.py [--batch-size 64] [--steps 30] [--repeats 3] [--width 1.0]

Prints the compile time of the jitted step and the median steps/s over repeats after a warm-up.
This machine is shared: the numbers are for orientation; experiments/bench.py compares frameworks
side by side in one run, which is what the README quotes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from gan_lab import config, data, registry, runtime, trainer


def main() -> None:
    runtime.configure(compile_cache=False)  # gan_lab's process settings, before JAX starts; it times a compilation
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    cfg = config.make_config(args.model, {"batch_size": args.batch_size, "width": args.width, "dataset": "mnist"})
    model = registry.get(cfg.model).build(cfg)
    images, labels = data.to_device(*data.load_split("mnist", "train", args.data_dir))
    steps_per_epoch = images.shape[0] // cfg.batch_size
    step = trainer.make_train_step(model, cfg.batch_size, steps_per_epoch)
    permutation = trainer.make_epoch_permutation(images.shape[0], steps_per_epoch)
    mesh = trainer.make_mesh()
    loop = trainer.place(trainer.init_loop_state(model, cfg.seed), mesh)
    images, labels = trainer.place((images, labels), mesh)
    perm = permutation(loop)

    started = time.perf_counter()
    compiled = step.lower(loop, images, labels, perm).compile()
    compile_seconds = time.perf_counter() - started

    loop, metrics = compiled(loop, images, labels, perm)  # warm-up
    jax.block_until_ready(metrics)
    rates = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for _ in range(args.steps):
            loop, metrics = compiled(loop, images, labels, perm)
        jax.block_until_ready((loop, metrics))
        rates.append(args.steps / (time.perf_counter() - started))

    device = jax.devices()[0]
    print(f"model={cfg.model} batch={cfg.batch_size} width={cfg.width} device={device.platform}:{device.device_kind}")
    print(f"compile: {compile_seconds:.1f} s")
    print(f"steps/s: median {statistics.median(rates):.2f} over {args.repeats} repeats of {args.steps} steps "
          f"(min {min(rates):.2f}, max {max(rates):.2f})")


if __name__ == "__main__":
    main()
