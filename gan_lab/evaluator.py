"""gan_lab's own evaluator networks: one small CNN classifier per dataset, shipped with the package.

Published FID/KID/IS use Inception-v3 features; those weights cannot be downloaded here, and an
ImageNet network is a poor judge of 28x28 digits anyway. So gan_lab measures generated images in
the feature space of its own classifiers instead. Numbers computed with them are comparable only to
numbers computed with the *same* weights: every report prints `fingerprint(dataset)`, the first 12
hex digits of the SHA-256 of the weight file, and is never comparable to published FID/KID/IS.

The network (NHWC): conv3x3 32 - pool - conv3x3 64 - pool - conv3x3 128 - pool -> 3x3x128
-> FC 256 + ReLU (the features) -> dropout -> FC 10 (the logits). Each conv is followed by BatchNorm
and ReLU. Pooling before each wider conv keeps a training step cheap on a CPU; the third pool keeps
the FC layer, and so each shipped weight file, near 1.5 MB.

Weights: `evaluator_weights/<dataset>.npz`, a flat dict of float32 arrays keyed by parameter path
("conv1/kernel", "bn1/mean", ...), written by `python experiments/train_evaluators.py`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gan_lab import nets
from gan_lab.data import DATASETS, NUM_CLASSES
from gan_lab.errors import UserError
from gan_lab.registry import Model

FEATURE_DIM = 256
CHUNK_SIZE = 1000  # images per forward pass: bounds activation memory at any N
WEIGHTS_DIR = Path(__file__).parent / "evaluator_weights"  # module constant so tests can point it elsewhere
REGENERATE = "python experiments/train_evaluators.py"
BACKGROUND = -1.0  # a black pixel in the model range [-1, 1]


class EvaluatorNet(nnx.Module):
    """images (N, 28, 28, 1) in [-1, 1] -> (features (N, 256), logits (N, 10))."""

    def __init__(self, rngs: nnx.Rngs, dropout_rate: float = 0.5):
        # No conv biases: BatchNorm's shift makes them redundant.
        conv = functools.partial(nnx.Conv, kernel_size=(3, 3), padding="SAME", use_bias=False, rngs=rngs)
        # momentum 0.9 rather than flax's 0.99: a few epochs are enough for running stats to settle.
        norm = functools.partial(nnx.BatchNorm, momentum=0.9, epsilon=1e-5, rngs=rngs)
        self.conv1, self.bn1 = conv(1, 32), norm(32)
        self.conv2, self.bn2 = conv(32, 64), norm(64)
        self.conv3, self.bn3 = conv(64, 128), norm(128)
        self.fc = nnx.Linear(3 * 3 * 128, FEATURE_DIM, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)
        self.head = nnx.Linear(FEATURE_DIM, NUM_CLASSES, rngs=rngs)

    def __call__(self, images, train: bool, dropout_key=None):
        frozen = not train
        h = images
        for conv, norm in ((self.conv1, self.bn1), (self.conv2, self.bn2)):
            h = max_pool_2x2(jax.nn.relu(norm(conv(h), use_running_average=frozen)))  # 28 -> 14 -> 7
        h = jax.nn.relu(self.bn3(self.conv3(h), use_running_average=frozen))
        # 3x3 windows at stride 2 take 7 -> 3 and see every position; 2x2 ones would drop a row and a column.
        h = nnx.max_pool(h, (3, 3), (2, 2))
        features = jax.nn.relu(self.fc(h.reshape(h.shape[0], -1)))
        logits = self.head(self.dropout(features, deterministic=frozen, rngs=dropout_key))
        return features, logits


def max_pool_2x2(h):
    """2x2 max pooling at stride 2 (H and W even) as a reshape and a max.

    Measured on XLA:CPU: its gradient is about 1.3x faster than nnx.max_pool's select-and-scatter,
    and the forward pass 1.6x. Same values.
    """
    n, height, width, c = h.shape
    return h.reshape(n, height // 2, 2, width // 2, 2, c).max(axis=(2, 4))


def abstract_net():
    """(graphdef, state of ShapeDtypeStructs): the structure without allocating any weights."""
    return nnx.split(nnx.eval_shape(lambda: EvaluatorNet(nnx.Rngs(0))))


# --- weight files ----------------------------------------------------------------------

def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")


def weights_path(dataset: str) -> Path:
    _check_dataset(dataset)
    return WEIGHTS_DIR / f"{dataset}.npz"


def flat_arrays(state: nnx.State) -> dict[str, np.ndarray]:
    """A module's state as {"conv1/kernel": array, ...}: the layout of the weight files."""
    return {"/".join(map(str, path)): np.asarray(variable[...]) for path, variable in nnx.to_flat_state(state)}


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz that np.load reads, with the same bytes for the same arrays.

    np.savez stamps each zip member with the current time, so retraining to identical weights would
    still change the fingerprint; fixed timestamps and sorted names make it depend on the weights only.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buffer.getvalue()


