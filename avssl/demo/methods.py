"""Which pretraining config the demo runs for each method, and where the configs are.

The demo trains the CPU configs of ``configs/pretrain/<family>/`` (small encoders, small crops,
clips decoded once into memory); it only sets the corpus, the output folder, the number of steps
and the batch size. ``AVSSL_CONFIGS`` points at another config folder (e.g. for an installed
wheel, which does not carry ``configs/``).
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIGS_ENV = "AVSSL_CONFIGS"

# method -> its CPU config, relative to the config folder.
DEMO_CONFIGS: dict[str, str] = {
    "xid": "pretrain/avid/demo_cpu.yaml",
    "avid_cma": "pretrain/avid/cma_demo_cpu.yaml",
    "crisscross": "pretrain/crisscross/demo_cpu.yaml",
    "vicreg": "pretrain/avssrl/vicreg_demo_cpu.yaml",
    "vicreg_video": "pretrain/avssrl/vicreg_video_demo_cpu.yaml",
    "xdc": "pretrain/xdc/demo_cpu.yaml",
    "xkd": "pretrain/xkd/demo_cpu.yaml",
    "xkd_mas": "pretrain/xkd/demo_cpu_mas.yaml",
    "xkd_mats": "pretrain/xkd/demo_cpu_mats.yaml",
    "supervised": "pretrain/supervised/demo_cpu.yaml",
}
DEFAULT_METHOD = "xid"


def config_root() -> Path:
    """``$AVSSL_CONFIGS`` or the ``configs/`` folder of the source checkout."""
    if os.environ.get(CONFIGS_ENV):
        return Path(os.environ[CONFIGS_ENV])
    return Path(__file__).resolve().parents[2] / "configs"


def demo_config_path(method: str) -> Path:
    """The CPU config file of ``method``; a clear error when the method or the file is unknown."""
    if method not in DEMO_CONFIGS:
        raise KeyError(f"demo: no CPU config for method {method!r}; available: {', '.join(sorted(DEMO_CONFIGS))}")
    path = config_root() / DEMO_CONFIGS[method]
    if not path.is_file():
        raise FileNotFoundError(
            f"demo: config {path} not found; run from a source checkout or set {CONFIGS_ENV} to its configs/ folder"
        )
    return path
