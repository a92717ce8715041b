"""gan_lab's DCGAN training step vs the same step in PyTorch eager, side by side on this CPU.

    pip install -e .[bench]                  # PyTorch: the reference step only, never gan_lab
    python experiments/bench.py              # ~20 min; writes experiments/results/bench-dcgan-<vendor>.md
    python experiments/bench.py --quick      # smoke run, ~2 min, writes nothing unless --out
    python experiments/bench.py --model wgan-gp
                                             # the heaviest step vs PyTorch with equal work, batch 64,
                                             # ~6 min; writes experiments/results/bench-wgan-gp-<vendor>.md
    python experiments/bench.py --xla-flags "--xla_cpu_enable_fast_math=true"
                                             # adds gan_lab rows with extra XLA flags

Every measurement runs in a fresh subprocess (no shared thread pools, caches or allocator state),
started only once the machine is idle (it waits up to --idle-timeout seconds and says so in the
table when it gave up). Measured per framework and batch size:
  * steps/s: median over repeats of consecutive steps, after a warm-up;
  * time to the first step: trace + compile for gan_lab, the first eager step for PyTorch;
  * FLOPs per step: XLA's cost analysis of the compiled step, and the dense products counted from
    the layer shapes (`step_flops`); achieved GFLOP/s uses the latter for both frameworks;
  * achieved GFLOP/s against a float32 matmul peak measured in the same run;
  * peak resident memory of the subprocess, the parameter count (checked equal), and how busy the
    rest of the machine was while it ran (other processes' CPU use, in cores).
gan_lab is timed through gan_lab.trainer.make_train_step, the loop's own jitted, donated step, on
device-resident MNIST; the reference is experiments/torch_reference.py with torch.set_num_threads(2).
Rows: gan_lab as installed; gan_lab without its CPU settings (GAN_LAB_CPU_TUNING=0, see
gan_lab/runtime.py); gan_lab on 2 XLA host devices (batch sharded over a Mesh, as `--devices 2`);
PyTorch with gan_lab's allocator settings; plain PyTorch, the reference of the targets; and a
mixed-precision pair, gan_lab's `--precision bf16` against PyTorch's CPU autocast to bfloat16.
Expected (issue 4): gan_lab >= 1.5x PyTorch at batch 64 and >= 1.25x at batch 256.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from docs_sync import write_result  # noqa: E402  (beside this script: results files and the docs that include them)

from gan_lab.runtime import cpu_field, cpu_model  # noqa: E402,F401  (the machine's name; other scripts import them from here)
TARGETS = {64: 1.5, 256: 1.25}  # issue 4: required gan_lab / PyTorch steps/s ratio per batch size
TORCH_THREADS = 2
Z_DIM = 62
MODELS = ("dcgan", "wgan-gp")  # dcgan: the headline tables; wgan-gp: the heaviest step (issue 11)
WGAN_GP_N_CRITIC = 5


# --- what one step costs, from the layer shapes ----------------------------------------------------


def layer_macs():
    """Multiply-adds per example of each dense product in G and D (forward), infoGAN MNIST backbone
    at full width (the benchmarked model).

    A 4x4 stride-2 transposed convolution counts only products with real inputs (4 taps per output
    pixel), i.e. what PyTorch's ConvTranspose2d and gan_lab's nets.up_conv compute.
    """
    fc, c7, c14 = 1024, 128, 64
    generator = [Z_DIM * fc, fc * 49 * c7, 49 * 16 * c7 * c14, 196 * 16 * c14 * 1]
    discriminator = [196 * 16 * 1 * c14, 49 * 16 * c14 * c7, 49 * c7 * fc, fc * 1]
    return generator, discriminator


def step_flops(batch: int, generator_forward_once: bool = False) -> float:
    """FLOPs (2 per multiply-add) of the dense products of one training step:

    G: forward twice (D half, G half: the collections' loop; once when its forward is reused, as in
       gan_lab's models/gan.py), then weight gradients and input gradients (none for z).
    D: forward three times (real and fake in the D half, fake in the G half); the D half's backward
       twice with weight gradients and input gradients (none for the data images); the G half's
       backward once with input gradients only (down to G's images).
    BatchNorm, activations, losses and Adam are elementwise and left out.
    """
    generator, discriminator = layer_macs()
    g_fwd, d_fwd = sum(generator), sum(discriminator)
    g_macs = (1 if generator_forward_once else 2) * g_fwd + g_fwd + (g_fwd - generator[0])
    d_macs = 3 * d_fwd + 2 * (d_fwd + d_fwd - discriminator[0]) + d_fwd
    return 2.0 * batch * (g_macs + d_macs)


# --- workers: each runs in its own process and prints one JSON line --------------------------------


def timed_repeats(run_steps, steps: int, repeats: int) -> list[float]:
    """steps/s of `repeats` back-to-back blocks of `steps` steps; run_steps(n) must block until done."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_steps(steps)
        rates.append(steps / (time.perf_counter() - started))
    return rates


def best_seconds(fn, *args, repeats: int) -> float:
    """The best wall time of `repeats` calls of jax.jit(fn)(*args), after one call to compile it."""
    import jax

    fn = jax.jit(fn)
    fn(*args).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return best


def worker_peak_jax(args) -> dict:
    import jax
    import jax.numpy as jnp

    n = args.matmul_size
    # bf16: the product --precision bf16 runs (bfloat16 inputs, float32 accumulation and result).
    dtype = jnp.bfloat16 if args.precision == "bf16" else jnp.float32
    a, b = jnp.ones((n, n), dtype), jnp.ones((n, n), dtype)
    matmul = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
    matmul(a, b).block_until_ready()
    seconds = []
    for _ in range(args.matmul_repeats):
        started = time.perf_counter()
        matmul(a, b).block_until_ready()
        seconds.append(time.perf_counter() - started)
    return {"gflops": 2 * n**3 / min(seconds) / 1e9}


def worker_peak_torch(args) -> dict:
    import torch

    torch.set_num_threads(TORCH_THREADS)
    n = args.matmul_size
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32  # what autocast's products take
    a, b = torch.ones(n, n, dtype=dtype), torch.ones(n, n, dtype=dtype)
    torch.mm(a, b)
    seconds = []
    for _ in range(args.matmul_repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - started)
    return {"gflops": 2 * n**3 / min(seconds) / 1e9, "library": torch_blas()}


def torch_blas() -> str:
    """The BLAS that PyTorch's float32 products use (its build configuration), e.g. Intel's MKL,
    whose fastest code paths are for Intel processors."""
    import torch

    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "?")
    mkl = next((line.strip(" -") for line in config.splitlines() if "Math Kernel Library" in line), "")
    return f"BLAS_INFO={blas}" + (f" ({mkl})" if mkl else "")


def compile_training_step(model_name: str, batch_size: int, images, labels, devices: int = 1,
                          precision: str = "f32", preset: str | None = None) -> dict:
    """The training loop's own jitted, donated step for a registered model, compiled as the loop's
    first call compiles it, with its fresh loop state and the device-resident data placed on a mesh
    of `devices`: {"step", "lowered", "loop", "images", "labels", "permutation", "compile_s"}. Shared by this
    script, bench_models.py and profile_step.py."""
    from gan_lab import config, registry, trainer  # inside: this script's parent process never starts JAX

    cfg = config.make_config(model_name, {"batch_size": batch_size, "dataset": "mnist", "precision": precision,
                                          "preset": preset})
    model = registry.get(model_name).build(cfg)
    steps_per_epoch = images.shape[0] // (batch_size * model.batches_per_step)  # a WGAN step takes n_critic batches
    mesh = trainer.make_mesh(devices)
    loop = trainer.place(trainer.init_loop_state(model, cfg.seed), mesh)
    images, labels = trainer.place((images, labels), mesh)
    permutation = trainer.make_epoch_permutation(images.shape[0], steps_per_epoch, mesh)(loop)
    step = trainer.make_train_step(model, batch_size, steps_per_epoch, mesh)
    started = time.perf_counter()
    lowered = step.lower(loop, images, labels, permutation)
    compiled = lowered.compile()
    return {"step": compiled, "lowered": lowered, "loop": loop, "images": images, "labels": labels,
            "permutation": permutation, "compile_s": time.perf_counter() - started}


def worker_gan_lab(args) -> dict:
    from gan_lab import data, runtime

    # gan_lab's process settings, before JAX starts (GAN_LAB_CPU_TUNING decides which); no compilation cache,
    # since the first step's time is a compilation's
    runtime.configure(compile_cache=False)
    import jax

    images, labels = data.to_device(*data.load_split("mnist", "train", args.data_dir))
    # wgan-gp: its paper's Algorithm 1 (5 critic updates), the work the PyTorch step below does
    built = compile_training_step(args.model, args.batch, images, labels, devices=args.devices,
                                  precision=args.precision, preset="paper" if args.model == "wgan-gp" else None)
    compiled, loop, images, labels, permutation = (built[k] for k in ("step", "loop", "images", "labels", "permutation"))
    first_step_seconds = built["compile_s"]
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost

    state = {"loop": loop}

    def run_steps(n):
        for _ in range(n):
            state["loop"], metrics = compiled(state["loop"], images, labels, permutation)
        jax.block_until_ready((state["loop"], metrics))
        state["metrics"] = metrics

    run_steps(args.warmup)
    rates = timed_repeats(run_steps, args.steps, args.repeats)
    losses = {k: float(v) for k, v in jax.device_get(state["metrics"]).items()}
    params = sum(x.size for x in jax.tree.leaves((state["loop"].model.g_params, state["loop"].model.d_params)))
    return {"rates": rates, "first_step_s": first_step_seconds, "hlo_flops": float(cost["flops"]),
            "params": int(params), "losses": losses, "runtime": runtime.APPLIED, "devices": args.devices}


def worker_torch(args) -> dict:
    import numpy as np
    import torch

    import torch_reference as ref
    from gan_lab import data  # numpy only: gan_lab.data imports JAX lazily, and not on this path

    from gan_lab import runtime

    if runtime.configure(compile_cache=False)["cpu_tuning"]:  # as a training process would, unless GAN_LAB_CPU_TUNING=0
        raise RuntimeError("PyTorch rows run with GAN_LAB_CPU_TUNING=0 (see variants())")
    if args.same_malloc:  # only the allocator part of gan_lab's settings: XLA flags mean nothing here
        assert runtime.keep_freed_memory(), "glibc's mallopt is not available here"

    torch.set_num_threads(TORCH_THREADS)
    torch.manual_seed(0)
    images, _ = data.load_split("mnist", "train", args.data_dir)
    real = torch.from_numpy(np.ascontiguousarray(data.to_model_range(images).transpose(0, 3, 1, 2)))
    order = torch.randperm(real.shape[0])
    state = {"i": 0}

    def next_batch():
        start = (state["i"] * args.batch) % (real.shape[0] - args.batch)
        state["i"] += 1
        return real[order[start : start + args.batch]]

    if args.model == "wgan-gp":  # its paper's settings, gan_lab's `wgan-gp --preset paper`
        generator, discriminator = ref.Generator(Z_DIM), ref.Discriminator(1, batch_norm=False, output_bias=False)
        wgan_gp_step = ref.make_wgan_gp_step(generator, discriminator, n_critic=WGAN_GP_N_CRITIC)

        def step():  # n_critic real batches, latents and interpolation coefficients per step
            shape = (WGAN_GP_N_CRITIC, args.batch)
            return wgan_gp_step(torch.stack([next_batch() for _ in range(WGAN_GP_N_CRITIC)]),
                                torch.randn(*shape, Z_DIM), torch.rand(*shape, 1, 1, 1))
    else:
        generator, discriminator = ref.Generator(Z_DIM), ref.Discriminator(1)
        dcgan_step = ref.make_step(generator, discriminator, generator_forward_once=args.generator_forward_once)

        def step():
            # --precision bf16: CPU autocast, PyTorch's mixed precision (bf16 products, float32 weights).
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                return dcgan_step(next_batch(), torch.randn(args.batch, Z_DIM))

    def run_steps(n):
        for _ in range(n):
            state["losses"] = step()

    started = time.perf_counter()
    run_steps(1)
    first_step_seconds = time.perf_counter() - started
    run_steps(args.warmup)
    rates = timed_repeats(run_steps, args.steps, args.repeats)
    d_loss, g_loss = (float(x) for x in state["losses"])
    params = ref.parameter_count(generator) + ref.parameter_count(discriminator)
    return {"rates": rates, "first_step_s": first_step_seconds, "params": params,
            "losses": {"d_loss": d_loss, "g_loss": g_loss}}


WORKERS = {"peak-jax": worker_peak_jax, "peak-torch": worker_peak_torch, "gan_lab": worker_gan_lab,
           "torch": worker_torch}


def run_worker(args) -> None:
    result = WORKERS[args.worker](args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(max_rss_mb=usage.ru_maxrss / 1024, cpu_s=usage.ru_utime + usage.ru_stime)
    print("RESULT " + json.dumps(result), flush=True)


# --- the parent: idle waits, subprocesses, the table ------------------------------------------------


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(seconds: float) -> float:
    """How many cores' worth of CPU the whole machine used over the next `seconds`."""
    busy0, total0 = cpu_jiffies()
    time.sleep(seconds)
    busy1, total1 = cpu_jiffies()
    return os.cpu_count() * (busy1 - busy0) / max(total1 - total0, 1)


def wait_for_idle(timeout: float, threshold: float = 0.15, window: float = 2.0) -> dict:
    """Block until the machine uses less than `threshold` cores over a `window`, or until timeout."""
    started = time.monotonic()
    while True:
        load = busy_cores(window)
        waited = time.monotonic() - started
        if load < threshold:
            return {"idle": True, "waited_s": waited, "busy_before": load}
        if waited >= timeout:
            return {"idle": False, "waited_s": waited, "busy_before": load}


def measure(kind: str, args, batch: int = 0, variant: dict | None = None) -> dict:
    """Run one worker in a fresh interpreter once the machine is idle; add how busy the rest was.
    `variant` (see VARIANTS) adds XLA flags, environment variables or worker arguments."""
    variant = variant or {}
    idle = wait_for_idle(args.idle_timeout)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--batch", str(batch),
           "--steps", str(args.steps_for[batch] if batch else 0), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--matmul-size", str(args.matmul_size),
           "--matmul-repeats", str(args.matmul_repeats), "--model", args.model, *variant.get("worker_args", [])]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    busy0, total0 = cpu_jiffies()
    started = time.monotonic()
    env = dict(os.environ, **variant.get("env", {}))
    env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {variant.get('xla_flags', '')}".strip()
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=HERE, env=env)
        if proc.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{kind} worker (batch {batch}) failed:\n{stderr.read()[-4000:]}")
    wall = time.monotonic() - started
    busy1, total1 = cpu_jiffies()
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    machine_cpu_s = (busy1 - busy0) / max(total1 - total0, 1) * os.cpu_count() * wall
    result.update(idle, wall_s=wall, others_cores=max(0.0, (machine_cpu_s - result["cpu_s"]) / wall))
    status = "idle" if idle["idle"] else f"NOT idle after {idle['waited_s']:.0f} s ({idle['busy_before']:.2f} cores busy)"
    label = variant.get("name", kind)
    print(f"  {label:16s} batch {batch or '-':>3}: {summary(result)}   [start: {status}; "
          f"others used {result['others_cores']:.2f} cores during]", flush=True)
    return result


