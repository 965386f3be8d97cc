"""The one forward-hook helper (jukestyle.jukebox.hooks): hooks see and replace features, always go away,
stop a forward pass early on request, and make the fused kernels step aside for the modules they watch."""

from __future__ import annotations

import pytest
import torch

from jukestyle.errors import ConfigError
from jukestyle.jukebox.hooks import StopForward, forward_hooks, is_observed, select_names
from jukestyle.jukebox.layers import ResidualConvBlock


def audio(seconds: float = 0.1) -> torch.Tensor:
    return torch.sin(torch.linspace(0, 2000, int(44100 * seconds))).view(1, 1, -1)


def test_hooks_replace_features_and_are_removed_also_after_an_error(tiny_model):
    block = tiny_model.decoder_block(2, tiny_model.decoder_blocks(2)[0])
    x = audio()
    with torch.inference_mode():
        plain = tiny_model.reconstruct(x, 2)
        with forward_hooks({block: lambda output: output * 0.0}):
            silenced = tiny_model.reconstruct(x, 2)
        with pytest.raises(RuntimeError, match="boom"), forward_hooks({block: _raise}):
            tiny_model.reconstruct(x, 2)
        again = tiny_model.reconstruct(x, 2)
    assert not torch.allclose(plain, silenced)
    assert torch.equal(plain, again) and not block._forward_hooks and not is_observed(block)


def _raise(output: torch.Tensor) -> None:
    raise RuntimeError("boom")


def test_stop_forward_ends_the_pass_quietly_after_the_last_wanted_features(tiny_model):
    names = tiny_model.encoder_blocks(2)
    first, later = tiny_model.encoder_block(2, names[0]), tiny_model.encoder_block(2, names[-1])
    seen = []

    def record(output: torch.Tensor) -> None:
        seen.append(output.shape)
        raise StopForward

    with torch.inference_mode(), forward_hooks({first: record, later: seen.append}):
        tiny_model.encode_latent(audio(), 2)
    assert len(seen) == 1  # the block after the first one never ran


def test_watched_convolutions_inside_a_residual_block_run_unfused_and_give_the_same_output():
    """A fused kernel never makes the inner convolution's output: a hook on it must still see it."""
    torch.manual_seed(0)
    block = ResidualConvBlock(8, 16, dilation=2)
    x = torch.randn(1, 8, 300)
    _, dilated, _, _ = block.model
    seen = []
    with torch.inference_mode():
        fused = block(x)
        with forward_hooks({dilated: seen.append}):
            assert is_observed(dilated)
            watched = block(x)
    assert len(seen) == 1 and seen[0].shape == (1, 16, 300)
    torch.testing.assert_close(watched, fused, atol=1e-5, rtol=1e-5)


def test_names_are_selected_in_execution_order_and_unknown_ones_list_the_valid_ones():
    valid = ["a", "b", "c"]
    assert select_names(["c", "a"], valid, "block {!r}") == ["a", "c"]
    assert select_names("all", valid, "block {!r}", {"all": valid}) == valid
    with pytest.raises(ConfigError, match=r"^unknown block 'z' at level 1; valid: all, a, b, c$"):
        select_names(["a", "z"], valid, "block {!r} at level 1", {"all": valid})
