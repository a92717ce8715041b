"""How much of a `gan_lab` command's start the persistent compilation cache saves (gan_lab/runtime.py).

    python experiments/compile_cache.py               # writes experiments/results/compile_cache-<vendor>.md
    python experiments/compile_cache.py --rounds 1    # a quicker, noisier look

Each round runs the same short commands twice in fresh processes, exactly as a user types them: once
with an empty cache (a new machine, or a new JAX) and once with the cache the first run filled. The
commands are a 20-step `gan_lab train` (its start is mostly compilation: the training step, the
sampler, initialisation) and a `gan_lab eval` of that run (the sampler and the evaluator). Rounds
alternate cold and warm, so a machine that gets busier slows both alike; the result is the median of
each, and their ratio. It waits for the machine to be idle first and says whether it was.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import publish, vendor_results, wait_for_idle  # noqa: E402  (beside this script)

from gan_lab.runtime import cpu_field, cpu_model  # noqa: E402

ROOT = HERE.parent
COMMAND = "python experiments/compile_cache.py"


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gan_lab", *command], check=True, cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def one_round(scratch: Path, round_number: int, args) -> dict[str, dict[str, float]]:
    """{"cold"|"warm": {"train"|"eval": seconds}}: the commands with a new cache, then again with it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JAX_COMPILATION", "JAX_PERSISTENT"))}
    env["GAN_LAB_COMPILE_CACHE"] = str(scratch / f"cache-{round_number}")
    found = {}
    for state in ("cold", "warm"):
        run_dir = scratch / f"run-{round_number}-{state}"
        train = ["train", args.model, "--dataset", "mnist", "--width", str(args.width), "--steps", "20",
                 "--no-progress", "--out", str(run_dir)]
        found[state] = {"train": timed(train, env), "eval": timed(["eval", str(run_dir), "--n", "1000"], env)}
    return found


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-timeout", type=float, default=300)
    args = parser.parse_args()
    idle = wait_for_idle(args.idle_timeout)
    rounds = []
    with tempfile.TemporaryDirectory() as scratch:
        for number in range(args.rounds):
            rounds.append(one_round(Path(scratch), number, args))
            print(f"round {number + 1}: {rounds[-1]}", flush=True)
        cache_bytes = directory_bytes(Path(scratch) / "cache-0")
    median = {state: {cmd: statistics.median(r[state][cmd] for r in rounds) for cmd in ("train", "eval")}
              for state in ("cold", "warm")}
    machine = "idle before the first round" if idle["idle"] else (
        f"**not idle**: {idle['busy_before']:.2f} cores busy after {idle['waited_s']:.0f} s wait (compare the ratios only)")
    rows = [f"| `gan_lab {cmd}` | {median['cold'][cmd]:.1f} | {median['warm'][cmd]:.1f} | "
            f"**{median['cold'][cmd] / median['warm'][cmd]:.2f}x** |" for cmd in ("train", "eval")]
    text = f"""# A command's start with and without the compilation cache

`{COMMAND}` on {os.cpu_count()} cores of an {cpu_model()} (family {cpu_field('cpu family') or '?'} model \
{cpu_field('model') or '?'}), {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {machine}.
Wall seconds of a fresh process, median of {args.rounds} alternating rounds: `gan_lab train {args.model} --dataset mnist
--width {args.width} --steps 20`, then `gan_lab eval` of that run with `--n 1000`. "cold": both commands' first run,
from an empty cache (the eval, run after the train as a user would, loads the sampler the train compiled and
compiles the evaluator); "warm": the same again, with the cache they filled ({cache_bytes / 2**20:.1f} MB on disk).

| command | cold (s) | warm (s) | cold / warm |
|---|---:|---:|---:|
{chr(10).join(rows)}
"""
    publish(text, vendor_results("compile_cache"))


if __name__ == "__main__":
    main()