def summary(result: dict) -> str:
    if "rates" in result:
        return f"{statistics.median(result['rates']):.2f} steps/s"
    return f"{result['gflops']:.0f} GFLOP/s"


def versions() -> dict:
    import importlib.metadata as md

    names = ["jax", "jaxlib", "flax", "optax", "numpy", "torch"]
    found = {}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "not installed"
    return found


def start_note(result: dict) -> str:
    if result["idle"]:
        return "idle"
    return f"**not idle** ({result['busy_before']:.1f} cores busy after {result['waited_s']:.0f} s wait)"


def report(args, peaks: dict, results: dict) -> str:
    peak = max(peaks["JAX"]["gflops"], peaks["PyTorch"]["gflops"])  # float32: the headline rows
    v = versions()
    lines = [
        "# DCGAN training step: gan_lab (JAX/Flax) vs PyTorch eager",
        "",
        f"Produced by `python experiments/bench.py{' --quick' if args.quick else ''}` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, in {(time.monotonic() - args.started) / 60:.1f} min.",
        "",
        f"- Machine: {platform.node()}, {os.cpu_count()} CPUs, {cpu_model()} ({cpu_field('vendor_id') or '?'} family "
        f"{cpu_field('cpu family') or '?'} model {cpu_field('model') or '?'}, "
        f"{platform.machine()}, {platform.system()} {platform.release()})",
        f"- Versions: Python {platform.python_version()}, "
        + ", ".join(f"{name} {version}" for name, version in v.items()),
        f"- XLA_FLAGS in the environment: `{os.environ.get('XLA_FLAGS', '')}` (empty: XLA's defaults)"
        + (f"; the `--xla-flags` rows add `{args.xla_flags}`" if args.xla_flags else "")
        + f"; PyTorch threads: {TORCH_THREADS}",
        f"- gan_lab's own CPU settings (gan_lab/runtime.py, applied by the gan_lab command and these scripts unless `GAN_LAB_CPU_TUNING=0`): "
        f"XLA_FLAGS became `{results[('gan_lab', args.batches[0])]['runtime'].get('xla_flags')}`; glibc malloc keeps freed "
        "memory (one arena, no mmap, no trim). The PyTorch rows marked \"gan_lab's malloc settings\" apply the same "
        "allocator settings to PyTorch, to show how much of the difference they account for; the \"G forward "
        "once\" row also reuses G's forward pass in G's update as gan_lab does (the plain row runs G twice, as "
        "the collections do). FLOPs per step count the products each row's step computes.",
        f"- Matmul peaks ({args.matmul_size}^3, best of {args.matmul_repeats}; bf16: bfloat16 inputs, float32 "
        "accumulation): "
        + ", ".join(f"{name} {p['gflops']:.0f} GFLOP/s ({start_note(p)})" for name, p in peaks.items())
        + f". PyTorch's products: {peaks['PyTorch'].get('library', '?')}; JAX's: XLA:CPU's own kernels. "
        "\"% of peak\" is against the faster float32 peak of the two; \"% of own peak\" against the row's own "
        "framework's peak in the row's precision, i.e. how much of what its matmul library can do the whole "
        "step turns into products.",
        f"- Steps/s: median of {args.repeats} repeats after {args.warmup} warm-up steps "
        f"(steps per repeat: {', '.join(f'{s} at batch {b}' for b, s in args.steps_for.items())}); "
        "range in brackets. Model: infoGAN MNIST DCGAN, z=62, width 1.0, real MNIST batches.",
        "",
        "| batch | framework | steps/s [min-max] | first step (s) | FLOPs/step: layers / XLA | "
        "achieved GFLOP/s | % of peak | % of own peak | peak RSS (MB) | parameters | start | others' CPU (cores) |",
        "|---:|---|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for batch in args.batches:
        for name, variant in variants(args).items():
            # The products each row's step really computes: gan_lab, and the PyTorch row that does the
            # same, run G's forward once per step.
            flops = step_flops(batch, generator_forward_once=variant.get("generator_forward_once", False))
            r = results[(name, batch)]
            rate = statistics.median(r["rates"])
            hlo = f"{r['hlo_flops'] / 1e9:.1f} G" if "hlo_flops" in r else "n/a"
            label = variant["label"]
            lines.append(
                f"| {batch} | {label} | **{rate:.2f}** [{min(r['rates']):.2f}-{max(r['rates']):.2f}] | "
                f"{r['first_step_s']:.1f} | {flops / 1e9:.1f} G / {hlo} | {rate * flops / 1e9:.0f} | "
                f"{100 * rate * flops / 1e9 / peak:.0f}% | {100 * rate * flops / 1e9 / own_peak(peaks, variant):.0f}% | "
                f"{r['max_rss_mb']:.0f} | {r['params']:,} | "
                f"{start_note(r)} | {r['others_cores']:.2f} |"
            )
    lines += ["", "| batch | steps/s ratio | target | met |", "|---:|---|---:|---|"]
    for batch in args.batches:
        torch_rate = statistics.median(results[("torch", batch)]["rates"])
        target = TARGETS.get(batch)
        for name, variant in variants(args).items():
            if variant["worker"] == "torch" or variant.get("precision") == "bf16":
                continue
            ratio = statistics.median(results[(name, batch)]["rates"]) / torch_rate
            met = "n/a" if target is None or name != "gan_lab" else ("yes" if ratio >= target else "**no**")
            lines.append(f"| {batch} | {variant['label']} / PyTorch eager = {ratio:.2f}x | "
                         f"{f'{target:.2f}x' if target and name == 'gan_lab' else '-'} | {met} |")
        ours = statistics.median(results[("gan_lab", batch)]["rates"])
        mixed = statistics.median(results[("gan_lab-bf16", batch)]["rates"])
        lines.append(f"| {batch} | gan_lab, `--precision bf16` / PyTorch eager, autocast bf16 = "
                     f"{mixed / statistics.median(results[('torch-bf16', batch)]['rates']):.2f}x | - | n/a |")
        lines.append(f"| {batch} | gan_lab, `--precision bf16` / gan_lab (JAX) = {mixed / ours:.2f}x | - | n/a |")
        for name in ("torch-malloc", "torch-once"):
            lines.append(f"| {batch} | gan_lab (JAX) / {variants(args)[name]['label']} = "
                         f"{ours / statistics.median(results[(name, batch)]['rates']):.2f}x | - | n/a |")
    lines += ["", "XLA's FLOP count of a multi-device row is per device (each computes its share of the batch)."]
    counts = {r["params"] for r in results.values()}
    lines += ["", f"Parameter counts equal across frameworks: {'yes' if len(counts) == 1 else 'NO: ' + str(counts)}."]
    noisy = [k for k, r in results.items() if not r["idle"] or r["others_cores"] > 0.25]
    if noisy:
        lines.append("Noisy measurements (machine not idle at start, or other processes used > 0.25 cores "
                     "during): " + ", ".join(f"{variants(args)[name]['label']} at batch {batch}" for name, batch in noisy) + ".")
    return "\n".join(lines) + "\n"


def variants(args) -> dict[str, dict]:
    """Every row of the table by name: the worker it runs and how that worker's process is set up.
    The last one, plain PyTorch, is the reference the targets are ratios against."""
    rows = {
        "gan_lab": {"worker": "gan_lab", "label": "gan_lab (JAX)"},
        "gan_lab-xla": {"worker": "gan_lab", "label": "gan_lab, `GAN_LAB_CPU_TUNING=xla` (no malloc setting)",
                        "env": {"GAN_LAB_CPU_TUNING": "xla"}},
        "gan_lab-untuned": {"worker": "gan_lab", "label": "gan_lab, `GAN_LAB_CPU_TUNING=0`",
                            "env": {"GAN_LAB_CPU_TUNING": "0"}},
        # Two XLA host devices share the same two cores: this shows the sharded path's cost, not a
        # speed-up (that needs devices with their own compute).
        "gan_lab-2dev": {"worker": "gan_lab", "label": "gan_lab, 2 devices (`--devices 2`)",
                         "xla_flags": "--xla_force_host_platform_device_count=2", "worker_args": ["--devices", "2"]},
    }
    if args.xla_flags:
        rows["gan_lab+flags"] = {"worker": "gan_lab", "label": "gan_lab, `--xla-flags`", "xla_flags": args.xla_flags}
    for row in rows.values():
        row["generator_forward_once"] = True  # models/gan.py reuses G's forward in G's update
    untuned = {"GAN_LAB_CPU_TUNING": "0"}  # the torch worker reads MNIST through gan_lab.data
    rows["torch-malloc"] = {"worker": "torch", "label": "PyTorch eager, gan_lab's malloc settings",
                            "worker_args": ["--same-malloc"], "env": untuned}
    # Like for like: gan_lab runs G's forward once per step; so does this PyTorch row.
    rows["torch-once"] = {"worker": "torch", "label": "PyTorch eager, G forward once, gan_lab's malloc settings",
                          "worker_args": ["--same-malloc", "--generator-forward-once"], "env": untuned,
                          "generator_forward_once": True}
    rows["torch"] = {"worker": "torch", "label": "PyTorch eager", "env": untuned}
    # Mixed precision, a pair of its own (not the headline): gan_lab's --precision bf16 against PyTorch's
    # CPU autocast to bfloat16, each with its framework's defaults otherwise.
    rows["gan_lab-bf16"] = {"worker": "gan_lab", "label": "gan_lab, `--precision bf16`", "precision": "bf16",
                            "worker_args": ["--precision", "bf16"], "generator_forward_once": True}
    rows["torch-bf16"] = {"worker": "torch", "label": "PyTorch eager, autocast bf16", "precision": "bf16",
                          "worker_args": ["--precision", "bf16"], "env": untuned}
    return {name: {"name": name, **row} for name, row in rows.items()}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, short idle waits")
    parser.add_argument("--model", choices=MODELS, default="dcgan",
                        help="dcgan (default): the full table, experiments/results/bench-dcgan-<vendor>.md; wgan-gp: gan_lab vs the "
                             "PyTorch step with equal work (experiments/results/bench-wgan-gp-<vendor>.md)")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="default: 64 256 (dcgan), 64 (wgan-gp)")
    parser.add_argument("--out", type=Path, default=None, help="markdown file (default experiments/results/bench-dcgan-<vendor>.md, none with --quick)")
    parser.add_argument("--idle-timeout", type=float, default=None, help="seconds to wait for an idle machine")
    parser.add_argument("--data-dir", default=None, help="MNIST location (default: gan_lab's usual search)")
    parser.add_argument("--xla-flags", default="", help="also time gan_lab with these XLA flags appended (one more "
                        "row per batch size), e.g. to try flags before gan_lab adopts them")
    # Set by the parent for its workers:
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--matmul-size", type=int, default=2048, help=argparse.SUPPRESS)
    parser.add_argument("--matmul-repeats", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=None, help="--model other than dcgan: alternating rounds "
                        "of fresh processes (default 3; 1 with --quick)")
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--same-malloc", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=("f32", "bf16"), default="f32", help=argparse.SUPPRESS)
    parser.add_argument("--generator-forward-once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    if args.matmul_repeats is None:
        args.matmul_repeats = 3 if args.quick else 10
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.idle_timeout is None:
        args.idle_timeout = 5 if args.quick else 60
    if args.batches is None:
        args.batches = [64, 256] if args.model == "dcgan" else [64]
    # ~2 s per repeat at the speeds measured here: enough steps to average over, few enough for ~15 min in all.
    per_step = WGAN_GP_N_CRITIC * 2 if args.model == "wgan-gp" else 1  # a WGAN-GP step is ~10 DCGAN steps' work
    args.steps_for = {b: (2 if args.quick else max(4, 1024 // (b * per_step))) for b in args.batches}
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    args.started = time.monotonic()
    if args.worker:
        run_worker(args)
        return
    print(f"benchmarking on {cpu_model()}: each measurement in a fresh process, after an idle wait", flush=True)
    if args.model != "dcgan":
        model_comparison(args)
        return
    peaks = {name: measure(kind, args, variant={"name": f"{kind}-{precision}", "worker_args": ["--precision", precision]})
             for name, (kind, precision) in PEAKS.items()}
    results = {}
    for batch in args.batches:
        for name, variant in variants(args).items():
            results[(name, batch)] = measure(variant["worker"], args, batch, variant)
    publish(report(args, peaks, results), args.out or (None if args.quick else vendor_results("bench-dcgan")))


# The matmul peaks each row is measured against: its framework's, in its precision.
PEAKS = {"JAX": ("peak-jax", "f32"), "PyTorch": ("peak-torch", "f32"),
         "JAX bf16": ("peak-jax", "bf16"), "PyTorch bf16": ("peak-torch", "bf16")}


def own_peak(peaks: dict, variant: dict) -> float:
    framework = "PyTorch" if variant["worker"] == "torch" else "JAX"
    return peaks[framework + (" bf16" if variant.get("precision") == "bf16" else "")]["gflops"]


def cpu_vendor() -> str:
    """'amd', 'intel' or what /proc/cpuinfo says: results of each vendor are kept in their own file."""
    vendor = cpu_field("vendor_id")
    return {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(vendor, vendor.lower() or "unknown")


def vendor_results(name: str) -> Path:
    """experiments/results/<name>-<vendor>.md: each CPU vendor's latest results in their own file."""
    return HERE / "results" / f"{name}-{cpu_vendor()}.md"


def model_comparison(args) -> None:
    """Another model's step (e.g. wgan-gp) against the PyTorch step with equal work: gan_lab as the
    `gan_lab` command runs it and plain PyTorch eager, alternating fresh processes for `rounds`."""
    rows = {"gan_lab": {"worker": "gan_lab", "label": "gan_lab (JAX)"},
            "torch": {"worker": "torch", "label": "PyTorch eager", "env": {"GAN_LAB_CPU_TUNING": "0"}}}
    results = {(name, batch): [] for name in rows for batch in args.batches}
    for _ in range(args.rounds):  # alternating: a machine that gets busier slows both alike
        for batch in args.batches:
            for name, row in rows.items():
                results[(name, batch)].append(measure(row["worker"], args, batch, {"name": name, **row}))
    v = versions()
    lines = [
        f"# {args.model} training step: gan_lab (JAX/Flax) vs PyTorch eager with equal work",
        "",
        f"Produced by `python experiments/bench.py --model {args.model}{' --quick' if args.quick else ''}` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, in {(time.monotonic() - args.started) / 60:.1f} min; "
        f"{platform.node()}, {os.cpu_count()} CPUs, {cpu_model()}; "
        + ", ".join(f"{name} {version}" for name, version in v.items()) + f"; PyTorch threads: {TORCH_THREADS}.",
        "",
        f"One step = {WGAN_GP_N_CRITIC} critic updates (each on its own real batch, with the gradient penalty's "
        "double backward) and one G update, the paper's defaults in both frameworks (experiments/torch_reference.py "
        "make_wgan_gp_step; tests/test_torch_reference.py checks it computes gan_lab's losses and weights). "
        f"{args.rounds} rounds of fresh processes, alternating; each: median steps/s of {args.repeats} repeats "
        f"after {args.warmup} warm-up steps.",
        "",
        "| batch | framework | steps/s per round (median of repeats) | median | first step (s) | peak RSS (MB) | "
        "parameters | starts idle | others' CPU (cores, max) |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for batch in args.batches:
        for name, row in rows.items():
            runs = results[(name, batch)]
            medians = [statistics.median(r["rates"]) for r in runs]
            lines.append(f"| {batch} | {row['label']} | {', '.join(f'{m:.2f}' for m in medians)} | "
                         f"**{statistics.median(medians):.2f}** | {statistics.median(r['first_step_s'] for r in runs):.1f} | "
                         f"{max(r['max_rss_mb'] for r in runs):.0f} | {runs[0]['params']:,} | "
                         f"{sum(r['idle'] for r in runs)}/{len(runs)} | {max(r['others_cores'] for r in runs):.2f} |")
    lines.append("")
    for batch in args.batches:
        ours = statistics.median(statistics.median(r["rates"]) for r in results[("gan_lab", batch)])
        theirs = statistics.median(statistics.median(r["rates"]) for r in results[("torch", batch)])
        lines.append(f"Batch {batch}: gan_lab / PyTorch eager = **{ours / theirs:.2f}x** steps/s"
                     f" ({'not slower' if ours >= theirs else 'SLOWER'}).")
    counts = {r[0]["params"] for r in results.values()}
    lines += ["", f"Parameter counts equal across frameworks: {'yes' if len(counts) == 1 else 'NO: ' + str(counts)}."]
    out = args.out or (None if args.quick else vendor_results(f"bench-{args.model}"))
    publish("\n".join(lines) + "\n", out)


def publish(text: str, out: Path | None) -> None:
    """Print a report and write it to `out` (None: a smoke run, which writes nothing)."""
    if out is not None:
        write_result(out, text)
    print()
    print(text)


if __name__ == "__main__":
    main()
