"""The VQ-VAE's structure and public API (random weights; no reference code needed)."""

from __future__ import annotations

import pytest
import torch

from jukestyle.errors import AudioError
from jukestyle.jukebox import PRESETS, VQVAE, build_vqvae, kernels, layers
from jukestyle.jukebox.bottleneck import Codebook


@pytest.fixture(scope="module")
def jukebox_5b() -> VQVAE:
    return build_vqvae("jukebox_5b", seed=0)


# Keys and shapes read off the official 5b vqvae.pth.tar (Jukebox's published architecture).
OFFICIAL_SHAPES = {
    "encoders.0.level_blocks.0.model.0.0.weight": (64, 1, 4),  # level 0: width 32 x multiplier 2
    "encoders.0.level_blocks.0.model.0.1.model.7.model.1.weight": (64, 64, 3),  # depth 4 x 2 = 8 blocks
    "encoders.0.level_blocks.0.model.3.weight": (64, 64, 3),  # projection to emb_width after 3 down-steps
    "encoders.2.level_blocks.0.model.0.0.weight": (32, 1, 4),
    "encoders.2.level_blocks.2.model.1.1.model.3.model.3.weight": (32, 32, 1),
    "encoders.2.level_blocks.2.model.2.weight": (64, 32, 3),
    "decoders.2.level_blocks.2.model.0.weight": (32, 64, 3),
    "decoders.2.level_blocks.0.model.3.1.weight": (32, 64, 4),  # ConvTranspose1d: (in, out, k)
    "decoders.2.out.weight": (1, 64, 3),
    "decoders.0.level_blocks.0.model.1.0.model.7.model.1.weight": (64, 64, 3),
    "bottleneck.level_blocks.0.k": (2048, 64),
    "bottleneck.level_blocks.2.k": (2048, 64),
}


def test_state_dict_matches_official_layout(jukebox_5b):
    state = jukebox_5b.state_dict()
    for key, shape in OFFICIAL_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert jukebox_5b.parameter_count() == 1_485_763
    codebooks = [key for key in state if key.startswith("bottleneck.")]
    assert codebooks == [f"bottleneck.level_blocks.{level}.k" for level in range(3)]
    # Training state (EMA sums) is not part of the official format.
    assert not any(key.endswith(("k_sum", "k_elem")) for key in state)


def test_decoder_dilations_run_large_to_small(jukebox_5b):
    encoder_resnet = jukebox_5b.encoders[2].level_blocks[0].model[0][1].model
    decoder_resnet = jukebox_5b.decoders[2].level_blocks[0].model[1][0].model
    assert [block.model[1].dilation[0] for block in encoder_resnet] == [1, 3, 9, 27]
    assert [block.model[1].dilation[0] for block in decoder_resnet] == [27, 9, 3, 1]


