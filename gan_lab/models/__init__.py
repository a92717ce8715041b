"""Model families. Importing this package registers every built-in model (one @register line each)."""

from gan_lab.models import cgan, dcgan, vae  # noqa: F401
