"""Convolutional encoder and decoder stacks of the Jukebox VQ-VAE.

The attribute names (``level_blocks``, ``model``, ``out``) and the order of
modules inside each ``nn.Sequential`` are fixed by the official checkpoint's
state-dict keys, e.g. ``encoders.2.level_blocks.0.model.1.1.model.3.model.1.weight``
is level 2's encoder, first level block, second down-step, its resnet, the
fourth residual block, the dilated convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from jukestyle.jukebox.config import VQVAEConfig
from jukestyle.jukebox.hooks import is_observed
from jukestyle.jukebox.kernels import (
    channels_last_conv1d,
    channels_last_conv_transpose1d,
    fused_conv1d,
    fused_conv_available,
)


class Conv1d(nn.Conv1d):
    """nn.Conv1d, run by the channels-last CPU kernel on CPU (same parameters and state-dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        return channels_last_conv1d(
            x, self.weight, self.bias, self.stride[0], self.padding[0], self.dilation[0], self.groups
        )


class ConvTranspose1d(nn.ConvTranspose1d):
    """nn.ConvTranspose1d, run by the channels-last CPU kernel on CPU."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or output_size is not None:
            return super().forward(x, output_size)
        return channels_last_conv_transpose1d(
            x,
            self.weight,
            self.bias,
            self.stride[0],
            self.padding[0],
            self.output_padding[0],
            self.dilation[0],
            self.groups,
        )


class ResidualConvBlock(nn.Module):
    """x + conv1x1(relu(conv3_dilated(relu(x)))): Jukebox's ResConv1DBlock."""

    def __init__(self, channels: int, hidden: int, dilation: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ReLU(),
            Conv1d(channels, hidden, kernel_size=3, padding=dilation, dilation=dilation),
            nn.ReLU(),
            Conv1d(hidden, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return x + self.model(x)
        # Without autograd, the second ReLU and the residual sum run in place on fresh convolution outputs
        # that nothing else holds: these element-wise passes over long feature maps cost a third of a CPU
        # reconstruction, most of it allocating their outputs. (With autograd the in-place versions make
        # the backward pass twice as slow, so training and input optimisation keep the plain ones.)
        relu, dilated, _, projection = self.model
        if fused_conv_available(x) and dilated.padding_mode == "zeros" and not is_observed(dilated, projection):
            # the same operations, with the second ReLU and the residual sum inside the convolutions
            return fused_conv1d(projection, fused_conv1d(dilated, relu(x), relu=True), add=x)
        out = projection(dilated(relu(x)).relu_())
        out += x
        return out


class DilatedResNet(nn.Module):
    """``depth`` residual blocks with dilations growth**0, growth**1, ... (reversed in decoders)."""

    def __init__(self, channels: int, depth: int, m_conv: float, growth: int, cycle: int | None, reverse: bool) -> None:
        super().__init__()
        dilations = [growth ** (d if cycle is None else d % cycle) for d in range(depth)]
        if reverse:
            dilations = dilations[::-1]
        hidden = int(m_conv * channels)
        self.model = nn.Sequential(*(ResidualConvBlock(channels, hidden, dilation) for dilation in dilations))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _resnet(config: VQVAEConfig, level: int, reverse: bool) -> DilatedResNet:
    return DilatedResNet(
        config.level_width(level),
        config.level_depth(level),
        config.m_conv,
        config.dilation_growth_rate,
        config.dilation_cycle,
        reverse,
    )


class EncoderLevelBlock(nn.Module):
    """``down`` strided convolutions (each followed by a resnet), then a 3-tap projection to the latent width."""

    def __init__(self, config: VQVAEConfig, level: int, block: int, in_channels: int) -> None:
        super().__init__()
        width, stride, down = config.level_width(level), config.strides_t[block], config.downs_t[block]
        steps: list[nn.Module] = []
        for step in range(down):
            steps.append(
                nn.Sequential(
                    Conv1d(
                        in_channels if step == 0 else width,
                        width,
                        kernel_size=2 * stride,
                        stride=stride,
                        padding=stride // 2,
                    ),
                    _resnet(config, level, reverse=False),
                )
            )
        steps.append(Conv1d(width, config.emb_width, kernel_size=3, padding=1))
        self.model = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DecoderLevelBlock(nn.Module):
    """A 3-tap projection from the latent width, then ``down`` resnets each followed by a transposed convolution."""

    def __init__(self, config: VQVAEConfig, level: int, block: int) -> None:
        super().__init__()
        width, stride, down = config.level_width(level), config.strides_t[block], config.downs_t[block]
        steps: list[nn.Module] = [Conv1d(config.emb_width, width, kernel_size=3, padding=1)]
        for step in range(down):
            out_channels = config.emb_width if step == down - 1 else width
            steps.append(
                nn.Sequential(
                    _resnet(config, level, reverse=config.reverse_decoder_dilation),
                    ConvTranspose1d(width, out_channels, kernel_size=2 * stride, stride=stride, padding=stride // 2),
                )
            )
        self.model = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Encoder(nn.Module):
    """Level ``level``'s encoder: level blocks 0..level, audio (B, 1, T) -> latent (B, emb_width, T // hop)."""

    def __init__(self, config: VQVAEConfig, level: int) -> None:
        super().__init__()
        self.level_blocks = nn.ModuleList(
            EncoderLevelBlock(config, level, block, in_channels=1 if block == 0 else config.emb_width)
            for block in range(level + 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.level_blocks:
            x = block(x)
        return x


class Decoder(nn.Module):
    """Level ``level``'s decoder: level blocks level..0 (reversed), then ``out`` to one audio channel."""

    def __init__(self, config: VQVAEConfig, level: int) -> None:
        super().__init__()
        self.level_blocks = nn.ModuleList(DecoderLevelBlock(config, level, block) for block in range(level + 1))
        self.out = Conv1d(config.emb_width, 1, kernel_size=3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(latent))

    def features(self, latent: torch.Tensor) -> torch.Tensor:
        """The last block's output, which ``out`` projects to the waveform."""
        x = latent
        for block in reversed(self.level_blocks):
            x = block(x)
        return x


def named_blocks(stack: Encoder | Decoder) -> list[str]:
    """Feature-producing blocks of an encoder or decoder, in execution order.

    Names are module paths relative to the stack (as in the checkpoint keys):
    the in/out projections (``level_blocks.i.model.0`` in a decoder, the last
    ``model.j`` in an encoder), each resnet (``...model.j.1`` in an encoder,
    ``...model.j.0`` in a decoder) and each strided or transposed convolution.
    A decoder's final ``out`` convolution is not listed: its output is the waveform.
    """
    names: list[str] = []
    blocks = list(enumerate(stack.level_blocks))
    if isinstance(stack, Decoder):
        blocks = blocks[::-1]
    for index, block in blocks:
        prefix = f"level_blocks.{index}.model"
        for step_index, step in enumerate(block.model):
            if isinstance(step, nn.Sequential):
                names += [f"{prefix}.{step_index}.{child}" for child in range(len(step))]
            else:
                names.append(f"{prefix}.{step_index}")
    return names
