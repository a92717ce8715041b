"""The pictures a user asks for by name: ghost-wardrobe sheets, latent walks, epoch GIFs, exports,
and the MNIST-vs-Fashion comparison sheet. I/O lives here; the sampling maths is in sampling.py."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from gan_lab import data, files, plotting, runs, sampling
from gan_lab.errors import UserError

WARDROBE_STYLES = 10  # columns of a wardrobe sheet: fixed styles held across the class rows
PLAIN_GRID = 12  # `sample RUN` of a model without classes: a 12 x 12 grid of samples
COMPARE_SAMPLES = 10  # images per block of the comparison sheet (one per class where possible)


def output_path(out, run_dir: Path, default_name: str) -> tuple[Path, bool]:
    """(where to write, whether a numbered name may be chosen instead if it exists). The suffix the
    writer needs is added first, so `--out samples` is checked as samples.npz, the file it becomes."""
    suffix = Path(default_name).suffix
    if out is None:
        return run_dir / "sheets" / default_name, True
    out = Path(out)
    if out.suffix.lower() != suffix:
        if out.suffix:
            raise UserError(f"--out {out}: this output is a {suffix} file; name it ...{suffix}")
        out = out.with_name(out.name + suffix)
    if out.exists():
        raise UserError(f"{out} already exists; choose another --out (nothing is overwritten)")
    return out, False


def write_output(out, run_dir: Path, default_name: str, write) -> Path:
    """Write a new file with write(path): never over an existing one (a default name gets -2, -3, ...)."""
    path, numbered = output_path(out, Path(run_dir), default_name)
    return (files.write_new_numbered if numbered else files.write_new)(path, write)


def has_rows(model) -> bool:
    """Whether a wardrobe can be drawn: a row per class, or per value of infoGAN's categorical code."""
    return model.conditional or any(code.kind == "categorical" for code in model.codes)


def wardrobe(run_dir: Path, seed: int, classes=None, out=None) -> Path:
    """`--sheet wardrobe`: a row per class (named) or per categorical code value, a column per fixed style."""
    cfg, model = runs.load_model(run_dir)  # refused before any checkpoint is read
    if not has_rows(model):
        raise UserError(f"{cfg.model} is unconditional: it has no classes to draw a wardrobe of; draw latent "
                        "walks with --sheet interpolate, a grid of samples with no --sheet, or train a conditional "
                        "model such as cgan")
    return write_wardrobe(runs.load_trained(run_dir), run_dir, seed, classes, out)


def overview(run_dir: Path, seed: int, classes=None, out=None) -> Path:
    """`sample RUN` with no output flag: the wardrobe where the model has one, else a plain grid."""
    run = runs.load_trained(run_dir)
    if has_rows(run.model):
        return write_wardrobe(run, run_dir, seed, classes, out)
    sampling.check_labels(run.model, classes, run.cfg.model)
    images = sampling.decoder(run.model)(run.state, run.model.prior(jax.random.key(seed), PLAIN_GRID**2), None)
    rows = np.asarray(images).reshape(PLAIN_GRID, PLAIN_GRID, *images.shape[1:])
    return write_output(out, run_dir, f"grid-seed{seed}.png",
                        lambda path: plotting.save_labelled_rows(rows, [""] * PLAIN_GRID, path, run.describe()))


def write_wardrobe(run: runs.TrainedRun, run_dir: Path, seed: int, classes, out) -> Path:
    model, state = run.model, run.state
    sampling.check_labels(model, classes, run.cfg.model)
    key = jax.random.key(seed)
    if model.conditional:
        classes = list(range(sampling.NUM_CLASSES)) if classes is None else list(classes)
        rows, _ = sampling.class_rows(model, state, key, WARDROBE_STYLES, classes)
        names = [data.CLASS_NAMES[run.cfg.dataset][c] for c in classes]
        title = f"Ghost wardrobe: {run.describe()} (each column one style)"
    else:  # infoGAN: its categorical code plays the class (unsupervised: rows are unnamed values)
        code = next(code for code in model.codes if code.kind == "categorical")
        rows = sampling.code_rows(model, state, key, WARDROBE_STYLES, code, np.eye(code.size))
        names = [f"{code.name} {value}" for value in range(code.size)]
        title = f"Code wardrobe: {run.describe()} (each row one code value, each column one z)"
    return write_output(out, run_dir, f"wardrobe-seed{seed}.png",
                        lambda path: plotting.save_labelled_rows(rows, names, path, title))


