"""gan_lab: GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax, through one shared jitted loop.

Importing it changes nothing in the importing process; the `gan_lab` command and the experiments
opt into gan_lab's process settings (gan_lab/runtime.py) where they start.

The library API is gan_lab/api.py: gan_lab.api.train, gan_lab.api.models, gan_lab.load and gan_lab.Run
(the last two also as gan_lab.api.load and gan_lab.api.Run). It is imported on first use, so
`import gan_lab` stays cheap and imports no JAX. train and models are not names of gan_lab itself:
those are its modules gan_lab/train.py (the training loop) and gan_lab/models/ (the model families).
"""

__version__ = "0.1.0"

API = ("Run", "load")  # gan_lab.api's names that are also gan_lab's


def __getattr__(name: str):
    # Only names no module of gan_lab has: `from gan_lab import X` asks here before importing gan_lab.X.
    if name == "api" or name in API:
        import importlib

        api = importlib.import_module("gan_lab.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "api", *API})
