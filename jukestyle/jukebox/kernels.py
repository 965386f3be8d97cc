"""CPU kernels for the VQ-VAE's convolutions: channels-last layouts and fused oneDNN calls.

The model's layers (``layers.py``) are the reference definition; this module holds only how they
run fast on a CPU. Every function here computes what ``F.conv1d`` would, up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# -- convolutions in a channels-last layout on CPU ----------------------------------------
# Jukebox's layers are narrow (32-64 channels) and long (up to 44,100 steps a second). oneDNN's
# CPU kernels run them 3-4x faster (transposed convolutions 4.5x) on channels-last data than on
# PyTorch's (channels, time) layout, so on CPU every convolution runs as a channels-last 2-D
# convolution over (batch, channels, 1, time). Its output stays channels-last, so the next layer
# and the element-wise operations between them need no copy. Parameters, state-dict keys and
# results are those of nn.Conv1d / nn.ConvTranspose1d (equal up to float rounding).
def to_channels_last(x: torch.Tensor) -> torch.Tensor:
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
    y = F.conv2d(to_channels_last(x), weight.unsqueeze(2), bias, (1, stride), (0, padding), (1, dilation), groups)
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
        y = FUSED_CONVOLUTION(to_channels_last(x), weight, conv.bias, *geometry, "relu" if relu else "none", [], "")
    else:
        y = FUSED_CONVOLUTION.binary(
            to_channels_last(x),
            to_channels_last(add),
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


def channels_last_conv_transpose1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int,
    padding: int,
    output_padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
) -> torch.Tensor:
    """F.conv_transpose1d(x, weight, ...) as a channels-last 2-D transposed convolution; channels-last out."""
    y = F.conv_transpose2d(
        to_channels_last(x),
        weight.unsqueeze(2),
        bias,
        (1, stride),
        (0, padding),
        (0, output_padding),
        groups,
        (1, dilation),
    )
    return y.contiguous(memory_format=torch.channels_last).squeeze(2)


def is_channels_last(features: torch.Tensor) -> bool:
    """True for (B, C, T) features stored time-major, as these kernels leave them."""
    return features.stride(1) == 1 and features.stride(-1) != 1
