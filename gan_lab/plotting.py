"""Pictures: image grids as PNGs (pure reshape/transpose, then matplotlib) and loss curves."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.image
import numpy as np
import PIL.Image
from matplotlib.figure import Figure  # not pyplot: files only, and the importing program's backend is left alone


def to_unit_range(images) -> np.ndarray:
    """Model images in [-1, 1] (N, H, W[, 1]) -> float (N, H, W) in [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)


def image_grid(images, ncol: int, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """(N, H, W) in [0, 1] -> one (rows*(H+pad)+pad, ncol*(W+pad)+pad) image; missing cells are blank."""
    images = np.asarray(images)
    n, h, w = images.shape
    nrow = -(-n // ncol)
    cells = np.full((nrow * ncol, h + pad, w + pad), pad_value, dtype=np.float32)
    cells[:n, pad:, pad:] = images
    grid = cells.reshape(nrow, ncol, h + pad, w + pad).transpose(0, 2, 1, 3).reshape(nrow * (h + pad), ncol * (w + pad))
    return np.pad(grid, ((0, pad), (0, pad)), constant_values=pad_value)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling: crisp pixels, no blur."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_grid(images, path: Path, ncol: int = 8, scale: int = 3) -> Path:
    """Save model images (in [-1, 1]) as a grayscale PNG grid, white on black as the datasets are."""
    grid = image_grid(to_unit_range(images), ncol)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, upscale(grid, scale), cmap="gray", vmin=0.0, vmax=1.0)
    return path


def read_png(path: Path) -> np.ndarray:
    """A PNG as an (H, W, 3) uint8 array (e.g. for TensorBoard)."""
    return (matplotlib.image.imread(path)[..., :3] * 255).astype(np.uint8)


def grid_png(images, ncol: int, scale: int = 1) -> bytes:
    """Model images (in [-1, 1]) as the bytes of a grayscale PNG grid, for a server (no file)."""
    grid = upscale(image_grid(to_unit_range(images), ncol), scale)
    buffer = io.BytesIO()
    # Pillow (matplotlib's own image library) writes the 8-bit grayscale as is (imsave would colour-map it
    # to RGBA); light compression, since a server answers many small grids.
    PIL.Image.fromarray(np.round(grid * 255).astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def save_loss_curves(records: list[dict], path: Path, title: str) -> Path:
    """One panel per metric against the step, from metrics.jsonl records."""
    loss_curves_figure(records, title).savefig(path, dpi=110)
    return Path(path)


def loss_curves_figure(records: list[dict], title: str) -> Figure:
    """The figure of save_loss_curves."""
    keys = [k for k in records[0] if k not in ("step", "epoch", "steps_per_sec", "time", "session")] if records else []
    fig = Figure(figsize=(3.2 * max(1, len(keys)), 2.8))
    axes = fig.subplots(1, max(1, len(keys)), squeeze=False)
    steps = [r["step"] for r in records]
    for ax, key in zip(axes[0], keys):
        ax.plot(steps, [r[key] for r in records], lw=1.2)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _strip(images, ncol: int, pad: int = 2) -> np.ndarray:
    """Model images (N, 28, 28[, 1]) in [-1, 1] as one grid image in [0, 1]."""
    return image_grid(to_unit_range(images), ncol, pad=pad)


def save_labelled_rows(rows, row_names, path: Path, title: str, scale: int = 3) -> Path:
    """A sheet of image rows (R, C, 28, 28[, 1]) in [-1, 1], each row named on its left."""
    rows = np.asarray(rows)
    n_rows, n_cols = rows.shape[:2]
    grid = upscale(_strip(rows.reshape(n_rows * n_cols, *rows.shape[2:]), n_cols), scale)
    row_height = grid.shape[0] / n_rows
    label_width = 1.4 if max(len(name) for name in row_names) > 2 else 0.5
    dpi = 100
    fig_width, fig_height = grid.shape[1] / dpi + label_width + 0.2, grid.shape[0] / dpi + 0.6
    fig = Figure(figsize=(fig_width, fig_height), dpi=dpi)
    ax = fig.add_axes([(label_width) / fig_width, 0.1 / fig_height, grid.shape[1] / dpi / fig_width,
                       grid.shape[0] / dpi / fig_height])
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks([row_height * (i + 0.5) for i in range(n_rows)], list(row_names), fontsize=11)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.suptitle(title, y=1 - 0.12 / fig_height, va="top", fontsize=12)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return Path(path)


def save_comparison_sheet(blocks: dict, row_names, column_names, path: Path, title: str, ncol: int = 10,
                          scale: int = 2) -> Path:
    """A table of image blocks: blocks[(row, column)] = (images in [-1, 1], caption)."""
    first = next(iter(blocks.values()))[0]
    cell = upscale(_strip(first, ncol), scale)
    panel_w, panel_h = cell.shape[1] / 100, cell.shape[0] / 100 + 0.35
    fig = Figure(figsize=(panel_w * len(column_names) + 0.3, panel_h * len(row_names) + 0.5), dpi=100)
    axes = fig.subplots(len(row_names), len(column_names), squeeze=False)
    for r, row in enumerate(row_names):
        for c, column in enumerate(column_names):
            ax = axes[r][c]
            ax.axis("off")
            if (row, column) in blocks:
                images, caption = blocks[(row, column)]
                ax.imshow(upscale(_strip(images, ncol), scale), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(caption, fontsize=10)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100, facecolor="white")
    return Path(path)


def save_palette_png(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """`fig` as a 256-colour PNG: slightly lossy (a sheet of grey samples with coloured labels has a few
    more colours, so close greys merge), in less than half the bytes of matplotlib's RGBA (a sweep's
    40-grid sheet: ~0.8 MB -> ~0.36 MB)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, facecolor="white", format="png")
    buffer.seek(0)
    with PIL.Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256, method=PIL.Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return Path(path)


def save_gif(frame_paths, path: Path, seconds_per_frame: float = 0.5) -> Path:
    """Animate PNG frames (e.g. a run's per-epoch grids); the last frame lingers."""
    from PIL import Image

    frames = [Image.open(p).convert("L") for p in frame_paths]
    durations = [int(seconds_per_frame * 1000)] * (len(frames) - 1) + [2000]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return Path(path)
