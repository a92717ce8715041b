"""THE training loop. It knows no model: only the registry's Model contract (init / step / sample).

One compiled step per call (on XLA:CPU a rolled `lax.scan` over the DCGAN step measured 5x slower
than one jitted call per step, see experiments/), over device-resident data indexed by a
permutation that is derived on the device from (seed, epoch). The step's key is
fold_in(root_key, step), so a resumed run draws exactly the numbers a straight run draws.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from gan_lab.errors import UserError
from gan_lab.registry import Model


class LoopState(NamedTuple):
    model: Any  # the model's own state pytree
    step: jax.Array  # int32 scalar: steps done so far
    first_nonfinite_step: jax.Array  # int32 scalar: -1 while every loss so far was finite


class TrainingDiverged(UserError):
    pass


def root_keys(seed: int):
    """(init key, step key, shuffle key), all derived from the run's seed."""
    return jax.random.split(jax.random.key(seed), 3)


def init_loop_state(model: Model, seed: int) -> LoopState:
    init_key, _, _ = root_keys(seed)
    return LoopState(model.init(init_key), jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32))


def make_mesh(n_devices: int = 1) -> Mesh:
    """A 1-D mesh over the first n local devices; the batch is split along its "batch" axis."""
    devices = jax.local_devices()
    if not 1 <= n_devices <= len(devices):
        raise UserError(f"--devices {n_devices} is not available: this process sees {len(devices)} "
                        f"{devices[0].platform} device(s)")
    return Mesh(np.array(devices[:n_devices]), ("batch",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def make_epoch_permutation(seed: int, n_examples: int, steps_per_epoch: int, mesh: Mesh | None = None) -> Callable:
    """Jitted `step -> permutation of the epoch that step falls in`; no host data involved."""
    _, _, shuffle_key = root_keys(seed)

    def epoch_permutation(step):
        epoch = step // steps_per_epoch
        return jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n_examples)

    return jax.jit(epoch_permutation, out_shardings=replicated(mesh or make_mesh()))


@functools.lru_cache(maxsize=16)
def make_train_step(model: Model, seed: int, batch_size: int, steps_per_epoch: int, mesh: Mesh | None = None) -> Callable:
    """Jitted `(loop_state, images, labels, permutation) -> (loop_state, metrics)`; donates the state.

    Data parallel over `mesh`: the state and the dataset are replicated, each batch is split across
    the devices, and XLA's SPMD partitioner inserts the cross-device reductions (so BatchNorm still
    sees the whole batch and one device or several compute the same step). Memoised, so a run
    continued in the same process (e.g. after restoring a checkpoint) reuses the compiled step.
    """
    mesh = mesh or make_mesh()
    _, step_key, _ = root_keys(seed)
    batch_sharding = NamedSharding(mesh, PartitionSpec("batch"))

    def train_step(loop: LoopState, images, labels, permutation):
        start = (loop.step % steps_per_epoch) * batch_size
        batch_index = jax.lax.dynamic_slice_in_dim(permutation, start, batch_size)
        key = jax.random.fold_in(step_key, loop.step)
        batch_images = jax.lax.with_sharding_constraint(images[batch_index], batch_sharding)
        batch_labels = jax.lax.with_sharding_constraint(labels[batch_index], batch_sharding)
        model_state, metrics = model.step(loop.model, batch_images, batch_labels, key)
        finite = jnp.all(jnp.stack([jnp.isfinite(m) for m in jax.tree.leaves(metrics)]))
        first_bad = jnp.where((loop.first_nonfinite_step < 0) & ~finite, loop.step, loop.first_nonfinite_step)
        return LoopState(model_state, loop.step + 1, first_bad), metrics

    everywhere = replicated(mesh)
    return jax.jit(train_step, donate_argnums=0, in_shardings=everywhere, out_shardings=everywhere)


def place(tree, mesh: Mesh):
    """Commit a pytree (loop state, dataset) to the mesh, replicated: fresh and restored states then
    look the same to the compiled step, which never recompiles for them."""
    return jax.device_put(tree, replicated(mesh))


def check_finite(loop: LoopState) -> None:
    bad_step = int(jax.device_get(loop.first_nonfinite_step))
    if bad_step >= 0:
        raise TrainingDiverged(
            f"training diverged: a loss became NaN or infinite at step {bad_step}; "
            "try a lower --lr or another --seed"
        )


def fit(
    model: Model,
    cfg,
    images,
    labels,
    loop: LoopState | None = None,
    on_log: Callable[[int, int, dict, float], None] | None = None,
    on_epoch_end: Callable[[int, LoopState], None] | None = None,
    on_interrupt: Callable[[LoopState], None] | None = None,
    show_progress: bool = True,
) -> LoopState:
    """Train `model` on device arrays `images` (N, 28, 28, 1) and `labels` (N,) for cfg.epochs epochs
    (or until cfg.steps steps in total), starting from `loop` (a fresh state if None).

    on_log(step, epoch, metrics, steps_per_sec) runs every cfg.log_every steps and at each epoch's
    end; on_epoch_end(epoch, loop_state) after each complete epoch. Epochs count from 1.
    On Ctrl-C, on_interrupt(last loop state) runs before the KeyboardInterrupt propagates.
    """
    n_examples = images.shape[0]
    if cfg.batch_size > n_examples:
        raise UserError(f"--batch-size {cfg.batch_size} is larger than the dataset ({n_examples} images)")
    steps_per_epoch = n_examples // cfg.batch_size  # the last partial batch is dropped
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.steps is not None:
        total_steps = min(total_steps, cfg.steps)

    if cfg.batch_size % cfg.devices:
        raise UserError(f"--batch-size {cfg.batch_size} does not split evenly over --devices {cfg.devices}")
    mesh = make_mesh(cfg.devices)
    loop = place(init_loop_state(model, cfg.seed) if loop is None else loop, mesh)
    images, labels = place((images, labels), mesh)
    step = int(jax.device_get(loop.step))
    train_step = make_train_step(model, cfg.seed, cfg.batch_size, steps_per_epoch, mesh)
    epoch_permutation = make_epoch_permutation(cfg.seed, n_examples, steps_per_epoch, mesh)

    try:
        while step < total_steps:
            epoch = step // steps_per_epoch + 1
            epoch_end = min(epoch * steps_per_epoch, total_steps)
            permutation = epoch_permutation(loop.step)
            bar = tqdm(
                total=epoch_end - (epoch - 1) * steps_per_epoch,
                initial=step - (epoch - 1) * steps_per_epoch,
                desc=f"epoch {epoch}/{cfg.epochs}",
                unit="step",
                disable=not show_progress,
                dynamic_ncols=True,
            )
            last_log_step, last_log_time = step, time.perf_counter()
            with bar:
                while step < epoch_end:
                    # Everything the step needs is already on the device: any implicit transfer is a bug.
                    with jax.transfer_guard("disallow"):
                        loop, metrics = train_step(loop, images, labels, permutation)
                    step += 1
                    bar.update(1)
                    if step % cfg.log_every == 0 or step == epoch_end:
                        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
                        now = time.perf_counter()
                        steps_per_sec = (step - last_log_step) / max(now - last_log_time, 1e-9)
                        last_log_step, last_log_time = step, now
                        bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
                        check_finite(loop)
                        if on_log is not None:
                            on_log(step, epoch, values, steps_per_sec)
            if step == epoch * steps_per_epoch and on_epoch_end is not None:
                on_epoch_end(epoch, loop)
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt(loop)
        raise
    check_finite(loop)
    return loop
