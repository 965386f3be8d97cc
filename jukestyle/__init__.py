"""jukestyle: zero-shot music timbre transfer with a frozen Jukebox VQ-VAE.

This package is the pure-PyTorch core; it never imports Lightning or Hydra.
"""

__version__ = "0.1.0"
