"""gan_lab: GANs and VAEs on MNIST and Fashion-MNIST in JAX/Flax, through one shared jitted loop.

Importing it changes nothing in the importing process; the `gan_lab` command and the experiments
opt into gan_lab's process settings (gan_lab/runtime.py) where they start.

The library API is gan_lab/api.py: gan_lab.train, gan_lab.load, gan_lab.list_models and gan_lab.Run
(also as gan_lab.api.train, ...). It is imported on first use, so `import gan_lab` stays cheap and
imports no JAX. The training loop itself is the module gan_lab/trainer.py.
"""

__version__ = "0.1.0"

API = ("Run", "load", "train", "list_models")  # gan_lab.api's names that are also gan_lab's


def __getattr__(name: str):
    # Only names no module of gan_lab has: `from gan_lab import X` asks here before importing gan_lab.X.
    if name == "api" or name in API:
        import importlib

        api = importlib.import_module("gan_lab.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "api", *API})
