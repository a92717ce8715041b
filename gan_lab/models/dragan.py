"""DRAGAN (Kodali, Abernethy, Hays & Kira 2017, "On Convergence and Stability of GANs").

DCGAN's non-saturating cross-entropy GAN (models/gan.py's parts, one D update per G update) plus a
gradient penalty in a small region around the real data, where mode collapse starts (sharp
gradients of D near real points): lambda (||grad D(xhat)||_2 - 1)^2 at xhat = x + alpha (x_p - x),
x_p = x + 0.5 std(x) U[0, 1), alpha ~ U[0, 1) per sample (models/penalties.py, as the authors'
code and the PyTorch collection draw the points; the TF one draws alpha per pixel).

lambda = 10, the paper's and its authors' code's. The PyTorch "generative model collection" uses
0.25, but it takes the gradient of D's *sigmoid* output, which is sigmoid'(logit) <= 1/4 times the
logit's gradient: another quantity, so its weight does not carry over. Here the penalty is on D's
logit, as the paper defines D's gradient, and the paper's weight goes with it.

D keeps its BatchNorm, as in the collections: dragan is then dcgan plus the penalty and nothing
else, so the two compare one change at a time. With batch statistics, D(xhat_i) depends on the other
points of the batch, and the "per-sample" gradient is that of the summed outputs (what the
collections' autograd.grad(ones) takes); the WGAN critics, whose penalty is meant as a per-sample
Lipschitz constraint, drop BatchNorm instead. The paper trains several architectures and
optimisers; here the optimiser is DCGAN's (Adam 2e-4, b1 0.5, b2 0.999, the collections' too),
batch 64, z = 62, 25 epochs. --loss picks another loss pair under the same penalty (default bce).

    python -m gan_lab train --model dragan --dataset mnist
"""

from __future__ import annotations

from gan_lab import losses, nets
from gan_lab.models.adversarial import build_model
from gan_lab.models.gan import dcgan_parts
from gan_lab.models.penalties import GP_WEIGHT, gradient_penalty, perturb_real
from gan_lab.registry import register


@register("dragan", "DRAGAN: DCGAN (non-saturating BCE, BN in D) + gradient penalty (lambda 10) around the "
          "real data", settings={"width": nets.WIDTH, "loss": losses.LOSS, "gp_weight": GP_WEIGHT},
          lr=2e-4, b1=0.5, b2=0.999, batch_size=64, z_dim=62, epochs=25)
def build(cfg):
    parts = dcgan_parts(cfg, conditional=False)
    return build_model(parts._replace(penalty=gradient_penalty(perturb_real, cfg.gp_weight)))
