"""THE training loop. It knows no model: only the registry's Model contract (init / step / decode).

One compiled step per call (on XLA:CPU a rolled `lax.scan` over the DCGAN step measured 5x slower
than one jitted call per step), over device-resident data indexed by a permutation that is derived
on the device from (seed, epoch). The step's key is fold_in(step_key, step), so a resumed run draws
exactly the numbers a straight run draws. Several seeds can train together: the loop state then has
a leading seed axis and the step is vmapped over it (one compiled program for all seeds).
"""

from __future__ import annotations

import collections
import functools
import signal
import threading
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from gan_lab.errors import UserError
from gan_lab.registry import Model

STEPS_IN_FLIGHT = 2  # dispatched steps the bar has not counted; beyond this the loop waits for the oldest


class LoopState(NamedTuple):
    model: Any  # the model's own state pytree
    step: jax.Array  # int32: steps done so far
    first_nonfinite_step: jax.Array  # int32: -1 while every loss so far was finite
    step_key: jax.Array  # uint32 key data: the step's randomness is fold_in(step_key, step)
    shuffle_key: jax.Array  # uint32 key data: epoch e's order is permutation(fold_in(shuffle_key, e))


class TrainingDiverged(UserError):
    pass


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal (Ctrl-C, SIGTERM, SIGHUP), raised between two steps."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Ctrl-C; a scheduler's pre-emption or `kill`; a closed terminal. (Windows has no SIGHUP.)
DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class DeferredInterrupt:
    """A stopping signal during training is noted and raised between steps, never inside one.

    A KeyboardInterrupt raised while a donating step call returns would leave `loop` pointing at
    donated (deleted) buffers, and the on_interrupt checkpoint could not be written. Only in the main
    thread, and not for a signal that is ignored (e.g. SIGINT in a background job, SIGHUP under
    nohup), which stays ignored.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in DEFERRED_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._note)
        return self

    def _note(self, signum, frame):
        self.signum = self.signum or signum  # the first signal names the stop

    def raise_if_requested(self):
        if self.signum is not None:
            raise Interrupted(self.signum)

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        return False


def init_loop_state(model: Model, seed) -> LoopState:
    """Fresh state for `seed` (a Python int, or a traced int under vmap for several seeds at once)."""
    init_key, step_key, shuffle_key = jax.random.split(jax.random.key(seed), 3)
    return LoopState(model.init(init_key), jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32),
                     jax.random.key_data(step_key), jax.random.key_data(shuffle_key))


def init_seeds(model: Model, seeds) -> LoopState:
    """States for several seeds, stacked along a leading axis."""
    return jax.jit(jax.vmap(lambda seed: init_loop_state(model, seed)))(jnp.asarray(seeds))


def make_mesh(n_devices: int = 1) -> Mesh:
    """A 1-D mesh over the first n devices; the batch is split along its "batch" axis.

    jax.devices() lists every process's devices after jax.distributed.initialize(), so the same
    mesh spans several hosts in a multi-host run (see docs/scaling.md).
    """
    devices = jax.devices()
    if not 1 <= n_devices <= len(devices):
        raise UserError(f"--devices {n_devices} is not available: there are {len(devices)} "
                        f"{devices[0].platform} device(s)")
    return Mesh(np.array(devices[:n_devices]), ("batch",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def place(tree, mesh: Mesh):
    """Commit a pytree (loop state, dataset) to the mesh, replicated: fresh and restored states then
    look the same to the compiled step, which never recompiles for them."""
    everywhere = replicated(mesh)
    if jax.process_count() == 1:
        return jax.device_put(tree, everywhere)
    # Several processes: each holds the whole value (every process computed or restored the same), so
    # each builds its part of the global array from it; device_put would try to copy across hosts.
    return jax.tree.map(lambda leaf: jax.make_array_from_process_local_data(everywhere, np.asarray(leaf)), tree)


def epoch_permutation(loop: LoopState, n_examples: int, steps_per_epoch: int):
    """The order of the epoch that `loop.step` falls in; computed on the device."""
    epoch = loop.step // steps_per_epoch
    key = jax.random.fold_in(jax.random.wrap_key_data(loop.shuffle_key), epoch)
    return jax.random.permutation(key, n_examples)


def train_step(model: Model, batch_size: int, steps_per_epoch: int, batch_sharding, loop: LoopState, images,
               labels, permutation):
    """One step of `model` on the batch that `loop.step` selects from `permutation`."""
    # A model that consumes k real batches per step (a WGAN critic's k updates) gets them stacked: (k, B, ...).
    k = model.batches_per_step
    start = (loop.step % steps_per_epoch) * batch_size * k
    batch_index = jax.lax.dynamic_slice_in_dim(permutation, start, batch_size * k)
    if k > 1:
        batch_index = batch_index.reshape(k, batch_size)
        batch_sharding = NamedSharding(batch_sharding.mesh, PartitionSpec(None, "batch"))
    batch_images = jax.lax.with_sharding_constraint(images[batch_index], batch_sharding)
    batch_labels = jax.lax.with_sharding_constraint(labels[batch_index], batch_sharding)
    key = jax.random.fold_in(jax.random.wrap_key_data(loop.step_key), loop.step)
    model_state, metrics = model.step(loop.model, batch_images, batch_labels, key)
    finite = jnp.all(jnp.stack([jnp.isfinite(m) for m in jax.tree.leaves(metrics)]))
    first_bad = jnp.where((loop.first_nonfinite_step < 0) & ~finite, loop.step, loop.first_nonfinite_step)
    return loop._replace(model=model_state, step=loop.step + 1, first_nonfinite_step=first_bad), metrics


@functools.lru_cache(maxsize=16)
def make_train_step(model: Model, batch_size: int, steps_per_epoch: int, mesh: Mesh | None = None,
                    several_seeds: bool = False) -> Callable:
    """Jitted `(loop_state, images, labels, permutation) -> (loop_state, metrics)`; donates the state.

    Data parallel over `mesh`: the state and the dataset are replicated, each batch is split across
    the devices, and XLA's SPMD partitioner inserts the cross-device reductions (so BatchNorm still
    sees the whole batch and one device or several compute the same step). With `several_seeds`
    the state and permutation carry a leading seed axis. Memoised, so a run continued in the same
    process (e.g. after restoring a checkpoint) reuses the compiled step.
    """
    mesh = mesh or make_mesh()
    # Under vmap the seed axis is added to this constraint by vmap itself.
    step = functools.partial(train_step, model, batch_size, steps_per_epoch, NamedSharding(mesh, PartitionSpec("batch")))
    if several_seeds:
        step = jax.vmap(step, in_axes=(0, None, None, 0))
    everywhere = replicated(mesh)
    return jax.jit(step, donate_argnums=0, in_shardings=everywhere, out_shardings=everywhere)


@functools.lru_cache(maxsize=16)
def make_epoch_permutation(n_examples: int, steps_per_epoch: int, mesh: Mesh | None = None,
                           several_seeds: bool = False) -> Callable:
    permute = functools.partial(epoch_permutation, n_examples=n_examples, steps_per_epoch=steps_per_epoch)
    return jax.jit(jax.vmap(permute) if several_seeds else permute, out_shardings=replicated(mesh or make_mesh()))


def check_finite(loop: LoopState) -> None:
    first_bad = np.asarray(jax.device_get(loop.first_nonfinite_step)).ravel()
    if (first_bad >= 0).any():
        raise TrainingDiverged(
            f"training diverged: a loss became NaN or infinite at step {int(first_bad[first_bad >= 0].min())}; "
            "no checkpoint after it is saved; start a new run with a lower --lr or another --seed "
            "(a resumed run keeps the settings it started with)"
        )


def fit(
    model: Model,
    cfg,
    images,
    labels,
    loop: LoopState | None = None,
    on_log: Callable[[int, int, dict, float], None] | None = None,
    on_epoch_end: Callable[[int, LoopState], None] | None = None,
    on_save: Callable[[LoopState], None] | None = None,
    on_interrupt: Callable[[LoopState], None] | None = None,
    show_progress: bool = True,
    seeds=None,
) -> LoopState:
    """Train `model` on device arrays `images` (N, 28, 28, 1) and `labels` (N,) for cfg.epochs epochs
    (or until cfg.steps steps in total), starting from `loop` (a fresh state for cfg.seed if None).

    With `seeds` (a list of ints) all those seeds train together in one vmapped step; the loop state
    and every metric then have a leading seed axis.

    on_log(step, epoch, metrics, steps_per_sec) runs every cfg.log_every steps and at each epoch's
    end; on_epoch_end(epoch, loop_state) after each complete epoch. Epochs count from 1.
    on_save(loop_state) runs where a checkpoint belongs: every cfg.checkpoint_every steps (if set),
    after each epoch, and at the last step; only ever with a state whose losses were all finite.
    On Ctrl-C, SIGTERM or SIGHUP (deferred to the end of the step), on_interrupt(last loop state)
    runs before the `Interrupted` (a KeyboardInterrupt) propagates.
    """
    n_examples = images.shape[0]
    if cfg.batch_size * model.batches_per_step > n_examples:
        per_step = f" x {model.batches_per_step} batches per step" if model.batches_per_step > 1 else ""
        raise UserError(f"--batch-size {cfg.batch_size}{per_step} is larger than the dataset ({n_examples} images)")
    if cfg.batch_size % cfg.devices:
        raise UserError(f"--batch-size {cfg.batch_size} does not split evenly over --devices {cfg.devices}")
    # The last partial batch (or group of batches, for a model taking several per step) is dropped.
    steps_per_epoch = n_examples // (cfg.batch_size * model.batches_per_step)
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.steps is not None:
        total_steps = min(total_steps, cfg.steps)

    several = seeds is not None
    mesh = make_mesh(cfg.devices)
    if loop is None:
        loop = init_seeds(model, seeds) if several else init_loop_state(model, cfg.seed)
    loop = place(loop, mesh)
    images, labels = place((images, labels), mesh)
    step = int(np.max(jax.device_get(loop.step)))
    train_step = make_train_step(model, cfg.batch_size, steps_per_epoch, mesh, several)
    permutation_of = make_epoch_permutation(n_examples, steps_per_epoch, mesh, several)

    # One bar for the whole run, so its rate and ETA are the run's (a resumed run's starts at its step).
    bar = tqdm(total=total_steps, initial=step, desc=f"epoch {step // steps_per_epoch + 1}/{cfg.epochs}", unit="step",
               disable=not show_progress or step >= total_steps, dynamic_ncols=True)
    try:
        with DeferredInterrupt() as interrupt, bar:
            while step < total_steps:
                epoch = step // steps_per_epoch + 1
                epoch_end = min(epoch * steps_per_epoch, total_steps)
                permutation = permutation_of(loop)
                bar.set_description(f"epoch {epoch}/{cfg.epochs}", refresh=False)
                last_log_step, last_log_time = step, time.perf_counter()
                unfinished = collections.deque()  # metrics of dispatched steps the bar has not counted
                while step < epoch_end:
                    # Everything the step needs is already on the device: any implicit transfer is a bug.
                    with jax.transfer_guard("disallow"):
                        loop, metrics = train_step(loop, images, labels, permutation)
                    step += 1
                    # JAX dispatches steps asynchronously; counting them as dispatched made the bar
                    # race ahead, then stall at every log point. Count them as they finish, while
                    # keeping a few queued so the device never waits for Python.
                    unfinished.append(metrics)
                    while len(unfinished) > STEPS_IN_FLIGHT:
                        jax.block_until_ready(unfinished.popleft())
                        bar.update(1)
                    if step % cfg.log_every == 0 or step == epoch_end:
                        values = {k: np.asarray(v).tolist() for k, v in jax.device_get(metrics).items()}
                        bar.update(len(unfinished))
                        unfinished.clear()
                        now = time.perf_counter()
                        steps_per_sec = (step - last_log_step) / max(now - last_log_time, 1e-9)
                        last_log_step, last_log_time = step, now
                        bar.set_postfix({k: f"{np.mean(v):.3f}" for k, v in values.items()}, refresh=False)
                        check_finite(loop)
                        if on_log is not None:
                            on_log(step, epoch, values, steps_per_sec)
                    if on_save is not None and cfg.checkpoint_every and step % cfg.checkpoint_every == 0 \
                            and step < epoch_end:
                        check_finite(loop)
                        on_save(loop)
                    # Only here: `loop` is the new state and the step's record, if it has one, is
                    # written. (Raised before the log, a stop at a log step saved that step's
                    # checkpoint without its record, and the resumed run never wrote it.)
                    interrupt.raise_if_requested()
                if step == epoch * steps_per_epoch and on_epoch_end is not None:
                    with tqdm.external_write_mode():  # what it prints goes above the bar, not through it
                        on_epoch_end(epoch, loop)
                if on_save is not None:  # every epoch's end, and the run's last step
                    check_finite(loop)  # never a diverged state as the newest checkpoint
                    on_save(loop)
                interrupt.raise_if_requested()  # a signal that came during the epoch's end
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt(loop)
        raise
    check_finite(loop)
    return loop