def save_weights(state: nnx.State, path: Path) -> None:
    """Atomically write a trained EvaluatorNet's state (write beside, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_bytes(npz_bytes(flat_arrays(state)))
    partial.replace(path)


def fingerprint(dataset: str) -> str:
    """First 12 hex digits of the SHA-256 of the shipped weight file: which evaluator made a number."""
    return _digest(_read_weight_bytes(dataset))


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:12]


def _unusable(dataset: str, path: Path, problem: str) -> UserError:
    return UserError(f"evaluator weights for {dataset} at {path} {problem}; regenerate them with `{REGENERATE}`")


def _read_weight_bytes(dataset: str) -> bytes:
    path = weights_path(dataset)
    try:
        return path.read_bytes()
    except OSError as err:
        raise _unusable(dataset, path, f"cannot be read ({err.strerror or err})") from None


def _parse_weights(dataset: str, raw: bytes) -> nnx.State:
    """Weight-file bytes -> an EvaluatorNet state; every array's name and shape is checked."""
    path = weights_path(dataset)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise _unusable(dataset, path, f"are not a readable .npz ({' '.join(str(err).split())})") from None
    _, abstract_state = abstract_net()
    flat = []
    for key_path, variable in nnx.to_flat_state(abstract_state):
        name = "/".join(map(str, key_path))
        if name not in arrays:
            raise _unusable(dataset, path, f"lack the array {name!r}")
        if arrays[name].shape != variable.shape:
            raise _unusable(dataset, path, f"hold {name!r} with shape {arrays[name].shape}, "
                                           f"expected {variable.shape}")
        flat.append((key_path, variable.replace(jnp.asarray(arrays[name], variable.dtype))))
    return nnx.from_flat_state(flat)


# --- inference -------------------------------------------------------------------------

