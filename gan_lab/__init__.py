"""gan_lab: GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax, through one shared jitted loop."""

# Before anything imports JAX's backend: XLA reads XLA_FLAGS when it starts, and the allocator
# settings must precede the threads XLA creates (see gan_lab/runtime.py).
from gan_lab import runtime  # noqa: F401  (applies its settings on import)

__version__ = "0.1.0"
