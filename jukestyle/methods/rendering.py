"""Trained decoders in place of a base model's own: for every method that renders through one.

A trained decoder (``experiment=train_decoder``, ``experiment=train_transfer_decoder``) is a file that
holds one level's decoder of a base model (``jukebox.decoder_checkpoint``). A method that renders through
it builds, once per base model, a copy of the model with that decoder, and refuses a model whose codes
differ with one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jukestyle.errors import ConfigError
from jukestyle.jukebox import VQVAE
from jukestyle.jukebox.decoder_checkpoint import read_decoder, with_decoder
from jukestyle.jukebox.factory import BUNDLED_CHECKPOINT

# The bundled model's transfer decoder (checkpoints/transfer_decoder/TRANSFER_DECODER.md), named "bundled".
BUNDLED_TRANSFER_DECODER = BUNDLED_CHECKPOINT.parent / "transfer_decoder" / "transfer_decoder.pth.tar"


def transfer_decoder_file(decoder: str | Path) -> Path:
    """A transfer decoder's file: ``"bundled"`` names the bundled model's, anything else is a path."""
    return BUNDLED_TRANSFER_DECODER if str(decoder) == "bundled" else Path(decoder)


class DecoderFiles:
    """Trained decoder files, each read once, and base models with one of them in place of their own decoder
    (each built once per base model and file): what every method that renders through a trained decoder needs."""

    def __init__(self, files: Mapping[str, Path], owner: str) -> None:
        self.files = dict(files)
        self.contents = {path: read_decoder(path) for path in self.files.values()}
        self._models: dict[tuple[int, str], VQVAE] = {}  # (id(base model), file) -> model with that decoder
        levels = {int(contents["level"]) for contents in self.contents.values()}
        if len(levels) > 1:
            names = ", ".join(path.name for path in self.files.values())
            raise ConfigError(f"{owner}: the decoders {names} are of several levels {sorted(levels)}")
        self.level = levels.pop() if levels else None

    def level_for(self, owner: str, level: int | None, default: int) -> int:
        """The level a method works at: the decoders' (``level`` must agree), else ``level`` or ``default``."""
        if level is not None and self.level is not None and int(level) != self.level:
            raise ConfigError(
                f"{owner}: {next(iter(self.files.values()))} is a level-{self.level} decoder, not level {level}"
            )
        return self.level if self.level is not None else default if level is None else int(level)

    def rendering_model(self, model: VQVAE, path: Path) -> VQVAE:
        """``model`` with the trained decoder of ``path`` in place of its own (one line if its codes differ)."""
        key = (id(model), str(path))
        if key not in self._models:
            self._models[key] = with_decoder(model, path, self.contents[path])[0]
        return self._models[key]

    def validate(self, model: VQVAE) -> None:
        """Every decoder fits this model's codes, before any audio is processed."""
        for path in self.files.values():
            self.rendering_model(model, path)