def test_hop_lengths_and_shapes(tiny_model, tone):
    x = torch.from_numpy(tone[:10_000]).view(1, 1, -1).repeat(2, 1, 1)
    for level, hop in enumerate((8, 32, 128)):
        assert tiny_model.hop_length(level) == hop
        codes = tiny_model.encode(x, level)
        assert codes.shape == (2, 10_000 // hop) and codes.dtype == torch.long
        assert tiny_model.decode(codes, level).shape == (2, 1, (10_000 // hop) * hop)
        latent = tiny_model.encode_latent(x, level)
        assert latent.shape == (2, PRESETS["tiny"].emb_width, 10_000 // hop)
        assert torch.equal(tiny_model.quantise(latent, level), codes)
        assert torch.equal(tiny_model.dequantise(codes, level), tiny_model.bottleneck[level].k[codes].transpose(1, 2))


def test_encode_runs_only_that_levels_encoder(tiny_model, tone):
    calls = []
    handles = [
        encoder.register_forward_hook(lambda *_, level=level: calls.append(level))
        for level, encoder in enumerate(tiny_model.encoders)
    ]
    try:
        tiny_model.encode(torch.from_numpy(tone[:4096]).view(1, 1, -1), 1)
    finally:
        for handle in handles:
            handle.remove()
    assert calls == [1]


def test_random_model_uses_many_codes(jukebox_5b, tone):
    x = torch.from_numpy(tone).view(1, 1, -1)
    with torch.no_grad():
        for level in range(3):
            codebook = jukebox_5b.bottleneck[level].k
            assert torch.unique(codebook, dim=0).shape[0] == 2048  # initialised, all distinct
            assert jukebox_5b.encode(x, level).unique().numel() > 20


def test_decoder_blocks_are_listed_in_execution_order(tiny_model, tone):
    level = 2
    names = tiny_model.decoder_blocks(level)
    # 3 level blocks: (projection + 2 x (resnet, upsampler)) x 2 + projection + 3 x (resnet, upsampler)
    assert len(names) == 5 + 5 + 7
    seen = []
    handles = [
        tiny_model.decoder_block(level, name).register_forward_hook(lambda *_, name=name: seen.append(name))
        for name in names
    ]
    try:
        tiny_model.decode(tiny_model.encode(torch.from_numpy(tone[:2048]).view(1, 1, -1), level), level)
    finally:
        for handle in handles:
            handle.remove()
    assert seen == names
    assert names[0] == "level_blocks.2.model.0" and names[-1] == "level_blocks.0.model.3.1"
    assert len(tiny_model.encoder_blocks(level)) == len(names)


def test_bad_arguments_get_clear_errors(tiny_model):
    with pytest.raises(AudioError, match=r"shorter than one latent frame at level 2 \(128 samples\)"):
        tiny_model.encode(torch.zeros(1, 1, 100), 2)
    with pytest.raises(AudioError, match=r"shape \(batch, 1, samples\), got \(1, 2, 1000\)"):
        tiny_model.encode(torch.zeros(1, 2, 1000), 0)
    with pytest.raises(ValueError, match=r"level must be one of \[0, 1, 2\], got 3"):
        tiny_model.encode(torch.zeros(1, 1, 1000), 3)
    with pytest.raises(ValueError, match=r"unknown decoder block 'conv9' at level 0; valid: level_blocks\.0"):
        tiny_model.decoder_block(0, "conv9")
    with pytest.raises(ValueError, match="unknown VQ-VAE preset 'huge'; presets: jukebox_5b, tiny"):
        build_vqvae("huge")


def test_silence_encodes_without_nan(tiny_model):
    codes = tiny_model.encode(torch.zeros(1, 1, 1024), 0)
    assert torch.isfinite(tiny_model.decode(codes, 0)).all()


def test_training_pass_trains_encoder_and_moves_codebook(tone):
    torch.manual_seed(0)
    model = build_vqvae("tiny", seed=0).train()
    x = torch.from_numpy(tone[:8192]).view(1, 1, -1)
    before = model.bottleneck[1].k.clone()
    other_level_before = model.bottleneck[0].k.clone()
    outputs = model(x, levels=[1])
    assert list(outputs) == [1]
    out = outputs[1]
    assert out.reconstruction.shape == x.shape
    assert not torch.equal(model.bottleneck[1].k, before)  # EMA update
    assert torch.equal(model.bottleneck[0].k, other_level_before)  # a level not trained stays
    loss = torch.mean((out.reconstruction - x) ** 2) + out.commit_loss
    loss.backward()
    # Straight-through estimator: the reconstruction loss reaches the encoder.
    assert model.encoders[1].level_blocks[0].model[0][0].weight.grad.abs().sum() > 0
    assert {"fit", "entropy", "perplexity", "usage", "used_curr", "dk"} <= set(out.metrics)


def test_eval_pass_leaves_codebook_alone(tiny_model, tone):
    before = tiny_model.bottleneck[0].k.clone()
    tiny_model.eval()(torch.from_numpy(tone[:4096]).view(1, 1, -1), levels=[0])
    assert torch.equal(tiny_model.bottleneck[0].k, before)


def test_dead_codes_restart_at_encoder_outputs():
    torch.manual_seed(0)
    codebook = Codebook(size=4, width=2, mu=0.5)
    codebook.initialise(torch.tensor([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [-50.0, 50.0]]))
    data = torch.tensor([[0.1, 0.0], [0.9, 1.1]]).repeat(8, 1)  # only codes 0 and 1 are ever used
    latent = data.t().unsqueeze(0)  # (1, width, frames)
    metrics = codebook(latent, update=True).metrics
    # EMA usage of codes 2 and 3 fell to 0.5, below the threshold of 1: dead.
    assert metrics["usage"] == 2
    rows = {tuple(row) for row in data.tolist()}
    for dead in (2, 3):  # restarted at an encoder output
        assert min(torch.dist(codebook.k[dead], torch.tensor(row)).item() for row in rows) < 1e-6
    # Live codes: EMA of assigned sums over EMA of counts, by hand for code 0:
    # (0.5 * [0, 0] + 0.5 * 8 * [0.1, 0]) / (0.5 * 1 + 0.5 * 8) = [0.4, 0] / 4.5
    assert torch.allclose(codebook.k[0], torch.tensor([0.4 / 4.5, 0.0]), atol=1e-6)
    # code 1: (0.5 * [1, 1] + 0.5 * 8 * [0.9, 1.1]) / 4.5
    assert torch.allclose(codebook.k[1], torch.tensor([4.1 / 4.5, 4.9 / 4.5]), atol=1e-6)
    # Restarted codes now win assignments: the codebook spreads over the data.
    codebook(latent, update=True)
    assert codebook(latent, update=False).codes.unique().numel() >= 2


def test_codebook_ema_state_round_trips():
    torch.manual_seed(0)
    codebook = Codebook(size=8, width=3)
    latent = torch.randn(1, 3, 32)
    codebook(latent, update=True)
    state = codebook.ema_state()
    fresh = Codebook(size=8, width=3)
    fresh.load_ema_state(state)
    assert torch.equal(fresh.k_sum, codebook.k_sum) and bool(fresh.initialised)


def test_inference_path_equals_the_autograd_path(tiny_model, tone):
    """Without autograd the residual blocks work in place; the features and the audio must not change."""
    x = torch.as_tensor(tone).reshape(1, 1, -1)
    with torch.enable_grad():
        latent, audio = tiny_model.encode_latent(x, 2), tiny_model.reconstruct(x, 2)
    with torch.inference_mode():
        assert torch.allclose(tiny_model.encode_latent(x, 2), latent.detach(), atol=1e-6)
        assert torch.allclose(tiny_model.reconstruct(x, 2), audio.detach(), atol=1e-6)


def test_inference_fuses_the_residual_blocks_element_wise_operations(tiny_model, tone, monkeypatch):
    """Without autograd on CPU the residual blocks' ReLU and sum run inside oneDNN convolutions: same audio."""
    x = torch.as_tensor(tone).reshape(1, 1, -1)
    calls = []
    fused = layers.fused_conv1d
    monkeypatch.setattr(layers, "fused_conv1d", lambda *args, **kwargs: calls.append(1) or fused(*args, **kwargs))
    assert torch.backends.mkldnn.is_available() and kernels.FUSED_CONVOLUTION is not None  # the CPU wheel ships oneDNN
    with torch.inference_mode():
        audio = tiny_model.reconstruct(x, 2)
        assert calls  # the fused kernels did run
        monkeypatch.setattr(kernels, "FUSED_CONVOLUTION", None)  # as in a build without oneDNN
        calls.clear()
        plain = tiny_model.reconstruct(x, 2)
        assert not calls
    torch.testing.assert_close(audio, plain, atol=1e-6, rtol=1e-5)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not kernels.fused_conv_available(x)  # bf16 autocast keeps the plain path


@pytest.mark.parametrize(
    ("taps", "stride", "padding", "dilation"), [(4, 2, 1, 1), (3, 1, 1, 1), (3, 1, 2, 2), (5, 3, 0, 1)]
)
def test_one_channel_convolution_as_a_product_of_frames(taps, stride, padding, dilation):
    """The encoder's first layer (one input channel) runs as frames @ kernels: F.conv1d's values and gradients,
    written channels-last."""
    torch.manual_seed(0)
    x = torch.randn(2, 1, 301, requires_grad=True)
    weight, bias = torch.randn(7, 1, taps, requires_grad=True), torch.randn(7, requires_grad=True)
    y = kernels.channels_last_conv1d(x, weight, bias, stride, padding, dilation)
    expected = torch.nn.functional.conv1d(x, weight, bias, stride, padding, dilation)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    assert y.stride(1) == 1  # channels-last
    gradients = torch.autograd.grad(y.square().sum(), (x, weight, bias))
    for got, want in zip(gradients, torch.autograd.grad(expected.square().sum(), (x, weight, bias)), strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    no_bias = kernels.channels_last_conv1d(x, weight, None, stride, padding, dilation)
    torch.testing.assert_close(no_bias, torch.nn.functional.conv1d(x, weight, None, stride, padding, dilation))
