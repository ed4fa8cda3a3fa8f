"""Bytes to tensors: decoding, time windows, spectrograms and augmentations (no datasets, no training)."""
