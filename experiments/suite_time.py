"""How long the README's test command takes in a fresh clone: the number the README and issue 28 quote.

    python experiments/suite_time.py [--runs 3] [--rev HEAD]     # ~10 min a run; writes
                                                                # experiments/results/suite_time-<vendor>.md

Each run clones the revision into a new temporary directory, waits for the machine to be idle, and
times `python -m gan_lab data && python -m pytest` there, exactly the README's command (the install
is left out: it is the same for every run and not what the suite's time is about). The clone's own
gan_lab is imported (PYTHONPATH), the datasets come from --data-dir or $GAN_LAB_DATA, and the slowest
tests and any failures are reported; each run's whole output is kept in experiments/out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import cpu_model, vendor_results, wait_for_idle  # noqa: E402  (beside this script)
from docs_sync import write_result  # noqa: E402

REPO = HERE.parent
LOGS = REPO / "experiments" / "out"  # each run's whole output (git ignores experiments/out)
TEST_COMMAND = "python -m gan_lab data && python -m pytest"  # the README's second command
SUMMARY = re.compile(r"=+ (.*?) in ([\d.]+)s")
DURATION = re.compile(r"^([\d.]+)s (call|setup|teardown)\s+(\S+)", re.M)


def time_one(rev: str, data_dir: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="gan_lab-suite-") as scratch:
        clone = Path(scratch) / "gan_lab"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", rev], check=True)
        idle = wait_for_idle(timeout=600)
        env = {**os.environ, "GAN_LAB_DATA": data_dir, "PYTHONPATH": str(clone)}
        started = time.perf_counter()
        result = subprocess.run(["bash", "-c", TEST_COMMAND], cwd=clone, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    output = result.stdout + result.stderr
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"suite_time-{rev}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log.write_text(output)
    summary = SUMMARY.findall(output)
    slowest = DURATION.findall(output)[:5]
    failed = re.findall(r"^FAILED (\S+)", output, re.M)
    return {"wall_s": wall, "exit": result.returncode, "summary": summary[-1][0] if summary else "no summary",
            "idle": idle["idle"], "slowest": slowest, "failed": failed, "log": log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh-clone runs (default 3)")
    parser.add_argument("--rev", default="HEAD", help="git revision to time (default HEAD)")
    parser.add_argument("--data-dir", default=os.environ.get("GAN_LAB_DATA"),
                        help="directory holding mnist/ and fashion-mnist/ (default $GAN_LAB_DATA)")
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set GAN_LAB_DATA (the tests read the real datasets)")
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.rev], check=True,
                         capture_output=True, text=True).stdout.strip()
    runs = []
    for index in range(args.runs):
        runs.append(time_one(rev, args.data_dir))
        print(f"run {index + 1}: {runs[-1]['wall_s'] / 60:.1f} min, {runs[-1]['summary']} ({runs[-1]['log']})",
              flush=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# The test command in a fresh clone of {rev}", "",
             f"`python experiments/suite_time.py --runs {args.runs} --rev {args.rev}` on {when}; {cpu_model()}, "
             f"{os.cpu_count()} cores. Each run: a new clone, an idle wait, then `{TEST_COMMAND}` (install excluded).", "",
             "| run | wall time | pytest's summary | started idle | exit |", "|---:|---:|---|---|---:|"]
    lines += [f"| {i + 1} | {r['wall_s'] / 60:.1f} min ({r['wall_s']:.0f} s) | {r['summary']} | "
              f"{'yes' if r['idle'] else 'no'} | {r['exit']} |" for i, r in enumerate(runs)]
    failures = sorted({test for r in runs for test in r["failed"]})
    lines += ["", "Failed in any run: " + (", ".join(f"`{test}`" for test in failures) if failures else "none")]
    lines += ["", "Slowest tests of the last run (pytest `--durations`):", ""]
    lines += [f"- {seconds} s {phase} `{test}`" for seconds, phase, test in runs[-1]["slowest"]]
    write_result(vendor_results("suite_time"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
