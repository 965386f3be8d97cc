"""Parity with the original Jukebox code (the ``jukebox-infer`` package, used only here).

The same random weights go into both implementations; decoded audio must be equal
to 1e-5 at every level, and the codes identical except at near-ties: our
convolutions run in a channels-last layout on CPU (layers.py), which rounds
differently, so a latent almost equidistant from two codes may pick the other. Since the reference accepts
our state dict with ``strict=True``, this also proves that the official
checkpoint's keys and shapes fit our model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jukebox_infer.hparams import setup_hparams
from jukebox_infer.vqvae.bottleneck import BottleneckBlock as ReferenceCodebook
from jukebox_infer.vqvae.vqvae import VQVAE as ReferenceVQVAE
from signals import harmonic_tone

from jukestyle.jukebox import VQVAE, build_vqvae
from jukestyle.jukebox.bottleneck import Codebook

ATOL = 1e-5


def reference_vqvae(model: VQVAE) -> ReferenceVQVAE:
    """Jukebox's own VQ-VAE built from its hyperparameter set "vqvae", holding ``model``'s weights."""
    hps = setup_hparams("vqvae", {"sample_length": 1 << 20})
    reference = ReferenceVQVAE(
        input_shape=(hps.sample_length, 1),
        levels=hps.levels,
        downs_t=hps.downs_t,
        strides_t=hps.strides_t,
        emb_width=hps.emb_width,
        l_bins=hps.l_bins,
        mu=hps.l_mu,
        commit=hps.commit,
        spectral=hps.spectral,
        multispectral=hps.multispectral,
        multipliers=hps.hvqvae_multipliers,
        width=hps.width,
        depth=hps.depth,
        m_conv=hps.m_conv,
        dilation_growth_rate=hps.dilation_growth_rate,
        dilation_cycle=hps.dilation_cycle,
        reverse_decoder_dilation=hps.vqvae_reverse_decoder_dilation,
    )
    reference.load_state_dict(model.state_dict(), strict=True)
    return reference.eval()


@pytest.fixture(scope="module")
def models() -> tuple[VQVAE, ReferenceVQVAE]:
    ours = build_vqvae("jukebox_5b", seed=1234)
    return ours, reference_vqvae(ours)


@pytest.fixture(scope="module")
def music() -> torch.Tensor:
    """Two 1.5 s clips: a C4 tone and a two-note chord with noise, shape (2, 1, T)."""
    rng = np.random.default_rng(0)
    first = harmonic_tone(261.63, 1.5)
    second = 0.6 * harmonic_tone(329.63, 1.5) + 0.4 * harmonic_tone(392.0, 1.5)
    second = second + 0.02 * rng.standard_normal(second.shape).astype(np.float32)
    return torch.from_numpy(np.stack([first, second])).unsqueeze(1)


def test_state_dicts_are_identical(models):
    ours, reference = models
    our_state, reference_state = ours.state_dict(), reference.state_dict()
    assert list(our_state) == list(reference_state)
    for key, value in reference_state.items():
        assert our_state[key].shape == value.shape, key


@pytest.mark.parametrize("level", [0, 1, 2])
def test_codes_and_audio_match_reference(models, music, level):
    ours, reference = models
    with torch.no_grad():
        reference_codes = reference.encode(music.permute(0, 2, 1), start_level=level, end_level=level + 1)[0]
        codes = ours.encode(music, level)
        assert codes.unique().numel() > 20  # the comparison is not between constant code streams
        differ = codes != reference_codes
        assert differ.float().mean() < 0.02
        if differ.any():  # near-ties only: both codes are (almost) as close to our latent
            latent = ours.encode_latent(music, level).permute(0, 2, 1)[differ]
            codebook = ours.bottleneck[level].k
            ours_distance = (latent - codebook[codes[differ]]).norm(dim=-1)
            reference_distance = (latent - codebook[reference_codes[differ]]).norm(dim=-1)
            torch.testing.assert_close(ours_distance, reference_distance, rtol=5e-3, atol=1e-4)
        reference_audio = reference.decode([reference_codes], start_level=level, end_level=level + 1)
        audio = ours.decode(reference_codes, level)
    assert audio.shape == reference_audio.permute(0, 2, 1).shape
    assert torch.max(torch.abs(audio - reference_audio.permute(0, 2, 1))).item() <= ATOL
    assert audio.std() > 1e-3  # not a silent output


def test_ema_training_step_matches_reference():
    """Codebook init, EMA update, dead-code restart and commitment loss, step by step."""
    ours, reference = Codebook(256, 16, mu=0.9), ReferenceCodebook(256, 16, 0.9)
    generator = torch.Generator().manual_seed(0)
    batches = [
        torch.randn(2, 16, 40, generator=generator) * scale + shift for scale, shift in [(1, 0), (2, 0.5), (0.5, -1)]
    ]
    torch.manual_seed(7)
    reference_steps = [reference(batch, update_k=True) for batch in batches]
    torch.manual_seed(7)
    our_steps = [ours(batch, update=True) for batch in batches]
    for (codes, quantised, commit_loss, metrics), step in zip(reference_steps, our_steps, strict=True):
        assert torch.equal(codes, step.codes)
        assert torch.equal(quantised, step.quantised)
        assert commit_loss.item() == pytest.approx(step.commit_loss.item(), rel=1e-6)
        for name in ("entropy", "used_curr", "usage", "dk", "fit"):
            assert metrics[name].item() == pytest.approx(step.metrics[name].item(), abs=1e-6), name
    assert torch.equal(reference.k, ours.k)
    assert metrics["usage"] < 256  # some codes died and were restarted along the way
