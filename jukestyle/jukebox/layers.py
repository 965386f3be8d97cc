"""Convolutional encoder and decoder stacks of the Jukebox VQ-VAE.

The attribute names (``level_blocks``, ``model``, ``out``) and the order of
modules inside each ``nn.Sequential`` are fixed by the official checkpoint's
state-dict keys, e.g. ``encoders.2.level_blocks.0.model.1.1.model.3.model.1.weight``
is level 2's encoder, first level block, second down-step, its resnet, the
fourth residual block, the dilated convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jukestyle.jukebox.config import VQVAEConfig


# -- convolutions in a channels-last layout on CPU ----------------------------------------
# Jukebox's layers are narrow (32-64 channels) and long (up to 44,100 steps a second). oneDNN's
# CPU kernels run them 3-4x faster (transposed convolutions 4.5x) on channels-last data than on
# PyTorch's (channels, time) layout, so on CPU every convolution runs as a channels-last 2-D
# convolution over (batch, channels, 1, time). Its output stays channels-last, so the next layer
# and the element-wise operations between them need no copy. Parameters, state-dict keys and
# results are those of nn.Conv1d / nn.ConvTranspose1d (equal up to float rounding).
def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # no copy if already channels-last


def channels_last_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> torch.Tensor:
    """F.conv1d(x, weight, ...) computed as a channels-last 2-D convolution; the output is channels-last."""
    if x.shape[1] == 1 and groups == 1:
        return _one_channel_conv1d(x, weight, bias, stride, padding, dilation)
    y = F.conv2d(_channels_last(x), weight.unsqueeze(2), bias, (1, stride), (0, padding), (1, dilation), groups)
    # Where the layout is ambiguous oneDNN may answer channels-first: fix it here, once, rather than in every
    # following layer (no copy when the output is channels-last already).
    return y.contiguous(memory_format=torch.channels_last).squeeze(2)


# oneDNN convolutions with an element-wise epilogue (the fused kernels torch.compile uses on CPU):
# the ReLU after a convolution, or the residual sum, is applied while the output is still in
# cache, instead of in a separate pass over a feature map of tens of MB. Absent from builds
# without oneDNN, where the plain operations run.
FUSED_CONVOLUTION = (
    getattr(torch.ops.mkldnn, "_convolution_pointwise", None) if torch.backends.mkldnn.is_available() else None
)


def fused_conv_available(x: torch.Tensor) -> bool:
    """True where ``fused_conv1d`` can run: float32 on CPU, outside autocast, no autograd."""
    return (
        FUSED_CONVOLUTION is not None
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
    )


def fused_conv1d(conv: nn.Conv1d, x: torch.Tensor, *, relu: bool = False, add: torch.Tensor | None = None):
    """relu(conv(x)) or conv(x) + add in one oneDNN kernel (see ``fused_conv_available``); channels-last out."""
    geometry = ([0, conv.padding[0]], [1, conv.stride[0]], [1, conv.dilation[0]], conv.groups)
    weight = conv.weight.unsqueeze(2)
    if add is None:
        y = FUSED_CONVOLUTION(_channels_last(x), weight, conv.bias, *geometry, "relu" if relu else "none", [], "")
    else:
        y = FUSED_CONVOLUTION.binary(
            _channels_last(x),
            _channels_last(add),
            weight,
            conv.bias,
            *geometry,
            "add",
            1.0,
            "relu" if relu else None,
            [],
            None,
        )
    return y.contiguous(memory_format=torch.channels_last).squeeze(2)


def _one_channel_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int, dilation: int
) -> torch.Tensor:
    """F.conv1d of a one-channel signal (the encoder's first layer) as a product of its frames with the kernels.

    oneDNN gives a one-channel input's convolution a channels-first output, which then took a 12 ms transposition
    to channels-last (32 channels, 220,500 frames for 10 s); the product writes channels-last directly, in 5 ms
    where the convolution and the transposition together took about 40.
    """
    signal = F.pad(x[:, 0], (padding, padding))  # (B, T + 2 padding)
    span = dilation * (weight.shape[-1] - 1) + 1
    frames = signal.unfold(-1, span, stride)[..., ::dilation]  # (B, T', taps): views of the padded signal
    kernels = weight[:, 0].t().expand(x.shape[0], -1, -1)  # (B, taps, out)
    y = torch.bmm(frames, kernels) if bias is None else torch.baddbmm(bias.view(1, 1, -1), frames, kernels)
    return y.transpose(1, 2)  # y is (B, T', out): channels-last


class Conv1d(nn.Conv1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        return channels_last_conv1d(
            x, self.weight, self.bias, self.stride[0], self.padding[0], self.dilation[0], self.groups
        )


class ConvTranspose1d(nn.ConvTranspose1d):
    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if x.device.type != "cpu" or output_size is not None:
            return super().forward(x, output_size)
        weight = self.weight.unsqueeze(2)
        stride, padding = (1, self.stride[0]), (0, self.padding[0])
        output_padding, dilation = (0, self.output_padding[0]), (1, self.dilation[0])
        y = F.conv_transpose2d(
            _channels_last(x), weight, self.bias, stride, padding, output_padding, self.groups, dilation
        )
        return y.contiguous(memory_format=torch.channels_last).squeeze(2)


def conv1d_of_channel_map(conv: nn.Conv1d, x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor):
    """conv(matrix @ x + offset) for features x (B, C, T), a matrix (B, C, C) and an offset (B, C, 1) per
    batch element, without the mapped features ever being made: the map goes into the convolution's weights
    (conv.weight @ matrix) and bias (the offset through every tap).

    That saves a pass over the features (for the decoder's last block, 441,000 frames of 64 channels at 10 s).
    Zero padding pads the mapped features with zeros, not with the offset: output frames whose taps read the
    padding lose those taps' share of the offset. Stride 1 and one group, as the decoder's ``out``.
    """
    if conv.stride[0] != 1 or conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("conv1d_of_channel_map needs a stride-1, one-group, zero-padded convolution")
    weight = conv.weight.to(matrix.dtype)  # (out, C, taps)
    taps, padding, dilation, frames = weight.shape[-1], conv.padding[0], conv.dilation[0], x.shape[-1]
    folded = torch.einsum("oct,bcd->bodt", weight, matrix).to(x.dtype)
    offset_taps = torch.einsum("oct,bc->bot", weight, offset[..., 0])  # each tap's response to the offset
    bias = (offset_taps.sum(-1) + (0.0 if conv.bias is None else conv.bias.to(matrix.dtype))).to(x.dtype)
    convolve = channels_last_conv1d if x.device.type == "cpu" else F.conv1d
    outputs = [convolve(x[i : i + 1], folded[i], bias[i], 1, padding, dilation) for i in range(x.shape[0])]
    y = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    out_frames = y.shape[-1]
    first_right = max(0, frames + padding - (taps - 1) * dilation)  # the first frame with a tap past the end
    for frame in sorted(set(range(min(padding, out_frames))) | set(range(first_right, out_frames))):
        outside = [tap for tap in range(taps) if not 0 <= frame + tap * dilation - padding < frames]
        if outside:
            y[:, :, frame] -= offset_taps[:, :, outside].sum(-1).to(y.dtype)
    return y


def _hooked(*modules: nn.Module) -> bool:
    """True where forward hooks would see these modules' outputs (a probe recording layers), which the fused
    kernels never make."""
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        return True
    return any(module._forward_hooks or module._forward_pre_hooks for module in modules)


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
        if fused_conv_available(x) and dilated.padding_mode == "zeros" and not _hooked(dilated, projection):
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
