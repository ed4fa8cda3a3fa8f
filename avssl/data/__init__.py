"""Tensors to datasets: the corpus manifest, corpus preparation, datasets and benchmark adapters."""
