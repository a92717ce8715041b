"""A bounded local load test of `gan_lab serve`: the real command on loopback, 64-image grid requests
(decode + PNG) with a fresh seed, class and slider position each, first from one client (the latency a
user sees), then from several at once. Reports p50/p99 latency, throughput and errors.

    python experiments/serve_load.py                     # 1 client x 100, then 8 clients x 400 requests
    python experiments/serve_load.py --run-dir runs/cgan-mnist-...   # a run of yours

Without --run-dir it serves a full-width cgan (the quick start's model) written by `gan_lab train cgan
--steps 1`: a decode costs the same whatever the weights, so latency needs no trained model. Waits for
an idle machine first; results go to experiments/results/serve_load-<cpu vendor>.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import cpu_model, cpu_vendor, publish, vendor_results, wait_for_idle  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "out" / "serve_load"
WARMUP = 10  # requests before timing: the first compiles the run's decoder


def grid_path(run_id: str, rng: random.Random, conditional: bool) -> str:
    shift = ",".join(f"{rng.uniform(-2, 2):.2f}" for _ in range(3))
    label = f"&class={rng.randrange(10)}" if conditional else ""
    return f"/api/runs/{run_id}/grid.png?seed={rng.randrange(2**31)}&n=64&shift={shift}{label}"


def timed_requests(port: int, paths: list[str]) -> list[tuple[float, int]]:
    """(seconds, status) of each request, over one kept-alive connection (as a browser tab does)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    results = []
    for path in paths:
        started = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            status = response.status if body[:4] == b"\x89PNG" or response.status != 200 else 599
        except OSError:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            status = 0
        results.append((time.perf_counter() - started, status))
    connection.close()
    return results


def load(port: int, run_id: str, conditional: bool, clients: int, requests: int, seed: int) -> dict:
    rng = random.Random(seed)
    paths = [grid_path(run_id, rng, conditional) for _ in range(requests)]
    shares = [paths[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        outcomes = [item for part in pool.map(lambda share: timed_requests(port, share), shares) for item in part]
    wall = time.perf_counter() - started
    latencies = sorted(seconds * 1000 for seconds, status in outcomes if status == 200)
    errors = sum(status != 200 for _, status in outcomes)
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")  # noqa: E731
    return {"clients": clients, "requests": requests, "errors": errors, "p50_ms": statistics.median(latencies),
            "p99_ms": quantile(0.99), "max_ms": latencies[-1], "per_s": requests / wall}


def ensure_run(args) -> Path:
    if args.run_dir:
        return Path(args.run_dir)
    run_dir = OUT / "runs" / "cgan-mnist-width1"
    if not (run_dir / "checkpoints").exists():
        subprocess.run([sys.executable, "-m", "gan_lab", "train", "cgan", "--dataset", "mnist", "--steps", "1",
                        "--out", str(run_dir), "--no-progress"] + (["--data-dir", args.data_dir] if args.data_dir else []),
                       check=True)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default=None, help="a run directory to serve (default: a full-width cgan)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="requests of the concurrent phase")
    parser.add_argument("--single", type=int, default=100, help="requests of the one-client phase")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--idle-timeout", type=float, default=300, help="seconds to wait for an idle machine")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, no idle wait, nothing written")
    args = parser.parse_args()
    if args.quick:
        args.single, args.requests, args.idle_timeout = 12, 24, 0

    run_dir = ensure_run(args)
    server = subprocess.Popen([sys.executable, "-m", "gan_lab", "serve", str(run_dir.parent), "--port", str(args.port)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        print(server.stdout.readline().strip())
        time.sleep(2)  # uvicorn starts listening right after the banner
        listing = json.loads(timed_json(args.port, "/api/runs"))
        run = next(r for r in listing["runs"] if r["id"] == run_dir.name)
        timed_requests(args.port, [grid_path(run["id"], random.Random(99), run["conditional"]) for _ in range(WARMUP)])
        idle = wait_for_idle(args.idle_timeout)  # the server is up and warm; nothing else should run now
        single = load(args.port, run["id"], run["conditional"], 1, args.single, seed=1)
        concurrent = load(args.port, run["id"], run["conditional"], args.clients, args.requests, seed=2)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)

    rows = "\n".join(f"| {r['clients']} | {r['requests']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{r['per_s']:.1f} | {r['errors']} |" for r in (single, concurrent))
    text = (f"# `gan_lab serve` under load: 64-image grids (decode + PNG) on loopback\n\n"
            f"Command: `python experiments/serve_load.py`. CPU: {cpu_model()} ({cpu_vendor()}), "
            f"machine idle before timing: {idle['idle']} (busy {idle['busy_before']:.2f} cores). "
            f"Run: {run['model']} on {run['dataset']}, width {json.loads((run_dir / 'config.json').read_text())['config']['settings'].get('width', 1)}. "
            f"Each request a new seed, class and slider position; {WARMUP} warm-up requests first.\n\n"
            f"| clients | requests | p50 ms | p99 ms | max ms | requests/s | errors |\n|---|---|---|---|---|---|---|\n{rows}\n")
    publish(text, None if args.quick else vendor_results("serve_load"))


def timed_json(port: int, path: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path)
    return connection.getresponse().read().decode()


if __name__ == "__main__":
    main()
