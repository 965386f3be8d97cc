"""LightningModules: StyleTransferModule (transfer over pairs), the VQ-VAE pre-training module, channel maps."""
