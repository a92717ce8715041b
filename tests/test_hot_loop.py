"""No host work in the hot loop: the step runs under jax.transfer_guard("disallow") (trainer.fit does
that for every step) and compiles once for a whole run, across epochs and across a resume."""

import logging

import jax
import pytest

from gan_lab import checkpoint, registry, trainer
from tests.helpers import TINY_SUBSET, real_subset, tiny_config


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


def test_one_compilation_across_epochs_and_resume_with_no_implicit_transfer(data_dir, tmp_path, compile_log):
    images, labels = real_subset(data_dir, "mnist", TINY_SUBSET)
    cfg = tiny_config("dcgan", epochs=2)
    model = registry.get("dcgan").build(cfg)
    manager = checkpoint.manager(tmp_path)
    saved = []

    def save(loop):
        with jax.transfer_guard("allow"):  # the callback is outside the hot loop
            checkpoint.save(manager, int(loop.step), loop)
        saved.append(int(loop.step))

    fresh = trainer.init_loop_state(model, cfg.seed)
    with jax.transfer_guard("disallow"):  # the whole loop: explicit device_put/device_get only
        first = trainer.fit(model, cfg, images, labels, loop=fresh, on_save=save, show_progress=False)
    manager.close()
    restored = checkpoint.restore_latest(tmp_path, jax.eval_shape(lambda: trainer.init_loop_state(model, cfg.seed))).state
    resumed_cfg = tiny_config("dcgan", epochs=3)
    with jax.transfer_guard("disallow"):
        final = trainer.fit(model, resumed_cfg, images, labels, loop=restored, show_progress=False)

    assert saved == [8, 16] and int(first.step) == 16 and int(final.step) == 24
    assert compile_log.names.count("jit(train_step)") == 1, compile_log.names
