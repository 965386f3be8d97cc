"""LightningDataModules: content/style pairs, labelled single recordings and the self-supervised training corpus."""
