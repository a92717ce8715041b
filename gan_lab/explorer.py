"""The browser explorer's core, free of any web framework: the runs under one directory, each trained
model loaded once with its decoder compiled once, and the pictures the page asks for, as PNG bytes.
gan_lab/serve.py puts this on HTTP; tests call it directly too.

Every parameter that reaches here is checked, and a bad one raises BadRequest (one line saying what is
wrong and what is allowed). Only directories found by scanning the runs directory are served: a name
with `..`, an absolute path or a symlink out of the directory is simply not one of them (NotFound).
"""

from __future__ import annotations

import io
import json
import math
import os
import threading
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_lab import config as config_lib
from gan_lab import data, files, plotting, registry, runs, sampling
from gan_lab.errors import UserError

MAX_IMAGES = 64  # images in one picture; every decode is padded to this batch, so a run compiles once
SLIDERS = 8  # the page's sliders move the first SLIDERS coordinates of the latent
MAX_SHIFT = 4.0  # a slider's reach; the prior has unit variance, so ±3 is already the edge of training
MAX_LATENT = 10.0  # |coordinate| of a latent given in a request
MAX_SCALE = 8  # pixels per image pixel in a downloaded PNG (the page scales in the browser instead)
MAX_CURVE_POINTS = 400  # records drawn in the loss curves of a long run (evenly thinned)
MAX_LOADED = 16  # models kept in memory with their compiled decoders; the least recently used goes first
SCAN_DEPTH = 4  # how deep under the runs directory runs are looked for (a study's jobs are one level down)


class BadRequest(UserError):
    """A parameter the explorer cannot honour (HTTP 400)."""


class NotFound(UserError):
    """No such run under the served directory (HTTP 404)."""


class RunUnreadable(UserError):
    """The run exists but cannot be drawn from: damaged, half-written, or no checkpoint yet (HTTP 409)."""


# ---------------------------------------------------------------------------------------------------
# Parameters: text from a URL -> checked values


def parse_vector(text: str | None, name: str, max_length: int, limit: float) -> np.ndarray | None:
    """'0.5,-1,2' -> float32 array; None or '' -> None. Every entry finite and within ±limit."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    if len(parts) > max_length:
        raise BadRequest(f"{name} has {len(parts)} numbers; at most {max_length}")
    try:
        values = np.array([float(part) for part in parts], np.float32)
    except ValueError:
        raise BadRequest(f"{name} must be comma-separated numbers, e.g. 0.5,-1.2") from None
    if not np.all(np.isfinite(values)):
        raise BadRequest(f"{name} contains NaN or infinity; give finite numbers")
    if np.any(np.abs(values) > limit):
        raise BadRequest(f"{name} has a number beyond ±{limit:g}")
    return values


def parse_latent(text: str | None, name: str, z_dim: int) -> np.ndarray:
    """A latent vector given in a request: exactly z_dim numbers."""
    latent = parse_vector(text, name, z_dim, MAX_LATENT)
    if latent is None or latent.shape[0] != z_dim:
        given = 0 if latent is None else latent.shape[0]
        raise BadRequest(f"{name} must have this run's {z_dim} numbers (got {given}); "
                         "take one from /latents")
    return latent


def check_label(model, label: int | None) -> None:
    if label is None:
        return
    if not model.conditional:
        raise BadRequest("this run's model is unconditional: it takes no class; leave class out")
    if not 0 <= label < data.NUM_CLASSES:
        raise BadRequest(f"class {label} is out of range: classes are 0..{data.NUM_CLASSES - 1}")


# ---------------------------------------------------------------------------------------------------
# The maths of a view: pure functions of the model's prior and the request


def shifted(latents, shift: np.ndarray | None):
    """Latents with the sliders' offsets added to their first coordinates."""
    if shift is None:
        return latents
    return latents.at[..., :shift.shape[0]].add(jnp.asarray(shift))


def grid_labels(model, n: int, label: int | None):
    """A conditional model's labels for an n-image grid: one class, or 0..9 in turn."""
    if not model.conditional:
        return None
    return jnp.full((n,), label, jnp.int32) if label is not None else jnp.arange(n, dtype=jnp.int32) % data.NUM_CLASSES


def prior_draws(model, seed: int, n: int):
    """The first n of the MAX_IMAGES latents of `seed`: a sample keeps its latent whatever the grid's size."""
    return model.prior(jax.random.key(seed), MAX_IMAGES)[:n]


# ---------------------------------------------------------------------------------------------------
# Runs on disk


def epoch_grids(run_dir: Path) -> list[Path]:
    """The run's per-epoch sample grids, oldest first."""
    return sorted((run_dir / "samples").glob("epoch_*.png"))


def run_status(run_dir: Path, cfg) -> str:
    """training (a process holds the run's lock), finished (its newest checkpoint is at its target:
    cfg.epochs, or cfg.steps if that comes first), or stopped (cut short, or its config unreadable
    (cfg None): `gan_lab train --resume` continues it)."""
    if files.RunLock.held_elsewhere(run_dir):
        return "training"
    step = runs.newest_step(run_dir)
    finished = cfg is not None and step is not None and step >= config_lib.total_steps(cfg)
    return "finished" if finished else "stopped"


