"""jukestyle: zero-shot music timbre transfer with a frozen Jukebox VQ-VAE.

This package is the pure-PyTorch core; it never imports Lightning or Hydra.
``jukestyle.transfer(content, style, method="adain")`` is the one-call API.
"""

__version__ = "0.1.0"

from jukestyle.api import transfer

__all__ = ["__version__", "transfer"]
