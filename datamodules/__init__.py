"""LightningDataModules: content/style pairs and the self-supervised training corpus."""
