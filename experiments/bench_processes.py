"""Steps/s of one run split over 2 processes (jax.distributed over loopback, gloo collectives, 1 CPU
device each) against the same run in 1 process with 1 device and with 2 virtual devices. All on this
machine: it measures what the multi-process path costs here, not what a second host would gain.

    python experiments/bench_processes.py     # writes experiments/results/bench_processes-<cpu vendor>.md

Each configuration trains dcgan (full width, batch 64, MNIST) for --steps steps through the CLI, as a
user runs it; the rate is that of the steps after the first log point (compilation excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, cpu_vendor, publish, vendor_results, wait_for_idle  # noqa: E402  (beside this script)



def steady_rate(run_dir: Path) -> float:
    """Steps/s between the first and the last log record (the first includes compilation)."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "steps_per_sec" in r]
    first, last = records[0], records[-1]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])


def train(name: str, processes: int, devices: int, args, out: Path) -> float:
    run_dir = out / name
    command = [sys.executable, "-m", "gan_lab", "train", "dcgan", "--dataset", "mnist", "--steps", str(args.steps),
               "--log-every", str(args.steps // 4), "--devices", str(devices), "--out", str(run_dir), "--no-progress"]
    env = {**os.environ}
    if devices > processes:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    if processes == 1:
        subprocess.run(command, env=env, check=True, capture_output=True)
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env.update(GAN_LAB_DISTRIBUTED="1", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(processes))
        workers = [subprocess.Popen(command, env={**env, "JAX_PROCESS_ID": str(i)}, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE) for i in range(processes)]
        for worker in workers:
            _, err = worker.communicate()
            if worker.returncode:
                raise SystemExit(err.decode()[-2000:])
    return steady_rate(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 steps, nothing written")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.rounds = 20, 1
    setups = {"1 process, 1 device": (1, 1), "1 process, 2 virtual devices": (1, 2),
              "2 processes (loopback), 1 device each": (2, 2)}
    rates = {name: [] for name in setups}
    idle = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, (processes, devices) in setups.items():
                idle.append(wait_for_idle(0 if args.quick else 120)["idle"])
                rates[name].append(train(f"{round_}-{processes}-{devices}", processes, devices, args, Path(tmp)))
    base = max(rates["1 process, 1 device"])
    rows = "\n".join(f"| {name} | {max(r):.2f} | {max(r) / base:.2f}x |" for name, r in rates.items())
    text = (f"# One dcgan run over 2 processes vs 1 (this machine only, loopback)\n\n"
            f"Command: `python experiments/bench_processes.py`. CPU: {cpu_model()} ({cpu_vendor()}), "
            f"{os.cpu_count()} cores; idle before each: {sum(idle)}/{len(idle)}. dcgan, full width, batch 64, "
            f"MNIST, {args.steps} steps, best of {args.rounds} alternating rounds.\n\n"
            f"| setup | steps/s | vs 1 process |\n|---|---|---|\n{rows}\n\n"
            "All setups share the same cores: this is the cost of splitting a step (and of gloo over "
            "loopback), not the speed-up a second machine would bring.\n")
    publish(text, None if args.quick else vendor_results("bench_processes"))


if __name__ == "__main__":
    main()
