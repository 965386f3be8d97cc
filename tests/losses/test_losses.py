"""The training losses of the loss config group: what each term measures, and the discriminator's update."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from signals import SAMPLE_RATE

from jukestyle.losses import AdversarialLoss, JukeboxLoss, MelLoss, STFTDiscriminator, multispectral_loss


def note(partials: int, total_partials: int = 16, seconds: float = 0.5) -> torch.Tensor:
    """C4 with harmonics 1..partials of a 16-partial 1/n^1.5 spectrum, the same scale whatever ``partials``."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-2.0 * t)
    spectrum = [np.sin(2 * np.pi * 261.63 * n * t) / n**1.5 * envelope for n in range(1, total_partials + 1)]
    scale = 0.5 / np.abs(sum(spectrum)).max()
    return torch.from_numpy((scale * sum(spectrum[:partials])).astype(np.float32)).view(1, 1, -1)


def all_terms_mel() -> MelLoss:
    return MelLoss(log_magnitude=1.0, linear_magnitude=1.0, waveform=1.0, frame_tones=1.0)


def calibrated_jukebox(clip: torch.Tensor) -> JukeboxLoss:
    loss = JukeboxLoss()
    loss.calibrate([clip.reshape(-1).numpy()])
    return loss


@pytest.mark.parametrize("name", ["jukebox", "mel", "adversarial"])
def test_every_distance_is_zero_on_identical_audio(name):
    clip = note(16)
    batch = torch.cat([clip, 0.5 * clip])
    if name == "jukebox":
        loss = calibrated_jukebox(clip)
    elif name == "mel":
        loss = all_terms_mel()
    else:
        loss = AdversarialLoss(all_terms_mel(), STFTDiscriminator(filters=4))
    terms = loss(batch, batch.clone())
    # The hinge generator term scores the output alone (not a distance), and so does the total that
    # includes it; every other term compares the two.
    scores = {"adversarial", "loss"} if name == "adversarial" else set()
    distances = {term: value.detach() for term, value in terms.items() if term not in scores}
    assert len(distances) >= 4
    for term, value in distances.items():
        assert float(value) == pytest.approx(0.0, abs=1e-6), term
    moved = loss(batch, batch * 0.9 + 0.01 * torch.randn_like(batch))
    for term, value in moved.items():
        if term in ("loss", "mel", "reconstruction", "multispectral", "waveform", "feature_matching", "frame_tones"):
            assert float(value) > 0, term


def test_log_mel_weighs_the_upper_harmonics_that_linear_magnitudes_ignore():
    """Removing harmonics 5-16 (the timbre) against a 1 dB gain change: the log-mel loss rates the
    missing harmonics 16x worse, the linear (Jukebox) spectral loss barely 1.2x."""
    full, low = note(16), note(4)
    quieter = full * 10 ** (-1 / 20)
    mel = MelLoss()
    mel_factor = float(mel(full, low)["mel"]) / float(mel(full, quieter)["mel"])
    linear_factor = float(multispectral_loss(full, low).mean()) / float(multispectral_loss(full, quieter).mean())
    assert mel_factor > 10
    assert linear_factor < 2
    assert mel_factor / linear_factor > 5


def test_frame_tones_single_out_a_comb_at_the_decoders_frame_rate():
    """Tones at 1 and 2 times 44100 / 32 Hz, 20 dB under the note (what a fine-tuned level-2 decoder leaks): the
    log-mel loss rates them 3x a 1 dB gain change; the frame-tone term sees them alone, not the gain nor a tone
    between its bins."""
    clip = note(16)
    t = torch.arange(clip.shape[-1]) / SAMPLE_RATE
    comb = 0.025 * sum(torch.sin(2 * torch.pi * k * SAMPLE_RATE / 32 * t) for k in (1, 2)).view(1, 1, -1)
    off_the_comb = 0.025 * torch.sin(2 * torch.pi * 1000.0 * t).view(1, 1, -1)
    loss = MelLoss(frame_tones=1.0)
    combed, gain = loss(clip, clip + comb), loss(clip, clip * 10 ** (-1 / 20))
    assert float(combed["mel"]) / float(gain["mel"]) < 5
    assert float(combed["frame_tones"]) > 0.2
    assert float(gain["frame_tones"]) < 0.01 and float(loss(clip, clip + off_the_comb)["frame_tones"]) < 0.01


def test_mel_loss_reaches_the_output_through_its_gradient():
    target, output = note(16), note(4).requires_grad_(True)
    MelLoss()(target, output)["loss"].backward()
    assert output.grad is not None and float(output.grad.abs().sum()) > 0


def test_discriminator_step_changes_only_the_discriminator(tiny_model):
    # A copy that trains: other tests freeze the shared model (a pipeline takes it with requires_grad off).
    model = copy.deepcopy(tiny_model).requires_grad_(True)
    loss = AdversarialLoss(MelLoss(), STFTDiscriminator(windows=(512, 256), filters=4), lr=1e-3)
    target = note(16, seconds=0.1)[..., :4096]
    output = model(target, levels=[2], update_codebook=False)[2].reconstruction
    model_before = {name: p.detach().clone() for name, p in model.named_parameters()}
    disc_before = {name: p.detach().clone() for name, p in loss.discriminator.named_parameters()}
    terms = loss.discriminator_step(target, output)
    assert float(terms["discriminator"]) > 0 and 0 <= float(terms["discriminator_accuracy"]) <= 1
    assert all(torch.equal(p, model_before[name]) for name, p in model.named_parameters())
    assert all(p.grad is None for p in model.parameters())
    # Every weight moves (a bias may not: at the start the hinge's real and fake gradients cancel on it).
    weights = [(name, p) for name, p in loss.discriminator.named_parameters() if not name.endswith("bias")]
    assert weights and all(not torch.equal(p, disc_before[name]) for name, p in weights)
    # The generator's terms: the hinge loss and feature matching, which reach the decoder.
    terms = loss(target, output)
    assert {"adversarial", "feature_matching", "mel"} <= set(terms)
    terms["loss"].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.decoders[2].parameters())


def test_discriminator_update_ratio_and_start_step():
    loss = AdversarialLoss(MelLoss(), STFTDiscriminator(windows=(256,), filters=4), update_every=2, start_step=3)
    target, output = note(16, seconds=0.05), note(4, seconds=0.05)
    loss.step = 1
    assert loss.discriminator_step(target, output) == {}  # not a multiple of update_every
    assert "adversarial" not in loss(target, output)  # before start_step: the reconstruction loss alone
    loss.step = 4
    assert loss.discriminator_step(target, output)
    assert "adversarial" in loss(target, output)
    with pytest.raises(ValueError, match="update_every"):
        AdversarialLoss(MelLoss(), STFTDiscriminator(filters=4), update_every=0)


def test_jukebox_loss_needs_calibration():
    with pytest.raises(RuntimeError, match="calibrate"):
        JukeboxLoss()(note(16), note(4))