def run_fd(run_dir: Path) -> float | None:
    """The run's Fréchet distance, if it was scored: `gan_lab eval`'s newest, else a study's mean over draws."""
    try:
        scored = json.loads((run_dir / "metrics.json").read_text())
        newest = max(scored.values(), key=lambda result: result["step"])
        return float(newest["fd"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        draws = json.loads((run_dir / "result.json").read_text())["scores"]
        return float(np.mean([draw["fd"] for draw in draws]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Loaded(NamedTuple):
    """A run's model at one checkpoint, with its decoder compiled for MAX_IMAGES latents."""

    run: runs.TrainedRun
    decode: object  # jitted (state, z (MAX_IMAGES, z_dim), labels or None) -> images

    def images(self, latents, labels=None) -> np.ndarray:
        """Decode up to MAX_IMAGES latents (padded to the compiled batch, the padding dropped)."""
        n = latents.shape[0]
        padded = jnp.zeros((MAX_IMAGES, latents.shape[1]), jnp.float32).at[:n].set(latents)
        padded_labels = None
        if labels is not None:
            padded_labels = jnp.zeros((MAX_IMAGES,), jnp.int32).at[:n].set(labels)
        return np.asarray(self.decode(self.run.state, padded, padded_labels))[:n]


class Catalog:
    """The runs under one directory, loaded on first use and reloaded when a newer checkpoint appears
    (so a run still training can be watched). Thread-safe: the server answers requests in threads."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise UserError(f"{root} is not a directory; pass the directory your runs are in (default runs/)")
        self._loaded: dict[str, tuple[int | None, Loaded | RunUnreadable]] = {}
        self._configs: dict[Path, tuple[int, object]] = {}  # run dir -> (config.json's mtime, its Config)
        self._conditional: dict[Path, bool] = {}
        self._lock = threading.Lock()

    def run_dirs(self) -> dict[str, Path]:
        """{run id (its path under the root, with /): directory} for every directory holding a config.json.
        Symlinked directories are not followed: nothing outside the root is ever served."""
        found = {}
        for directory, subdirectories, file_names in os.walk(self.root, followlinks=False):
            here = Path(directory)
            depth = len(here.relative_to(self.root).parts)
            if "config.json" in file_names and here != self.root:
                found[here.relative_to(self.root).as_posix()] = here
                subdirectories[:] = []  # a run's own folders (checkpoints, samples) hold no runs
            elif depth >= SCAN_DEPTH:
                subdirectories[:] = []
            else:
                subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        return found

    def path(self, run_id: str) -> Path:
        run_dir = self.run_dirs().get(run_id)
        # Belt and braces: whatever the scan found must resolve inside the root.
        if run_dir is None or not run_dir.resolve().is_relative_to(self.root):
            raise NotFound(f"no run {run_id!r} under the served directory; GET /api/runs lists them")
        return run_dir

    def describe(self, run_id: str, run_dir: Path) -> dict:
        """One row of the run list; a run whose config cannot be read is listed with its error.
        epochs and step are what the run has trained (its newest checkpoint); target_epochs and
        target_steps what it was asked to train (it stops at whichever comes first)."""
        step = runs.newest_step(run_dir)
        row = {"id": run_id, "step": step}
        try:
            cfg = self._config(run_dir)
        except Exception as err:  # noqa: BLE001 - a damaged run is listed with its error; the others are served
            row["status"] = run_status(run_dir, None)
            row["error"] = f"config.json unreadable ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
            return row
        row.update(status=run_status(run_dir, cfg), model=cfg.model, dataset=cfg.dataset,
                   epochs=float(runs.epochs_trained(cfg, step or 0)), target_epochs=cfg.epochs,
                   target_steps=config_lib.total_steps(cfg), seed=cfg.seed, fd=run_fd(run_dir),
                   conditional=self._conditional[run_dir], class_names=list(data.CLASS_NAMES[cfg.dataset]))
        return row

    def _config(self, run_dir: Path):
        """The run's config, read again only when config.json changes; notes whether its model is conditional."""
        stamp = (run_dir / "config.json").stat().st_mtime_ns
        cached = self._configs.get(run_dir)
        if cached is None or cached[0] != stamp:
            cfg = config_lib.load(run_dir / "config.json")
            self._conditional[run_dir] = registry.get(cfg.model).build(cfg).conditional
            cached = self._configs[run_dir] = (stamp, cfg)
        return cached[1]

    def describe_all(self) -> list[dict]:
        return [self.describe(run_id, run_dir) for run_id, run_dir in self.run_dirs().items()]

    def load(self, run_id: str) -> Loaded:
        """The run's model at its newest checkpoint (cached until a newer one is written)."""
        run_dir = self.path(run_id)
        step = runs.newest_step(run_dir)
        with self._lock:
            cached = self._loaded.pop(run_id, None)
            if cached is None or cached[0] != step:
                cached = (step, self._read(run_id, run_dir))
            self._loaded[run_id] = cached  # the most recently used last
            while len(self._loaded) > MAX_LOADED:
                self._loaded.pop(next(iter(self._loaded)))  # the least recently used run's model
        if isinstance(cached[1], RunUnreadable):
            raise cached[1]
        return cached[1]

    @staticmethod
    def _read(run_id: str, run_dir: Path) -> Loaded | RunUnreadable:
        try:
            run = runs.load_trained(run_dir)
        except Exception as err:  # noqa: BLE001 - any damage to one run is that run's error, not the server's
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            return RunUnreadable(f"run {run_id} cannot be drawn from: {reason}")
        loaded = Loaded(run, jax.jit(run.model.decode))
        loaded.images(jnp.zeros((1, run.model.z_dim)), grid_labels(run.model, 1, None))  # compile now, once
        return loaded

    # -----------------------------------------------------------------------------------------------
    # The pictures

    def latents(self, run_id: str, seed: int, n: int, shift: np.ndarray | None) -> np.ndarray:
        """The latents of a grid (what the page holds when a sample is picked), sliders applied."""
        check_count(n)
        model = self.load(run_id).run.model
        return np.asarray(shifted(prior_draws(model, seed, n), shift))

    def grid(self, run_id: str, seed: int, n: int, label: int | None, shift: np.ndarray | None) -> np.ndarray:
        check_count(n)
        loaded = self.load(run_id)
        check_label(loaded.run.model, label)
        latents = shifted(prior_draws(loaded.run.model, seed, n), shift)
        return loaded.images(latents, grid_labels(loaded.run.model, n, label))

    def wardrobe(self, run_id: str, latent_text: str, shift: np.ndarray | None) -> np.ndarray:
        """One held style (a latent) drawn as every class."""
        loaded = self.load(run_id)
        if not loaded.run.model.conditional:
            raise BadRequest("this run's model is unconditional: it has no classes to show a style as")
        latent = shifted(jnp.asarray(parse_latent(latent_text, "z", loaded.run.model.z_dim)), shift)
        classes = jnp.arange(data.NUM_CLASSES, dtype=jnp.int32)
        return loaded.images(jnp.tile(latent, (data.NUM_CLASSES, 1)), classes)

    def walk(self, run_id: str, start_text: str, end_text: str, steps: int, label: int | None,
             shift: np.ndarray | None) -> np.ndarray:
        """`steps` images on the spherical path from one latent to another (one class for conditional models)."""
        check_count(steps, "steps", low=2)
        loaded = self.load(run_id)
        model = loaded.run.model
        check_label(model, label)
        start = parse_latent(start_text, "z0", model.z_dim)
        end = parse_latent(end_text, "z1", model.z_dim)
        t = jnp.linspace(0.0, 1.0, steps)[:, None]
        path = shifted(sampling.slerp(jnp.asarray(start)[None], jnp.asarray(end)[None], t), shift)
        labels = jnp.full((steps,), 0 if label is None else label, jnp.int32) if model.conditional else None
        return loaded.images(path, labels)

    def training_view(self, run_id: str) -> dict:
        """What a run that is still training shows: its status, step, newest epoch grid and curves."""
        run_dir = self.path(run_id)
        grids = epoch_grids(run_dir)
        records = runs.training_records(run_dir)
        try:
            cfg = self._config(run_dir)
        except Exception:  # noqa: BLE001 - a damaged run is still watched; its status is then "stopped"
            cfg = None
        return {"status": run_status(run_dir, cfg), "step": records[-1]["step"] if records else 0,
                "epoch": records[-1]["epoch"] if records else 0,
                "newest_grid": grids[-1].name if grids else None, "records": len(records)}

    def newest_epoch_grid(self, run_id: str) -> bytes:
        grids = epoch_grids(self.path(run_id))
        if not grids:
            raise NotFound(f"run {run_id} has no epoch grid yet (the first is written at the end of epoch 1)")
        return grids[-1].read_bytes()

    def loss_curves(self, run_id: str) -> bytes:
        run_dir = self.path(run_id)
        records = runs.training_records(run_dir)
        if not records:
            raise NotFound(f"run {run_id} has logged no training metrics yet")
        every = math.ceil(len(records) / MAX_CURVE_POINTS)
        figure = plotting.loss_curves_figure(records[::every], run_id)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()


def check_count(n: int, name: str = "n", low: int = 1) -> None:
    if not low <= n <= MAX_IMAGES:
        raise BadRequest(f"{name} must be {low}..{MAX_IMAGES} (got {n})")


def png(images: np.ndarray, columns: int, scale: int = 1) -> bytes:
    """Model images as one PNG grid (the page enlarges it with crisp pixels; a download asks for scale)."""
    if not 1 <= scale <= MAX_SCALE:
        raise BadRequest(f"scale must be 1..{MAX_SCALE} (got {scale})")
    return plotting.grid_png(images, columns, scale)
