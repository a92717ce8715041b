"""Do seeds trained together pay off? 3 seeds of one model in one vmapped step (trainer.fit(...,
seeds=[0, 1, 2])) against the same 3 seeds one after another, through gan_lab's real training step.

    python experiments/bench_seeds.py          # dcgan at width 1 and 0.5; writes
                                               # experiments/results/bench_seeds-<cpu vendor>.md

Each (width, way) runs in a fresh process once the machine is idle, alternating over --rounds; the
time per step of all 3 seeds is the median of --repeats timed blocks after a warm-up. A ratio above
1 means the vmapped step is slower than 3 sequential ones: the study (gan_lab/study.py) then trains
its seeds one job after another, which is what it does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, cpu_vendor, publish, vendor_results, wait_for_idle  # noqa: E402  (beside this script)

SEEDS = [0, 1, 2]


def worker(args) -> None:
    import jax

    from gan_lab import config, data, registry, runtime, trainer

    runtime.configure()
    cfg = config.make_config(args.model, {"batch_size": args.batch_size, "width": args.width, "dataset": "mnist"})
    model = registry.get(cfg.model).build(cfg)
    images, labels = data.to_device(*data.load_split("mnist", "train", args.data_dir))
    steps_per_epoch = images.shape[0] // cfg.batch_size
    mesh = trainer.make_mesh()
    images, labels = trainer.place((images, labels), mesh)
    together = args.worker == "vmapped"
    step = trainer.make_train_step(model, cfg.batch_size, steps_per_epoch, mesh, together)
    permutation_of = trainer.make_epoch_permutation(images.shape[0], steps_per_epoch, mesh, together)
    loops = ([trainer.place(trainer.init_seeds(model, SEEDS), mesh)] if together
             else [trainer.place(trainer.init_loop_state(model, seed), mesh) for seed in SEEDS])
    permutations = [permutation_of(loop) for loop in loops]

    def block() -> float:
        """Seconds for args.steps steps of every seed."""
        started = time.perf_counter()
        for i, loop in enumerate(loops):  # sequential: one seed's steps after the other's
            for _ in range(args.steps):
                loop, metrics = step(loop, images, labels, permutations[i])
            loops[i] = loop
        jax.block_until_ready(loops)
        return time.perf_counter() - started

    block()  # compilation and warm-up
    seconds = statistics.median(block() for _ in range(args.repeats))
    print(json.dumps({"seconds_per_step": seconds / args.steps}))


def measure(way: str, width: float, args) -> tuple[float, bool]:
    idle = wait_for_idle(args.idle_timeout)["idle"]
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", way, "--width", str(width),
               "--steps", str(args.steps), "--repeats", str(args.repeats), "--model", args.model,
               "--batch-size", str(args.batch_size)] + (["--data-dir", args.data_dir] if args.data_dir else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["seconds_per_step"], idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", choices=["vmapped", "sequential"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5])
    parser.add_argument("--width", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="steps per seed in a timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle-timeout", type=float, default=120)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps, nothing written")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.steps, args.repeats, args.rounds, args.widths, args.idle_timeout = 4, 1, 1, [0.25], 0

    times, idle = {}, []
    for _ in range(args.rounds):
        for width in args.widths:
            for way in ("vmapped", "sequential"):
                seconds, was_idle = measure(way, width, args)
                times.setdefault((width, way), []).append(seconds)
                idle.append(was_idle)
    rows = []
    for width in args.widths:
        vmapped, sequential = min(times[(width, "vmapped")]), min(times[(width, "sequential")])
        faster = "vmapped" if vmapped < sequential else "sequential"
        rows.append(f"| {width:g} | {vmapped * 1000:.0f} | {sequential * 1000:.0f} | {vmapped / sequential:.2f} | {faster} |")
    text = (f"# {len(SEEDS)} {args.model} seeds: one vmapped step vs one after another\n\n"
            f"Command: `python experiments/bench_seeds.py`. CPU: {cpu_model()} ({cpu_vendor()}); idle before each "
            f"measurement: {sum(idle)}/{len(idle)}. Batch {args.batch_size}, MNIST; ms for one step of all "
            f"{len(SEEDS)} seeds, best of {args.rounds} alternating rounds (each the median of {args.repeats} blocks "
            f"of {args.steps} steps).\n\n| width | vmapped ms | sequential ms | vmapped / sequential | faster |\n"
            f"|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    publish(text, None if args.quick else vendor_results("bench_seeds"))


if __name__ == "__main__":
    main()
