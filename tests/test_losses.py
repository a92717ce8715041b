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
