"""gan_lab: GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax, through one shared jitted loop."""

__version__ = "0.1.0"
