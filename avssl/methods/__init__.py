"""Pretext objectives, one file per method: plain ``nn.Module``s, independent of the trainer.

Contract (docs/architecture.md): ``forward(batch) -> dict`` with ``loss`` (a scalar tensor) and
the scalars to log; optional hooks ``on_train_epoch_start(ctx)`` (re-clustering, RINCE q annealing,
temperature warm-up) and ``on_after_optimizer_step(step)`` (EMA teachers, memory banks, centres).
A batch is a mapping with ``video`` and ``audio`` (lists of view tensors), ``index`` (instance ids)
and optional ``label``. Nothing here imports Lightning.
"""
