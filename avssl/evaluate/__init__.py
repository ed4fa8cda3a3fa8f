"""Downstream evaluation of frozen or fine-tuned encoders on public benchmarks.

Protocols are versioned YAML presets (:mod:`avssl.evaluate.protocols`) run by the runner of their
kind; results are written by :mod:`avssl.evaluate.report`. Building blocks: multi-clip feature
extraction (:mod:`.features`), linear SVM (:mod:`.svm`), cosine kNN (:mod:`.knn`), retrieval R@k
(:mod:`.retrieval`), audio-visual fusion (:mod:`.fusion`) and metrics (:mod:`.metrics`).
"""
