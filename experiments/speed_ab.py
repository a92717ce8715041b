"""Does a change slow a model's training step? Two git revisions side by side, in one run.

    python experiments/speed_ab.py [--base c314701] [--head HEAD] [--model dcgan] [--batch-size 64]
                                   [--steps 40] [--rounds 4] [--tag NAME]

Each revision is checked out into a temporary git worktree and timed by its own
experiments/bench_train.py (the real jitted training step on MNIST, median steps/s after a warm-up),
in fresh processes that alternate base, head, base, head, ... after waiting for the machine to be
idle, so drift of a shared machine hits both alike. Prints the median and the best steps/s of each
revision and the ratios head/base, and writes experiments/results/speed_ab[-NAME]-<vendor>.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import cpu_model, vendor_results, wait_for_idle  # beside this script
from docs_sync import write_result  # beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def revision_name(revision: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", revision], capture_output=True, text=True,
                          check=True).stdout.strip()


def steps_per_second(worktree: Path, args) -> float:
    env = {**os.environ, "PYTHONPATH": str(worktree)}  # that revision's gan_lab, not the installed one
    result = subprocess.run([sys.executable, str(worktree / "experiments" / "bench_train.py"), "--model", args.model,
                             "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--repeats", "3"],
                            capture_output=True, text=True, env=env, cwd=worktree, timeout=1200)
    if result.returncode != 0:
        raise SystemExit(f"bench_train.py failed in {worktree}: {result.stderr[-2000:]}")
    return float(re.search(r"steps/s: median ([0-9.]+)", result.stdout).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="c314701", help="the revision to compare against")
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tag", default="", help="results in speed_ab-TAG-<vendor>.md (default speed_ab-<vendor>.md), "
                        "so one comparison does not overwrite another")
    args = parser.parse_args()
    names = {"base": revision_name(args.base), "head": revision_name(args.head)}
    rates = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as scratch:
        trees = {}
        for side, revision in names.items():
            trees[side] = Path(scratch) / side
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(trees[side]), revision],
                           check=True, capture_output=True)
        try:
            idle = []
            for round_ in range(args.rounds):
                for side in ("base", "head") if round_ % 2 == 0 else ("head", "base"):
                    idle.append(wait_for_idle(120)["idle"])
                    rates[side].append(steps_per_second(trees[side], args))
                    print(f"round {round_ + 1}: {side} {names[side]} {rates[side][-1]:.2f} steps/s", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
    base, head = statistics.median(rates["base"]), statistics.median(rates["head"])
    # The best run too: on a shared machine another job only ever slows a run down, so the fastest
    # run of each revision is the least disturbed estimate of what it can do.
    best_base, best_head = max(rates["base"]), max(rates["head"])
    lines = [
        f"# {args.model} training step, {names['head']} against {names['base']}", "",
        f"`python experiments/speed_ab.py --base {names['base']} --head {names['head']} --model {args.model} "
        f"--batch-size {args.batch_size} --steps {args.steps} --rounds {args.rounds}"
        f"{f' --tag {args.tag}' if args.tag else ''}` on {cpu_model()}, "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {sum(idle)} of {len(idle)} runs started on an "
        "idle machine.", "",
        "| revision | steps/s, each run (median of 3 x {} steps) | median | best |".format(args.steps),
        "| --- | --- | --- | --- |",
        f"| base {names['base']} | {', '.join(f'{r:.2f}' for r in rates['base'])} | {base:.2f} | {best_base:.2f} |",
        f"| head {names['head']} | {', '.join(f'{r:.2f}' for r in rates['head'])} | {head:.2f} | {best_head:.2f} |", "",
        f"head / base: **{head / base:.3f}** (medians), **{best_head / best_base:.3f}** (best runs)", "",
    ]
    out = vendor_results("-".join(filter(None, ["speed_ab", args.tag])))
    write_result(out, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