def check_images(images) -> None:
    """The Model contract's images: float (N, 28, 28, 1) in [-1, 1]."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (28, 28, 1):
        raise ValueError(f"expected images of shape (N, 28, 28, 1), got {tuple(images.shape)}")
    # uint8 pixels would be read as values up to 255 and silently give nonsense features.
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise TypeError(f"expected float images in [-1, 1], got {images.dtype}; "
                        f"convert uint8 pixels with gan_lab.data.to_model_range")


class Evaluator:
    """A loaded evaluator: `features` and `logits` of any number of images, CHUNK_SIZE at a time."""

    def __init__(self, dataset: str, state: nnx.State, fingerprint: str):
        self.dataset = dataset
        self.fingerprint = fingerprint
        graphdef, _ = abstract_net()
        self._state = state

        @jax.jit
        def forward(state, images):  # one chunk, eval mode
            return nnx.merge(graphdef, state)(images, train=False)

        self._forward = forward

    def features_and_logits(self, images) -> tuple[np.ndarray, np.ndarray]:
        """images float32 (N, 28, 28, 1) in [-1, 1] -> (features (N, 256), logits (N, 10)), on the host."""
        check_images(images)
        images = np.asarray(images, np.float32)
        n = images.shape[0]
        if n == 0:
            return np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        features, logits = [], []
        for start in range(0, n, CHUNK_SIZE):
            chunk = images[start:start + CHUNK_SIZE]
            # Pad the last chunk to full size so one compiled shape serves every call.
            padded = np.pad(chunk, ((0, CHUNK_SIZE - len(chunk)), (0, 0), (0, 0), (0, 0)))
            chunk_features, chunk_logits = jax.device_get(self._forward(self._state, padded))
            features.append(chunk_features[:len(chunk)])
            logits.append(chunk_logits[:len(chunk)])
        return np.concatenate(features), np.concatenate(logits)

    def features(self, images) -> np.ndarray:
        """(N, 256): the penultimate layer (after its ReLU), the space FD, KD and precision/recall use."""
        return self.features_and_logits(images)[0]

    def logits(self, images) -> np.ndarray:
        """(N, 10) class logits."""
        return self.features_and_logits(images)[1]


_loaded: dict[tuple[str, str], Evaluator] = {}  # (dataset, fingerprint) -> Evaluator, compiled once


def load_evaluator(dataset: str) -> Evaluator:
    """The shipped evaluator for `dataset`; a UserError naming the fix if its weights are missing or bad."""
    raw = _read_weight_bytes(dataset)
    # Keyed by content, so a rewritten weight file is never served from a stale cache.
    key = (dataset, _digest(raw))
    if key not in _loaded:
        _loaded[key] = Evaluator(dataset, _parse_weights(dataset, raw), key[1])
    return _loaded[key]


# --- training (driven by experiments/train_evaluators.py through trainer.fit) ---------------

class ClassifierState(NamedTuple):
    params: Any
    rest: Any  # BatchNorm statistics
    opt_state: Any


def random_shifts(images, key, max_shift: int):
    """Each image translated by its own random (dy, dx) in [-max_shift, max_shift], background filled."""
    n = images.shape[0]
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    padded = jnp.pad(images, pad, constant_values=BACKGROUND)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), images.shape[1:])

    return jax.vmap(crop)(padded, offsets)


def classifier_model(lr: float, total_steps: int, max_shift: int, weight_decay: float,
                     dropout_rate: float = 0.5) -> Model:
    """The evaluator's training as the Model contract's init and step, so trainer.fit can run it.

    fit uses nothing of a Model but `init` and `step`; a classifier has nothing to decode.
    """
    make_net = functools.partial(EvaluatorNet, dropout_rate=dropout_rate)
    graphdef = nets.graphdef_of(lambda: make_net(nnx.Rngs(0)))  # the rate is static: part of the graphdef
    # One-cycle cosine schedule: reaches high accuracy in the few epochs a CPU allows.
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, total_steps // 20), total_steps)
    tx = optax.adamw(schedule, weight_decay=weight_decay)

    def init(key) -> ClassifierState:
        _, params, rest = nets.split_module(make_net(nnx.Rngs(key)))
        return ClassifierState(params, rest, tx.init(params))

    def step(state: ClassifierState, images, labels, key):
        shift_key, dropout_key = jax.random.split(key)
        images = random_shifts(images, shift_key, max_shift) if max_shift else images

        def loss_fn(params):
            (_, logits), rest = nets.apply(graphdef, params, state.rest, images, train=True,
                                           dropout_key=dropout_key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, (logits, rest)

        (loss, (logits, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
        return ClassifierState(params, rest, opt_state), {"loss": loss, "accuracy": accuracy}

    return Model(init=init, step=step, decode=None, z_dim=0, conditional=False)


def trained_state(state: ClassifierState) -> nnx.State:
    """The parameters and BatchNorm statistics of a ClassifierState, as one module state to save."""
    graphdef, _ = abstract_net()
    return nnx.state(nnx.merge(graphdef, state.params, state.rest))
