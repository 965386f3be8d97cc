"""Read and write VQ-VAE checkpoints in the official Jukebox format.

The official ``vqvae.pth.tar`` is a pickled dict ``{"hps": Hyperparams, "model":
state_dict, "step": int, ...}`` whose state-dict keys may carry DataParallel's
``module.`` prefix. ``Hyperparams`` is Jukebox's ``dict`` subclass; loading
always uses ``torch.load(weights_only=True)``, with that one class mapped to a
plain ``dict`` through an explicit allow-list instead of turning the safe
unpickler off.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from jukestyle.errors import CheckpointError
from jukestyle.fileio import atomic_path
from jukestyle.jukebox.config import VQVAEConfig

# Classes an official checkpoint pickles besides tensors and plain containers,
# each mapped to a safe stand-in.
HPARAMS_CLASS = "jukebox.hparams.Hyperparams"


class _HyperparamsAsDict:
    """Stand-in for ``jukebox.hparams.Hyperparams``: unpickles to a plain dict.

    The safe unpickler creates objects with ``cls.__new__(cls)`` and then fills
    them item by item, which it allows only on exact dicts; returning a fresh
    ``dict`` from ``__new__`` gives it one.
    """

    def __new__(cls, *args: object) -> dict:  # type: ignore[misc]
        return {}


_ALLOWED_GLOBALS = [(_HyperparamsAsDict, HPARAMS_CLASS)]

_MAX_LISTED = 3


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (weights only) into plain Python objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_ALLOWED_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        message = str(error)
        refused = re.search(r"GLOBAL ([\w.]+)", message)
        if refused:
            raise CheckpointError(
                f"{path}: refuses to unpickle {refused.group(1)}; a checkpoint may hold only tensors, "
                f"plain containers and {HPARAMS_CLASS}"
            ) from None
        if "WeightsUnpickler error" in message:  # torch's own advice (unpickle with weights_only off) is not ours
            raise CheckpointError(
                f"{path}: not a torch checkpoint (a pickle that torch.load cannot read safely)"
            ) from None
        with path.open("rb") as handle:
            head = handle.read(2)
        # torch.save writes a zip (PK) or, in the legacy format, a pickle (protocol byte 0x80); anything else
        # was read as a pickle by the legacy loader, whose error (e.g. KeyError '101') says nothing to a user
        if head and not head.startswith((b"PK", b"\x80")):
            raise CheckpointError(
                f"{path}: not a torch checkpoint (neither the zip nor the legacy format torch.save writes)"
            ) from None
        first_line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint, torch.load failed: {first_line[:200]}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'model' state dict, found {type(checkpoint).__name__}")
    return checkpoint


def state_dict_of(checkpoint: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint (official format or a bare state dict), without ``module.`` prefixes."""
    is_bare_state_dict = checkpoint and all(isinstance(value, torch.Tensor) for value in checkpoint.values())
    state = checkpoint if is_bare_state_dict else checkpoint.get("model")
    if not isinstance(state, dict) or not state:
        found = ", ".join(map(str, checkpoint)) or "nothing"
        raise CheckpointError(
            f"{path}: no model weights found (expected a non-empty 'model' state dict; found {found})"
        )
    cleaned = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: model entry {key!r} is a {type(value).__name__}, not a tensor")
        cleaned[key.removeprefix("module.")] = value
    return cleaned


def training_stages(checkpoint: dict) -> list[dict]:
    """The trainings a checkpoint went through, oldest first: the stages it was fine-tuned from (``history``)
    and its own (``step``, ``train_seconds``, ``training``), for a checkpoint written by the project's trainer."""
    stages = [dict(stage) for stage in checkpoint.get("history", [])]
    if checkpoint.get("training"):
        stages.append(
            {
                "step": int(checkpoint.get("step", 0)),
                "train_seconds": float(checkpoint.get("train_seconds", 0.0)),
                "training": dict(checkpoint["training"]),
            }
        )
    return stages


def config_of(checkpoint: dict, fallback: VQVAEConfig) -> VQVAEConfig:
    """The architecture described by a checkpoint's ``hps`` (missing keys from ``fallback``)."""
    hps = checkpoint.get("hps")
    return VQVAEConfig.from_hparams(hps, fallback) if isinstance(hps, dict) else fallback


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else "")


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Copy ``state`` into ``model`` after checking keys, shapes and values; one clear error otherwise."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} where the model has {tuple(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys ({_listed(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys ({_listed(unexpected)})")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} wrong shapes ({_listed(wrong_shape)})")
    if problems:
        raise CheckpointError(f"{path}: does not fit the VQ-VAE: {'; '.join(problems)}")
    non_finite = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if non_finite:
        raise CheckpointError(f"{path}: non-finite values in {_listed(non_finite)}")
    model.load_state_dict(state)


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, step: int = 0, **extra: object) -> None:
    """Write ``model`` in the official format (``hps`` as a plain dict), atomically."""
    checkpoint = {"hps": model.config.to_hparams(), "model": model.state_dict(), "step": int(step), **extra}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def level_prefixes(level: int) -> tuple[str, ...]:
    """State-dict key prefixes of one level's encoder, decoder and codebook."""
    return (f"encoders.{level}.", f"decoders.{level}.", f"bottleneck.level_blocks.{level}.")


def combine_levels(base: str | os.PathLike, donors: dict[int, str | os.PathLike], path: str | os.PathLike) -> None:
    """Write ``base`` with the levels of ``donors`` ({level: checkpoint}) taken from them: weights, codebook and
    its EMA state. Levels trained in separate runs (or on separate machines) become one checkpoint; its
    training stages are those of every part, each listed once, in order."""
    combined = read_checkpoint(base)
    state = dict(state_dict_of(combined, base))
    ema = dict(combined.get("codebook_ema", {}))
    stages = training_stages(combined)
    trained = set(combined.get("trained_levels", []))
    for level, donor_path in donors.items():
        donor = read_checkpoint(donor_path)
        if donor.get("hps") != combined.get("hps"):
            raise CheckpointError(f"{donor_path}: another architecture than {base}; levels cannot be combined")
        if level not in donor.get("trained_levels", []):
            raise CheckpointError(f"{donor_path}: level {level} was not trained there")
        donor_state = state_dict_of(donor, donor_path)
        for key, value in donor_state.items():
            if key.startswith(level_prefixes(level)):
                state[key] = value
        if level in donor.get("codebook_ema", {}):
            ema[level] = donor["codebook_ema"][level]
        stages += [stage for stage in training_stages(donor) if stage not in stages]
        trained.add(level)
    last = stages[-1] if stages else {"step": int(combined.get("step", 0)), "train_seconds": 0.0, "training": {}}
    checkpoint = {
        **combined,
        "model": state,
        "codebook_ema": ema,
        "trained_levels": sorted(trained),
        "history": stages[:-1],
        "step": last["step"],
        "train_seconds": last["train_seconds"],
        "training": last["training"],
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
