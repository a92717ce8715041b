"""No host work in the hot loop: the step runs under jax.transfer_guard("disallow") (train.fit does
that for every step) and compiles once for a whole run, across epochs and across a resume."""

import logging

import jax
import numpy as np
import pytest

from gan_lab import checkpoint, registry, train
from tests.helpers import real_subset, tiny_config


class CompileLog(logging.Handler):
    """Collects JAX's 'Compiling <name>' log lines (emitted with jax.log_compiles)."""

    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.names.append(message.split()[1])


@pytest.fixture
def compile_log():
    handler = CompileLog()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    with jax.log_compiles(True):
        yield handler
    logger.removeHandler(handler)


def test_one_compilation_across_epochs_and_resume(data_dir, tmp_path, compile_log):
    images, labels = real_subset(data_dir, "mnist", 128)
    cfg = tiny_config("dcgan", epochs=2)
    model = registry.get("dcgan").build(cfg)
    manager = checkpoint.manager(tmp_path)
    saved = []

    def save(epoch, loop):
        checkpoint.save(manager, int(loop.step), loop)
        saved.append(epoch)

    first = train.fit(model, cfg, images, labels, on_epoch_end=save, show_progress=False)
    manager.close()
    restored = checkpoint.restore_latest(tmp_path, jax.eval_shape(lambda: train.init_loop_state(model, cfg.seed)))
    resumed_cfg = tiny_config("dcgan", epochs=3)
    final = train.fit(model, resumed_cfg, images, labels, loop=restored, show_progress=False)

    assert saved == [1, 2] and int(first.step) == 8 and int(final.step) == 12
    assert compile_log.names.count("jit(train_step)") == 1, compile_log.names


def test_an_implicit_transfer_inside_the_step_is_refused(data_dir):
    images, labels = real_subset(data_dir, "mnist", 64)
    model = registry.get("dcgan").build(tiny_config("dcgan"))

    def step_with_host_data(state, batch_images, batch_labels, key):
        state, metrics = model.step(state, batch_images, batch_labels, key)
        return state, {**metrics, "host": jax.numpy.asarray(np.float32(1.0)) + 0}

    leaky = model._replace(step=step_with_host_data)
    loop = train.init_loop_state(leaky, 0)
    step = train.make_train_step(leaky, 0, 32, 2)
    permutation = train.make_epoch_permutation(0, 64, 2)(loop.step)
    with jax.transfer_guard("disallow"):
        step(loop, images, labels, permutation)  # traced constants are fine: they are compiled in
    with pytest.raises(Exception, match="[Dd]isallowed"), jax.transfer_guard("disallow"):
        jax.jit(lambda x: x + 1)(np.ones(3, np.float32))  # a host array per call is not
