"""The shared loop on real data: it learns, it stops on divergence, seeds matter."""

import os
import re
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_lab import registry, trainer
from gan_lab.registry import Model
from tests.helpers import TINY_SUBSET, real_subset, tiny_config


def test_dcgan_mean_image_moves_toward_the_data(data_dir):
    """A short real run on MNIST: the generated mean image gets much closer to the data's mean image."""
    images, labels = real_subset(data_dir, "mnist", 4096)
    # lr 1e-3 instead of the paper's 2e-4 so that 192 steps are enough to see it learn.
    cfg = tiny_config("dcgan", width=0.25, batch_size=64, epochs=3, lr=1e-3)
    model = registry.get("dcgan").build(cfg)
    data_mean = np.asarray(images.mean(0))
    key = jax.random.key(7)

    sample = jax.jit(model.sample, static_argnums=2)  # as sampling runs it (eagerly, each primitive compiles)

    def distance_to_data_mean(state):
        return float(np.abs(np.asarray(sample(state, key, 512).mean(0)) - data_mean).mean())

    start = trainer.init_loop_state(model, cfg.seed)
    before = distance_to_data_mean(start.model)
    end = trainer.fit(model, cfg, images, labels, show_progress=False)
    after = distance_to_data_mean(end.model)
    assert int(end.step) == 3 * (4096 // 64)
    assert after < 0.25 * before, (before, after)


def test_non_finite_loss_stops_the_run_naming_the_step(data_dir):
    images, labels = real_subset(data_dir, "mnist", 64)

    def step(state, images, labels, key):
        # A loss that turns into NaN at the fourth step (state counts the calls).
        return state + 1, {"loss": jnp.where(state >= 3, jnp.nan, 1.0)}

    nan_at_step_3 = Model(init=lambda key: jnp.zeros((), jnp.int32), step=step, z_dim=2, conditional=False,
                          decode=lambda state, z, labels=None: jnp.zeros((z.shape[0], 28, 28, 1)))
    # Log and checkpoint points at every step but the NaN's: the check before a save must catch it.
    cfg = tiny_config("dcgan", batch_size=8, epochs=2, log_every=5, checkpoint_every=1)
    saved, interrupted = [], []
    with pytest.raises(trainer.TrainingDiverged, match="at step 3;") as diverged:
        trainer.fit(nan_at_step_3, cfg, images, labels, show_progress=False,
                  on_save=lambda loop: saved.append(int(loop.step)), on_interrupt=interrupted.append)
    assert saved == [1, 2, 3]  # never a state that went through the NaN step
    assert "start a new run with a lower --lr or another --seed" in str(diverged.value)
    assert "try" not in str(diverged.value) and interrupted == []


def test_different_seeds_differ_and_steps_limit_is_respected(data_dir):
    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)
    model = registry.get("dcgan").build(tiny_config("dcgan"))
    runs = [trainer.fit(model, tiny_config("dcgan", seed=seed, steps=3), images, labels, show_progress=False)
            for seed in (0, 1)]
    assert [int(r.step) for r in runs] == [3, 3]
    a, b = (jax.tree.leaves(r.model.g_params)[0] for r in runs)
    assert not np.array_equal(a, b)


def test_seeds_trained_together_match_seeds_trained_alone(data_dir):
    """vmap over a seed axis: one compiled step for several seeds, each as if trained alone."""
    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)
    cfg = tiny_config("dcgan", steps=4, log_every=1)
    model = registry.get("dcgan").build(cfg)
    together_log = []
    together = trainer.fit(model, cfg, images, labels, seeds=[3, 4], show_progress=False,
                         on_log=lambda step, epoch, values, rate: together_log.append(values["d_loss"]))
    for index, seed in enumerate([3, 4]):
        alone_log = []
        alone = trainer.fit(model, tiny_config("dcgan", steps=4, log_every=1, seed=seed), images, labels,
                          show_progress=False, on_log=lambda step, epoch, values, rate: alone_log.append(values["d_loss"]))
        assert np.allclose([row[index] for row in together_log], alone_log, atol=1e-5)
        key, sample = jax.random.key(0), jax.jit(model.sample, static_argnums=2)
        own = np.asarray(sample(alone.model, key, 16))
        shared = np.asarray(sample(jax.tree.map(lambda leaf: leaf[index], together.model), key, 16))
        assert np.allclose(own, shared, atol=1e-4)


@pytest.mark.parametrize("signum", trainer.DEFERRED_SIGNALS, ids=lambda signum: signal.Signals(signum).name)
def test_a_stop_at_a_log_step_is_logged_before_its_checkpoint(data_dir, signum):
    """Each stopping signal is raised between steps, after the step's record: the checkpoint a stop saves
    is never newer than the last record (else the resumed run would never write that step's record)."""
    previous = signal.getsignal(signum)
    if previous is signal.SIG_IGN:  # a background job (CI) inherits SIGINT and SIGHUP ignored, and the loop
        # leaves an ignored signal alone: the test gives it the handler a terminal's job has, then restores it
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    try:
        stopped_at_a_log_step(data_dir, signum)
    finally:
        signal.signal(signum, previous)


def stopped_at_a_log_step(data_dir, signum):
    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)
    cfg = tiny_config("dcgan", epochs=1, log_every=1)
    model = registry.get("dcgan").build(cfg)
    logged, saved = [], []

    def on_log(step, epoch, values, steps_per_sec):
        logged.append(step)
        if step == 3:
            os.kill(os.getpid(), signum)  # arrives while the loop is between log and save

    with pytest.raises(KeyboardInterrupt):
        trainer.fit(model, cfg, images, labels, on_log=on_log, on_interrupt=lambda loop: saved.append(int(loop.step)),
                  show_progress=False)
    assert saved == [3] and logged == [1, 2, 3]


def test_one_progress_bar_counts_the_whole_run_from_the_step_it_starts_at(data_dir, capsys):
    """The bar's total is the run's steps (so its rate and ETA are the run's), the epoch is in its
    description, and a resumed run's bar starts at the resumed step."""
    images, labels = real_subset(data_dir, "mnist", 64)
    counting = Model(init=lambda key: jnp.zeros((), jnp.int32), z_dim=2, conditional=False,
                     step=lambda state, images, labels, key: (state + 1, {"loss": jnp.float32(0.5)}),
                     decode=lambda state, z, labels=None: jnp.zeros((z.shape[0], 28, 28, 1)))
    cfg = tiny_config("dcgan", batch_size=16, epochs=2)  # 4 steps per epoch
    first = trainer.fit(counting, tiny_config("dcgan", batch_size=16, epochs=2, steps=3), images, labels)
    capsys.readouterr()
    epochs_ended = []
    trainer.fit(counting, cfg, images, labels, loop=first, on_epoch_end=lambda epoch, loop: epochs_ended.append(epoch))
    bar = capsys.readouterr().err
    assert bar.count("\n") == 1  # one bar, left on its own line at the end
    renders = [render for render in bar.strip().split("\r") if render]
    assert renders[0].startswith("epoch 1/2:  38%|") and "| 3/8 [" in renders[0]
    assert renders[-1].startswith("epoch 2/2: 100%|") and "| 8/8 [" in renders[-1]
    assert re.search(r"\| 8/8 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(step/s|s/step), loss=0\.500\]$", renders[-1]), renders[-1]
    assert epochs_ended == [1, 2]
