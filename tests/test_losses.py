import jax.numpy as jnp
import numpy as np
import pytest

from gan_lab import losses


def test_bce_against_hand_computed_values():
    real, fake = jnp.array([0.0, 2.0]), jnp.array([0.0, -1.0])
    # -log sigmoid(x) = log(1 + e^-x); -log(1 - sigmoid(x)) = log(1 + e^x)
    expected_d = np.mean([np.log(2), np.log1p(np.exp(-2))]) + np.mean([np.log(2), np.log1p(np.exp(-1))])
    assert float(losses.bce_d_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    expected_g = np.mean([np.log(2), np.log1p(np.exp(1))])
    assert float(losses.non_saturating_g_loss(fake)) == pytest.approx(expected_g, rel=1e-6)


def test_bce_stays_finite_for_extreme_logits():
    big = jnp.array([1e4, -1e4])
    assert np.isfinite(float(losses.bce_d_loss(big, -big)))
    assert np.isfinite(float(losses.non_saturating_g_loss(-big)))


def test_hinge_and_least_squares_values():
    real, fake = jnp.array([0.5, 2.0]), jnp.array([-2.0, 0.0])
    assert float(losses.hinge_d_loss(real, fake)) == pytest.approx((0.5 + 0.0) / 2 + (0.0 + 1.0) / 2)
    assert float(losses.hinge_g_loss(fake)) == pytest.approx(1.0)
    assert float(losses.least_squares_d_loss(real, fake)) == pytest.approx(0.5 * (0.25 + 1.0) / 2 + 0.5 * 4.0 / 2)
    assert float(losses.least_squares_g_loss(fake)) == pytest.approx(0.5 * (9.0 + 1.0) / 2)


def test_minimax_g_loss_is_log_one_minus_d_and_saturates():
    import jax

    fake = jnp.array([0.0, -3.0])
    # log(1 - sigmoid(x)) = -log(1 + e^x)
    assert float(losses.minimax_g_loss(fake)) == pytest.approx(-np.mean([np.log(2), np.log1p(np.exp(-3))]), rel=1e-6)
    # Where D rejects a fake confidently (logit -10), the minimax gradient all but vanishes and the
    # non-saturating one does not: the reason the collections' "GAN" trains with the latter.
    confident = jnp.array([-10.0])
    assert abs(float(jax.grad(losses.minimax_g_loss)(confident)[0])) < 1e-4
    assert abs(float(jax.grad(losses.non_saturating_g_loss)(confident)[0])) > 0.99


def test_lsgan_reports_and_penalises_d_raw_output_not_a_sigmoid():
    from gan_lab.models.gan import logit_losses

    d_loss, _ = logit_losses("lsgan")
    real, fake = jnp.array([3.0, 1.0]), jnp.array([-1.0, 0.5])
    loss, metrics, _ = d_loss(real, fake, None, ())
    assert float(loss) == pytest.approx(0.5 * (4.0 + 0.0) / 2 + 0.5 * (1.0 + 0.25) / 2)
    assert float(metrics["d_real"]) == pytest.approx(2.0) and float(metrics["d_fake"]) == pytest.approx(-0.25)
    _, bce_metrics, _ = logit_losses("bce")[0](real, fake, None, ())
    assert 0.0 < float(bce_metrics["d_real"]) < 1.0  # a probability for the cross-entropy losses