def code_walks(run_dir: Path, seed: int, out=None, rows_per_code: int = 5, n_steps: int = 10) -> Path:
    """Each continuous latent code (Model.codes) walked from -1 to 1 along a row, the rest of the latent
    fixed per row; every code's rows start from the same latents."""
    run = runs.load_trained(run_dir)
    continuous = [code for code in run.model.codes if code.kind == "uniform"]
    if not continuous:
        raise UserError(f"{run.cfg.model} has no continuous latent codes to vary; --sheet codes is for models "
                        f"that have them (infogan)")
    values = np.linspace(-1.0, 1.0, n_steps)[:, None]
    walks = [np.swapaxes(np.asarray(sampling.code_rows(run.model, run.state, jax.random.key(seed), rows_per_code,
                                                       code, values)), 0, 1) for code in continuous]
    names = [f"{code.name}: -1 to 1" for code in continuous for _ in range(rows_per_code)]
    return write_output(out, run_dir, f"codes-seed{seed}.png", lambda path: plotting.save_labelled_rows(
        np.concatenate(walks), names, path, f"Continuous codes: {run.describe()}"))


def interpolation(run_dir: Path, seed: int, out=None, n_rows: int = 8, n_steps: int = 12) -> Path:
    run = runs.load_trained(run_dir)
    rows, row_labels = sampling.interpolation_rows(run.model, run.state, jax.random.key(seed), n_rows, n_steps)
    names = ([data.CLASS_NAMES[run.cfg.dataset][int(c)] for c in row_labels] if row_labels is not None
             else [""] * n_rows)
    return write_output(out, run_dir, f"interpolate-seed{seed}.png",
                        lambda path: plotting.save_labelled_rows(rows, names, path, f"Latent walks: {run.describe()}"))


def manifold(run_dir: Path, out=None, n: int = 20) -> Path:
    """A model with a 2-D latent (e.g. `train vae --z-dim 2`): its decodings over a grid of the latent."""
    run = runs.load_trained(run_dir)
    if run.model.conditional:
        raise UserError(f"{run.cfg.model} is conditional: its manifold depends on the class; draw a wardrobe instead")
    rows = sampling.latent_manifold(run.model, run.state, n)
    return write_output(out, run_dir, "manifold.png", lambda path: plotting.save_labelled_rows(
        rows, [""] * n, path, f"Latent manifold: {run.describe()}"))


def epoch_gif(run_dir: Path, out=None) -> Path:
    runs.check_run_dir(run_dir)
    frames = sorted(Path(run_dir).glob("samples/epoch_*.png"))
    if not frames:
        raise UserError(f"{run_dir} has no per-epoch grids (samples/epoch_*.png): train at least one epoch")
    return write_output(out, run_dir, "epochs.gif", lambda path: plotting.save_gif(frames, path))


def export(run_dir: Path, n: int, seed: int, out, labels=None) -> Path:
    """n samples as uint8 (n, 28, 28) plus the labels used, in an .npz anyone can score."""
    run = runs.load_trained(run_dir)
    sampling.check_labels(run.model, labels, run.cfg.model)
    output_path(out, Path(run_dir), "samples.npz")  # a taken --out fails before the sampling, not after
    images, used = sampling.export_samples(run.model, run.state, jax.random.key(seed), n, labels)
    return write_output(out, run_dir, f"samples-{n}-seed{seed}.npz",
                        lambda path: np.savez_compressed(path, images=images, labels=used))


def compare(trained_runs: dict, models, datasets, out: Path, data_dir=None, seed: int = 0) -> Path:
    """One sheet: a real-data row on top, then a row per model; one block per dataset; the same noise
    (and for conditional models the labels 0..9) in every block. `trained_runs` maps (model, dataset)
    to a run directory (runs.find_or_train makes them)."""
    blocks, key = {}, jax.random.key(seed)
    labels = np.arange(COMPARE_SAMPLES) % sampling.NUM_CLASSES
    for dataset in datasets:
        test_images, test_labels = data.load_split(dataset, "test", data_dir)
        first_of_each = [int(np.flatnonzero(test_labels == c)[0]) for c in labels]
        blocks[("real data", dataset)] = (data.to_model_range(test_images[first_of_each]), f"real {dataset}")
        for model_name in models:
            trained = runs.load_trained(trained_runs[(model_name, dataset)])
            images = trained.model.sample(trained.state, key, COMPARE_SAMPLES,
                                          labels if trained.model.conditional else None)
            caption = f"{model_name} · {dataset} · {runs.epochs_trained(trained.cfg, trained.step)} ep"
            blocks[(model_name, dataset)] = (images, caption)
    title = "Same noise, two datasets: " + " vs ".join(datasets)
    return files.write_new(out, lambda path: plotting.save_comparison_sheet(
        blocks, ["real data", *models], list(datasets), path, title, ncol=COMPARE_SAMPLES))
