"""avssl: self-supervised audio-visual representation learning.

Methods (XDC, xID/AVID, CrissCross, AV-VICReg, XKD), their encoders and official checkpoints,
a media pipeline for real video files, and the downstream evaluation protocols.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_encoder", "list_encoders"]


def __getattr__(name: str):
    # Imported lazily so that `import avssl` (and the CLI's start-up) stays light.
    if name in ("create_encoder", "list_encoders"):
        from avssl.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'avssl' has no attribute {name!r}")
