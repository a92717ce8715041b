"""The pictures a user asks for by name: ghost-wardrobe sheets, latent walks, epoch GIFs, exports,
and the MNIST-vs-Fashion comparison sheet. I/O lives here; the sampling maths is in sampling.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

from gan_lab import data, plotting, runs, sampling
from gan_lab.errors import UserError

WARDROBE_STYLES = 10  # columns of a wardrobe sheet: fixed styles held across the class rows
UNCONDITIONAL_GRID = 12  # an unconditional model's "wardrobe" is a 12 x 12 grid
COMPARE_SAMPLES = 10  # images per block of the comparison sheet (one per class where possible)


def free_path(path: Path) -> Path:
    """`path`, or path-2, path-3, ... if it exists: a new picture never replaces an old one."""
    path, n = Path(path), 2
    candidate = path
    while candidate.exists():
        candidate, n = path.with_name(f"{path.stem}-{n}{path.suffix}"), n + 1
    return candidate


def output_path(out, run_dir: Path, default_name: str) -> Path:
    if out is not None:
        out = Path(out)
        if out.exists():
            raise UserError(f"{out} already exists; choose another --out (nothing is overwritten)")
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    (run_dir / "sheets").mkdir(exist_ok=True)
    return free_path(run_dir / "sheets" / default_name)


def describe_run(cfg) -> str:
    return f"{cfg.model} on {cfg.dataset}, {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}, seed {cfg.seed}"


def wardrobe(run_dir: Path, seed: int, classes=None, out=None) -> Path:
    """Conditional models: a row per class (named), a column per fixed style. Unconditional: a large grid."""
    cfg, model, state = runs.load_trained(run_dir)
    sampling.check_labels(model, classes, cfg.model)
    key = jax.random.key(seed)
    path = output_path(out, Path(run_dir), f"wardrobe-seed{seed}.png")
    if model.conditional:
        classes = list(range(sampling.NUM_CLASSES)) if classes is None else list(classes)
        rows, _ = sampling.class_rows(model, state, key, WARDROBE_STYLES, classes)
        names = [data.CLASS_NAMES[cfg.dataset][c] for c in classes]
        title = f"Ghost wardrobe: {describe_run(cfg)} (each column one style)"
        return plotting.save_labelled_rows(rows, names, path, title)
    images = model.sample(state, key, UNCONDITIONAL_GRID**2)
    rows = np.asarray(images).reshape(UNCONDITIONAL_GRID, UNCONDITIONAL_GRID, *images.shape[1:])
    return plotting.save_labelled_rows(rows, [""] * UNCONDITIONAL_GRID, path, describe_run(cfg))


def interpolation(run_dir: Path, seed: int, out=None, n_rows: int = 8, n_steps: int = 12) -> Path:
    cfg, model, state = runs.load_trained(run_dir)
    rows, row_labels = sampling.interpolation_rows(model, state, jax.random.key(seed), n_rows, n_steps)
    names = [data.CLASS_NAMES[cfg.dataset][int(c)] for c in row_labels] if row_labels is not None else [""] * n_rows
    path = output_path(out, Path(run_dir), f"interpolate-seed{seed}.png")
    return plotting.save_labelled_rows(rows, names, path, f"Latent walks: {describe_run(cfg)}")


def epoch_gif(run_dir: Path, out=None) -> Path:
    frames = sorted(Path(run_dir).glob("samples/epoch_*.png"))
    if not frames:
        raise UserError(f"{run_dir} has no per-epoch grids (samples/epoch_*.png): train at least one epoch")
    return plotting.save_gif(frames, output_path(out, Path(run_dir), "epochs.gif"))


def export(run_dir: Path, n: int, seed: int, out, labels=None) -> Path:
    """n samples as uint8 (n, 28, 28) plus the labels used, in an .npz anyone can score."""
    cfg, model, state = runs.load_trained(run_dir)
    sampling.check_labels(model, labels, cfg.model)
    path = output_path(out, Path(run_dir), f"samples-{n}-seed{seed}.npz")
    images, used = sampling.export_samples(model, state, jax.random.key(seed), n, labels)
    np.savez_compressed(path, images=images, labels=used)
    return path


def find_finished_run(runs_dir: Path, model: str, dataset: str, epochs: int | None) -> Path | None:
    """The newest run of `model` on `dataset` (with `epochs`, if given) that trained to its end.

    A run that ended writes samples/final.png after its config.json (which a resume rewrites); one
    cut short by --steps or Ctrl-C does not count.
    """
    found = []
    for config_path in Path(runs_dir).glob("*/config.json"):
        try:
            saved = json.loads(config_path.read_text())["config"]
        except (OSError, ValueError, KeyError):
            continue
        run = config_path.parent
        final = run / "samples" / "final.png"
        finished = (final.exists() and final.stat().st_mtime >= config_path.stat().st_mtime
                    and saved.get("steps") is None)
        if finished and saved["model"] == model and saved["dataset"] == dataset and epochs in (None, saved["epochs"]):
            found.append((config_path.stat().st_mtime, str(run)))
    return Path(max(found)[1]) if found else None


def compare(models, datasets, runs_dir: Path, out: Path, train_settings: dict, data_dir=None, seed: int = 0,
            show_progress: bool = True) -> Path:
    """One sheet: a real-data row on top, then a row per model; one block per dataset; the same noise
    (and for conditional models the labels 0..9) in every block."""
    from gan_lab import config

    for dataset in datasets:
        if dataset not in data.DATASETS:
            raise UserError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(data.DATASETS)}")
    for model in models:
        config.make_config(model, {**train_settings, "dataset": datasets[0]})  # validates names and flags
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; choose another --out (nothing is overwritten)")

    blocks, key = {}, jax.random.key(seed)
    labels = np.arange(COMPARE_SAMPLES) % sampling.NUM_CLASSES
    for dataset in datasets:
        test_images, test_labels = data.load_split(dataset, "test", data_dir)
        first_of_each = [int(np.flatnonzero(test_labels == c)[0]) for c in labels]
        blocks[("real data", dataset)] = (data.to_model_range(test_images[first_of_each]), f"real {dataset}")
        for model_name in models:
            run = find_finished_run(runs_dir, model_name, dataset, train_settings.get("epochs"))
            if run is None:
                cfg = config.make_config(model_name, {**train_settings, "dataset": dataset})
                print(f"no finished {model_name} run on {dataset} in {runs_dir}: training one ({describe_run(cfg)})")
                stamp = time.strftime("%Y%m%d-%H%M%S")
                run = runs.train_run(cfg, out=free_path(Path(runs_dir) / f"{model_name}-{dataset}-{stamp}"),
                                     data_dir=data_dir, show_progress=show_progress)
            cfg, model, state = runs.load_trained(run)
            images = model.sample(state, key, COMPARE_SAMPLES, labels if model.conditional else None)
            blocks[(model_name, dataset)] = (images, f"{model_name} · {dataset} · {cfg.epochs} ep")
    out.parent.mkdir(parents=True, exist_ok=True)
    title = "Same noise, two datasets: " + " vs ".join(datasets)
    return plotting.save_comparison_sheet(blocks, ["real data", *models], list(datasets), out, title,
                                          ncol=COMPARE_SAMPLES)
