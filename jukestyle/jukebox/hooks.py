"""Forward hooks on the VQ-VAE's modules, and the names that choose them: one helper for every reader
and writer of inner features.

Methods transform decoder features, Gram optimisation records encoder features, the frequency-response
probe records channel activations: all install their hooks with ``forward_hooks``, so that hooks are
always removed, and the CPU kernels know which modules are watched (a fused kernel never makes the inner
outputs that a hook on its convolutions would see; ``is_observed`` tells the layers to run unfused).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from jukestyle.errors import ConfigError

FeatureHook = Callable[[torch.Tensor], "torch.Tensor | None"]

# module -> how many ``forward_hooks`` blocks watch it now
_watchers: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()


class StopForward(Exception):
    """Raised by a hook that has seen the last features wanted: ``forward_hooks`` ends the forward pass quietly."""


def is_observed(*modules: nn.Module) -> bool:
    """True while a ``forward_hooks`` block watches one of these modules."""
    return any(_watchers.get(module, 0) for module in modules)


@contextlib.contextmanager
def forward_hooks(
    outputs: Mapping[nn.Module, FeatureHook] | None = None, inputs: Mapping[nn.Module, FeatureHook] | None = None
) -> Iterator[None]:
    """Within the block, ``outputs[m](output)`` runs after each module ``m`` and ``inputs[m](input)``
    before it (on its first argument); a hook's return value, unless None, replaces what it was given.

    A hook may raise ``StopForward`` to end the forward pass: the block then ends without an error.
    The hooks are removed on exit, also when the forward pass raises.
    """
    outputs, inputs = dict(outputs or {}), dict(inputs or {})
    handles = []
    watched = [*outputs, *inputs]
    for module in watched:
        _watchers[module] = _watchers.get(module, 0) + 1
    try:
        for module, hook in outputs.items():
            handles.append(module.register_forward_hook(lambda _, args, output, f=hook: f(output)))
        for module, hook in inputs.items():
            handles.append(module.register_forward_pre_hook(lambda _, args, f=hook: _replace_first(args, f(args[0]))))
        with contextlib.suppress(StopForward):
            yield
    finally:
        for handle in handles:
            handle.remove()
        for module in watched:
            _watchers[module] -= 1


def _replace_first(args: tuple, first: torch.Tensor | None) -> tuple | None:
    return None if first is None else (first, *args[1:])


def select_names(
    requested: str | Sequence[str],
    valid: Sequence[str],
    what: str,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """An alias (e.g. ``"all"``) or a list of names -> the names in ``valid``'s order (execution order).

    An unknown name raises one line: ``what`` with the name filled in (``"hook point {!r} at level 2"``)
    and every valid choice.
    """
    aliases = aliases or {}
    if isinstance(requested, str) and requested in aliases:
        return list(aliases[requested])
    names = [requested] if isinstance(requested, str) else list(requested)
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ConfigError(f"unknown {what.format(unknown[0])}; valid: {', '.join([*aliases, *valid])}")
    return [name for name in valid if name in set(names)]
