"""Where the test suite's time goes to XLA: every compilation of a whole `python -m pytest`, by function and
by test file, with the persistent cache's hits apart.

    python experiments/suite_compiles.py          # one suite run (~12 min); writes
                                                  # experiments/results/suite_compiles-<vendor>.md

Each process of the run (pytest's workers and every CLI subprocess they start) records JAX's own
compile events (jax.monitoring: the backend compile of each jitted function, and the persistent
cache's hits) through a sitecustomize module on PYTHONPATH, tagged with the test pytest is running.
Nothing is logged to stderr, so the tests that check a command prints exactly one line still pass.
The durations are worker seconds: the two workers compile at the same time, so they add up to about
twice the wall time they take.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import cpu_model, vendor_results, wait_for_idle  # noqa: E402  (beside this script)
from docs_sync import write_result  # noqa: E402

REPO = HERE.parent
LOGS = REPO / "experiments" / "out"  # the run's whole output (git ignores experiments/out)
COMMAND = "python experiments/suite_compiles.py"
# Runs in every Python process of the suite, before its first import of JAX.
RECORDER = textwrap.dedent('''
    import os, threading
    _directory = os.environ["GAN_LAB_COMPILE_RECORDS"]
    _hit = threading.local()

    def _on_event(event, **_):
        if event == "/jax/compilation_cache/cache_hits":
            _hit.value = True

    def _on_duration(event, duration, fun_name="?", **_):
        if event != "/jax/core/compile/backend_compile_duration":
            return
        hit, _hit.value = getattr(_hit, "value", False), False
        test = os.environ.get("PYTEST_CURRENT_TEST", "-").split(" ")[0]
        with open(os.path.join(_directory, f"{os.getpid()}.tsv"), "a") as records:
            records.write(f"{test}\\t{fun_name}\\t{duration:.6f}\\t{int(hit)}\\n")

    def _install():
        from jax import monitoring
        monitoring.register_event_listener(_on_event)
        monitoring.register_event_duration_secs_listener(_on_duration)

    import importlib.abc, importlib.util, sys

    class _AfterJax(importlib.abc.MetaPathFinder):
        """Registers the listeners once JAX has been imported, without importing it early (JAX reads its
        settings from the environment at import, which the suite's conftest sets first)."""
        def find_spec(self, name, path=None, target=None):
            if name != "jax":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec("jax")
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                _install()

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _AfterJax())
''')


def run_suite(records: Path) -> tuple[float, str]:
    site = records / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(RECORDER)
    env = {**os.environ, "GAN_LAB_COMPILE_RECORDS": str(records),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(site), str(REPO), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - started
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / f"suite_compiles-{time.strftime('%Y%m%d-%H%M%S')}.log").write_text(result.stdout + result.stderr)
    lines = result.stdout.strip().splitlines() or ["(no output)"]
    failed = [line.split()[1] for line in lines if line.startswith("FAILED ")]
    return wall, lines[-1] + (f" (failed: {', '.join(failed)})" if failed else "")


def read_records(records: Path) -> list[tuple[str, str, float, bool]]:
    rows = []
    for path in records.glob("*.tsv"):
        for test, function, seconds, hit in csv.reader(path.open(), delimiter="\t"):
            rows.append((test, function, float(seconds), hit == "1"))
    return rows


def page(rows, wall: float, summary: str, idle: bool = True) -> str:
    compiled = [r for r in rows if not r[3]]
    hits = [r for r in rows if r[3]]
    by_function, count = collections.Counter(), collections.Counter()
    by_file = collections.Counter()
    for test, function, seconds, _ in compiled:
        by_function[function] += seconds
        count[function] += 1
        by_file[test.split("::")[0]] += seconds
    lines = [
        "# Where the suite's compile time goes",
        "",
        f"`{COMMAND}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_model()}. "
        f"One run of `python -m pytest` in the checkout, started {'idle' if idle else 'on a busy machine'}: "
        f"{wall:.0f} s wall, {summary}. `-` is compilation outside any test (collection, fixtures' imports).",
        "",
        f"- XLA compilations: **{len(compiled):,}**, {sum(r[2] for r in compiled):.0f} worker seconds; "
        f"persistent-cache hits: {len(hits):,}, {sum(r[2] for r in hits):.0f} s.",
        "",
        "| function | compilations | seconds |",
        "|---|---:|---:|",
        *[f"| `{name}` | {count[name]} | {seconds:.1f} |" for name, seconds in by_function.most_common(15)],
        "",
        "| test file | compile seconds |",
        "|---|---:|",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in by_file.most_common(15)],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    idle = wait_for_idle(timeout=600)["idle"]
    with tempfile.TemporaryDirectory(prefix="gan_lab-compiles-") as scratch:
        records = Path(scratch)
        wall, summary = run_suite(records)
        rows = read_records(records)
    text = page(rows, wall, summary, idle)
    out = vendor_results("suite_compiles")
    write_result(out, text)
    print(text)


if __name__ == "__main__":
    main()
