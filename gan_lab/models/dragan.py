"""DRAGAN (Kodali, Abernethy, Hays & Kira 2017, "On Convergence and Stability of GANs").

DCGAN's non-saturating cross-entropy GAN (models/gan.py's parts, one D update per G update) plus a
gradient penalty in a small region around the real data, where mode collapse starts (sharp
gradients of D near real points): lambda (||grad D(xhat)||_2 - 1)^2 at xhat = x + alpha (x_p - x),
x_p = x + 0.5 std(x) U[0, 1), alpha ~ U[0, 1) per sample (models/penalties.py, as the authors'
code and the PyTorch collection draw the points; the TF one draws alpha per pixel).

Default lambda = 0.25, not the paper's 10 (`--preset paper` sets 10). Measured at the study's CPU
budget (1 epoch, width 0.5, seed 0; experiments/defaults_search.py, results in
experiments/results/defaults_search.md): lambda 10 draws one class on MNIST (FD 1564.6, 6.3x
dcgan's) and 3.1x dcgan's FD on Fashion-MNIST; lambda 1 reaches 536.3 / 181.6 (2.2x / 1.2x);
lambda 0.25 reaches 285.9 / 144.8 (1.15x / 0.94x dcgan's), every class on both. At initialisation
D's gradient norm around the data is ~1e-5, so the penalty starts at lambda itself: 10 against a
cross-entropy of ~1.4, and D spends the first epoch shaping its gradient instead of telling real from
fake. 0.25 is also the collections' weight; the PyTorch collection takes the gradient of D's
*sigmoid* output (<= 1/4 of the logit's), the TF collection, as here, of the logit.

D keeps its BatchNorm, as in the collections: dragan is then dcgan plus the penalty and nothing
else, so the two compare one change at a time. With batch statistics, D(xhat_i) depends on the other
points of the batch, and the "per-sample" gradient is that of the summed outputs (what the
collections' autograd.grad(ones) takes); the WGAN critics, whose penalty is meant as a per-sample
Lipschitz constraint, drop BatchNorm instead. The paper trains several architectures and
optimisers; here the optimiser is DCGAN's (Adam 2e-4, b1 0.5, b2 0.999, the collections' too),
batch 64, z = 62, 25 epochs. --loss picks another loss pair under the same penalty (default bce).

    python -m gan_lab train dragan --dataset mnist
"""

from __future__ import annotations

from gan_lab import losses, nets
from gan_lab.models.adversarial import G_LR_SCALE, adam_pair, build_model
from gan_lab.models.gan import dcgan_parts
from gan_lab.models.penalties import GP_WEIGHT, gradient_penalty, perturb_real
from gan_lab.registry import register


@register("dragan", "DRAGAN: DCGAN (non-saturating BCE, BN in D) + gradient penalty (lambda 0.25) around the "
          "real data", settings={"width": nets.WIDTH, "loss": losses.LOSS, "gp_weight": GP_WEIGHT,
                                 "g_lr_scale": G_LR_SCALE},
          presets={"paper": {"gp_weight": 10.0}},
          gp_weight=0.25, lr=2e-4, b1=0.5, b2=0.999, batch_size=64, z_dim=62, epochs=25)
def build(cfg):
    parts = dcgan_parts(cfg, conditional=False)
    g_tx, d_tx = adam_pair(cfg)
    return build_model(parts._replace(g_tx=g_tx, d_tx=d_tx, penalty=gradient_penalty(perturb_real, cfg.gp_weight)))
