"""jukestyle: zero-shot music timbre transfer with a frozen Jukebox VQ-VAE.

This package is the pure-PyTorch core; it never imports Lightning or Hydra.
``jukestyle.transfer(content, style, method="adain")`` is the one-call API;
``jukestyle.transfer_file`` does the same for files of any length in bounded memory.
"""

__version__ = "0.1.0"

from jukestyle.api import transfer, transfer_file

__all__ = ["__version__", "transfer", "transfer_file"]
