"""LightningModules: StyleTransferModule (transfer over pairs) and the VQ-VAE pre-training module."""
