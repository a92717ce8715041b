"""gan_lab: GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax, through one shared jitted loop.

Importing it changes nothing in the importing process; the `gan_lab` command and the experiments
opt into gan_lab's process settings (gan_lab/runtime.py) where they start.
"""

__version__ = "0.1.0"
