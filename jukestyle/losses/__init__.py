"""VQ-VAE training losses, one module per loss (the ``loss`` config group picks one).

Every loss is an ``nn.Module`` called as ``loss(target, output)`` on (B, 1, T) audio
and returns a dict of terms whose ``"loss"`` entry is the weighted total to optimise;
the other entries are detached, for logging. ``calibrate(clips)`` lets a loss measure
the training corpus once before training (Jukebox's bandwidths); the bottleneck's
commitment loss is added by the training module, the same for every loss.
"""

from jukestyle.losses.adversarial import AdversarialLoss, STFTDiscriminator
from jukestyle.losses.base import ReconstructionLoss, stft_magnitude
from jukestyle.losses.jukebox import (
    MULTISPECTRAL_RESOLUTIONS,
    Bandwidth,
    JukeboxLoss,
    measure_bandwidth,
    multispectral_loss,
)
from jukestyle.losses.mel import MelLoss

__all__ = [
    "MULTISPECTRAL_RESOLUTIONS",
    "AdversarialLoss",
    "Bandwidth",
    "JukeboxLoss",
    "MelLoss",
    "ReconstructionLoss",
    "STFTDiscriminator",
    "measure_bandwidth",
    "multispectral_loss",
    "stft_magnitude",
]
