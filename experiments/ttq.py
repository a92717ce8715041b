"""Time to quality: DCGAN on MNIST, gan_lab vs the PyTorch reference (experiments/torch_reference.py),
identical hyper-parameters (batch 64, Adam 2e-4 b1 0.5, N(0, 0.02) init, the same step), same machine,
one after the other in the same process. Both are scored the same way every `every` steps: 2,000
samples from a fixed noise batch, quantised to uint8 like the data, Fréchet distance to the 10,000
MNIST test images in gan_lab's evaluator features. The clock counts training only (compilation
included for gan_lab), not scoring. Used by experiments/compare_models.py.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from gan_lab import config, data, metrics, registry, trainer
from gan_lab.evaluator import load_evaluator

N_SCORED = 2_000
BATCH = 64


def as_data(images_in_model_range) -> np.ndarray:
    """Quantise to uint8 and back, exactly as real data is stored."""
    quantised = np.clip(np.round((np.asarray(images_in_model_range) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return data.to_model_range(quantised.reshape(-1, 28, 28))


def gan_lab_trajectory(target, max_steps, every, width, images, labels, score) -> list:
    cfg = config.make_config("dcgan", {"dataset": "mnist", "width": width, "epochs": 1000, "log_every": every})
    model = registry.get("dcgan").build(cfg)
    key = jax.random.key(12345)
    loop, elapsed, trajectory = None, 0.0, []
    for step in range(every, max_steps + 1, every):
        started = time.perf_counter()
        loop = trainer.fit(model, dataclasses.replace(cfg, steps=step), images, labels, loop=loop, show_progress=False)
        jax.block_until_ready(loop)
        elapsed += time.perf_counter() - started
        fd = score(as_data(model.sample(loop.model, key, N_SCORED)))
        trajectory.append((step, elapsed, fd))
        if fd <= target:
            break
    return trajectory


def torch_trajectory(target, max_steps, every, width, images_uint8, score) -> list:
    import torch

    import torch_reference as ref

    torch.manual_seed(0)
    torch.set_num_threads(2)
    generator, discriminator = ref.Generator(width=width), ref.Discriminator(width=width)
    step_fn = ref.make_step(generator, discriminator)
    all_images = ref.nhwc_to_nchw(data.to_model_range(images_uint8))
    eval_z = torch.randn(N_SCORED, ref.Z_DIM, generator=torch.Generator().manual_seed(12345))
    order = np.random.default_rng(0)
    steps_per_epoch = len(all_images) // BATCH
    permutation, elapsed, trajectory = None, 0.0, []
    for step in range(1, max_steps + 1):
        started = time.perf_counter()
        if (step - 1) % steps_per_epoch == 0:
            permutation = torch.from_numpy(order.permutation(len(all_images)))
        position = (step - 1) % steps_per_epoch
        batch = all_images[permutation[position * BATCH:(position + 1) * BATCH]]
        step_fn(batch, torch.randn(BATCH, ref.Z_DIM))
        elapsed += time.perf_counter() - started
        if step % every == 0:
            generator.eval()
            with torch.no_grad():
                samples = generator(eval_z).permute(0, 2, 3, 1).numpy()
            generator.train()
            fd = score(as_data(samples))
            trajectory.append((step, elapsed, fd))
            if fd <= target:
                break
    return trajectory


def reached(trajectory, target):
    return next(((step, seconds) for step, seconds, fd in trajectory if fd <= target), None)


def race(target: float, max_steps: int, every: int, width: float, data_dir=None) -> list[str]:
    train_images, train_labels = data.load_split("mnist", "train", data_dir)
    test_images = data.to_model_range(data.load_split("mnist", "test", data_dir)[0])
    evaluator = load_evaluator("mnist")
    real_features = evaluator.features(test_images)

    def score(images):
        return metrics.frechet_distance(evaluator.features(images), real_features)

    images, labels = data.to_device(train_images, train_labels)
    runs = {
        "gan_lab (JAX)": gan_lab_trajectory(target, max_steps, every, width, images, labels, score),
        "PyTorch eager reference": torch_trajectory(target, max_steps, every, width, train_images, score),
    }
    lines = [f"Time to quality, DCGAN on MNIST (width {width}): training wall time until FD <= {target} "
             f"({N_SCORED} samples vs the test set, evaluator `{evaluator.fingerprint}`), scored every {every} steps.",
             "", "| implementation | steps | training time | final FD |", "| --- | --- | --- | --- |"]
    for name, trajectory in runs.items():
        hit = reached(trajectory, target)
        last_step, last_time, last_fd = trajectory[-1]
        if hit:
            lines.append(f"| {name} | {hit[0]} | {hit[1]:.0f} s | {last_fd:.2f} |")
        else:
            lines.append(f"| {name} | not reached in {last_step} | {last_time:.0f} s | {last_fd:.2f} |")
    times = [reached(t, target) for t in runs.values()]
    if all(times):
        lines.append("")
        lines.append(f"gan_lab reached it {times[1][1] / times[0][1]:.2f}x as fast as PyTorch (wall time ratio).")
    lines.append("")
    lines.append("FD trajectories (step: FD): " + "; ".join(
        f"{name}: " + ", ".join(f"{s}: {fd:.1f}" for s, _, fd in t) for name, t in runs.items()))
    return lines
