"""Shared test fixtures: where the real media and the parity fixtures live.

`../shared/data` and `../shared/parity` sit beside the checkout in CI. On a user's machine they are
usually absent; tests that need them skip with a clear reason. Both locations can be overridden with
AVSSL_SHARED_DATA and AVSSL_PARITY_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _dir_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default.resolve()


SHARED_DATA = _dir_from_env("AVSSL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
PARITY_DIR = _dir_from_env("AVSSL_PARITY_DIR", REPO_ROOT.parent / "shared" / "parity")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real media (videos/, vas/, vggsound/, grid/, fsdd/, mnist5k/)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real media not found at {SHARED_DATA} (set AVSSL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Folder of parity fixtures computed with the original code."""
    if not PARITY_DIR.is_dir():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR} (set AVSSL_PARITY_DIR)")
    return PARITY_DIR


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Manifest of a small embedded corpus (16 labelled 2–4 s clips), generated once per session."""
    from avssl.data.manifest import Manifest, ManifestRow
    from avssl.data.synthetic import generate_corpus
    from avssl.media import decode

    out = generate_corpus(tmp_path_factory.mktemp("tiny_corpus"), num_clips=16, seed=0, workers=1, progress=False)
    rows = []
    for path in sorted(Path(out).rglob("*.mp4")):
        info = decode.probe(path, count_frames=False)
        rows.append(
            ManifestRow(
                path=str(path.relative_to(out)), duration=info.duration, has_video=info.has_video,
                has_audio=info.has_audio, fps=float(info.fps), width=info.width, height=info.height,
                sample_rate=info.sample_rate, channels=info.channels, label=path.parent.name,
            )
        )
    return Manifest(rows, out).write(Path(out) / "manifest.csv")


@pytest.fixture(scope="session")
def make_state_module(parity_dir: Path):
    """``make_state.py`` of the parity folder: regenerates the weights behind every model fixture."""
    import importlib.util
    import sys

    name = "parity_make_state"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, parity_dir / "make_state.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread: the test machine's cores are shared, and small tensors run far
    faster on one thread than on OpenMP threads waiting on each other. Restores the setting after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
