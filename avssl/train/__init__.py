"""The pretraining engine: Lightning glue that runs any method of :mod:`avssl.methods`.

* ``config``  — the typed config (jsonargparse) of ``avssl pretrain``;
* ``runner``  — builds everything from a config and trains (:func:`avssl.train.runner.run_pretraining`);
* ``module``  — the LightningModule around a method (hooks, schedules, logging, non-finite stop);
* ``data``    — epoch-seeded, rank-sharded, resumable data order;
* ``optim``, ``larc``, ``schedules`` — optimisers, parameter groups, LARC, per-iteration schedules;
* ``checkpointing`` — atomic checkpoints, RNG states, final exports; ``context`` — the epoch context.

See docs/pretraining.md. Nothing is imported here, so ``avssl.train.schedules`` stays usable without
Lightning.
"""
