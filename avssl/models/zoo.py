"""The model zoo: every official release of the five methods, where to get it and what it scored.

Weights metadata is kept apart from the architectures (timm style): an entry names the encoder(s)
that read its file, the file, its URL and SHA-256 prefix (where the authors published one), the
pretraining data and the results the authors reported (spec §1.6–1.7, §2.8–2.9, §3A.6–3A.7,
§3B.6–3B.8, §4.5–4.7). Results are copied from the spec with their source; they are what the
papers/READMEs report, not numbers measured by avssl.

    avssl zoo list                           # the table
    avssl zoo fetch crisscross_kinetics400_video
    avssl zoo load avid_cma_kinetics400 --file checkpoint.pth.tar --modality audio

Downloads go to ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), like
``torch.hub.load_state_dict_from_url``; a file already there is verified and reused.
"""

from __future__ import annotations

import hashlib
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


class ZooError(RuntimeError):
    """A zoo entry cannot be resolved, downloaded or verified."""


@dataclass(frozen=True)
class ReportedResult:
    """One number the authors reported for a release (not measured by avssl)."""

    benchmark: str  # "UCF101", "HMDB51", "Kinetics-400", "ESC-50", "DCASE", "FSD50K"
    protocol: str  # "finetune", "linear", "svm", ...
    value: float  # top-1 accuracy in %, or mAP in % for FSD50K
    source: str  # "README", "XKD paper Tab. 7", ...

    @property
    def value_text(self) -> str:
        """The value as reported: one decimal, two where the source gives two (AV-SSRL)."""
        return f"{self.value:.1f}" if round(self.value, 1) == self.value else f"{self.value:.2f}"


@dataclass(frozen=True)
class ZooEntry:
    """One released file.

    ``encoders`` maps each modality the file holds to the encoder that reads it by default (any
    encoder of the same architecture works: e.g. CrissCross video weights in ``r2plus1d_18_avid``
    to pool by max). ``url``/``file_name`` are ``None`` where no stable address exists; ``notes``
    then says where the file is.
    """

    name: str
    method: str
    encoders: Mapping[str, str]
    file_name: str | None
    url: str | None
    sha256_prefix: str | None
    pretraining_data: str
    layout: str
    results: tuple[ReportedResult, ...] = ()
    notes: str = ""


# ----------------------------------------------------------------------------------------------
# Entries

_XDC_BASE = "https://github.com/HumamAlwassel/XDC/releases/download/model_weights/"
_AVID_BASE = "https://dl.fbaipublicfiles.com/avid-cma/checkpoints/"
_CRISSCROSS_BASE = "https://github.com/pritamqu/CrissCross/releases/download/model_weights/"
_XKD_RELEASE = "https://github.com/pritamqu/XKD/releases/tag/weights"


def _finetune(ucf: float, hmdb: float, source: str = "README") -> tuple[ReportedResult, ...]:
    return (ReportedResult("UCF101", "finetune", ucf, source), ReportedResult("HMDB51", "finetune", hmdb, source))


def _xdc(key: str, sha: str, data: str, ucf: float, hmdb: float, notes: str,
         more: tuple[ReportedResult, ...] = ()) -> ZooEntry:
    file_name = f"{key}-{sha}.pth"
    return ZooEntry(
        name=key, method="xdc", encoders={"video": "r2plus1d_18_vmz"}, file_name=file_name,
        url=_XDC_BASE + file_name, sha256_prefix=sha, pretraining_data=data, layout="xdc",
        results=_finetune(ucf, hmdb) + more,
        notes=notes + " Fine-tuning results are video-level top-1, mean of 3 splits (spec §1.6).",
    )


def _avid(name: str, release: str, data: str, results: tuple[ReportedResult, ...]) -> ZooEntry:
    file_name = f"{release}_checkpoint.pth.tar"
    return ZooEntry(
        name=name, method="avid_cma" if "CMA" in release else "xid",
        encoders={"video": "r2plus1d_18_avid", "audio": "audio_conv2d10_avid"},
        file_name=file_name, url=_AVID_BASE + file_name, sha256_prefix=None,
        pretraining_data=data, layout="avid", results=results,
        notes="Training checkpoint holding both encoders (choose with modality). No hash published.",
    )


def _crisscross(data_key: str, data: str, modality: str, results: tuple[ReportedResult, ...]) -> ZooEntry:
    prefix = "vid" if modality == "video" else "aud"
    file_name = f"{prefix}_crisscross_{data_key}.pth.tar.zip"
    encoder = "r2plus1d_18_crisscross" if modality == "video" else "audio_resnet18_crisscross"
    short = {"kinetics_sound": "kinetics_sound", "kinetics_400": "kinetics400", "audioset": "audioset"}
    return ZooEntry(
        name=f"crisscross_{short[data_key]}_{modality}", method="crisscross",
        encoders={modality: encoder}, file_name=file_name, url=_CRISSCROSS_BASE + file_name,
        sha256_prefix=None, pretraining_data=data, layout=f"crisscross-{modality}", results=results,
        notes="Zip archive around a flat backbone state dict (read directly). No hash published.",
    )


def _avssrl(method: str, results: tuple[ReportedResult, ...]) -> ZooEntry:
    return ZooEntry(
        name=f"avssrl_{method}_vggsound50k", method=method,
        encoders={"video": "r2plus1d_18_avssrl", "audio": "audio_conv2d10_avssrl"},
        file_name=None, url=None, sha256_prefix=None,
        pretraining_data="VGGSound subset, 50,000 videos, 100 epochs", layout="avssrl", results=results,
        notes=(
            "Google Drive link in the kvilouras/AV-SSRL README; no stable URL, download by hand. "
            "Results are fold 1 (clip or video level not stated)."
        ),
    )


def _xkd(modality: str, role: str) -> ZooEntry:
    if modality == "video":
        results = (
            ReportedResult("UCF101", "svm", 83.8, "XKD paper Tab. 7"),
            ReportedResult("UCF101", "finetune", 94.1, "XKD paper Tab. 7"),
            ReportedResult("HMDB51", "svm", 57.4, "XKD paper Tab. 7"),
            ReportedResult("HMDB51", "finetune", 69.0, "XKD paper Tab. 7"),
            ReportedResult("Kinetics-400", "linear", 51.4, "XKD paper Tab. 7"),
            ReportedResult("Kinetics-400", "finetune", 77.6, "XKD paper Tab. 7"),
        )
    else:
        results = (
            ReportedResult("ESC-50", "svm", 89.4, "XKD paper Tab. 8"),
            ReportedResult("ESC-50", "finetune", 93.6, "XKD paper Tab. 8"),
            ReportedResult("FSD50K", "linear (mAP)", 45.8, "XKD paper Tab. 8"),
            ReportedResult("FSD50K", "finetune (mAP)", 54.1, "XKD paper Tab. 8"),
        )
    short = "vid" if modality == "video" else "aud"
    return ZooEntry(
        name=f"xkd_kinetics400_{modality}_{role}", method="xkd",
        encoders={modality: f"vit_b_{modality}_xkd"}, file_name=f"<prefix>{short}_{role}.pth.tar",
        url=None, sha256_prefix=None, pretraining_data="Kinetics-400 (800 epochs)",
        layout="xkd_backbone", results=results,
        notes=(
            f"GitHub release tag 'weights' ({_XKD_RELEASE}); the file names are not listed in the "
            "repository, so download by hand. Which of student/teacher produced the paper's numbers "
            "is not stated (spec §4.5)."
        ),
    )


ENTRIES: tuple[ZooEntry, ...] = (
    _xdc("r2plus1d_18_xdc_ig65m_kinetics", "f24f6ffb", "IG-Kinetics (65M Instagram videos)", 95.5, 68.9,
         "XDC, the default of xdc_video_encoder."),
    _xdc("r2plus1d_18_xdc_ig65m_random", "189d23f4", "IG-Random (65M uncurated Instagram videos)", 94.6, 66.5,
         "XDC."),
    _xdc("r2plus1d_18_xdc_audioset", "f29ffe8f", "AudioSet (~2M videos)", 93.0, 63.7, "XDC.",
         (ReportedResult("UCF101", "linear", 85.3, "XKD paper Tab. 7"),
          ReportedResult("HMDB51", "linear", 56.0, "XKD paper Tab. 7"))),
    _xdc("r2plus1d_18_fs_kinetics", "622bdad9", "Kinetics-400, supervised", 94.2, 65.1,
         "Fully supervised baseline released with XDC."),
    _xdc("r2plus1d_18_fs_imagenet", "ff446670", "ImageNet, supervised (inflated)", 84.0, 48.1,
         "Fully supervised baseline released with XDC."),
    _avid("avid_kinetics400", "AVID_Kinetics_Cross-N1024", "Kinetics-400 (232,067 videos)",
          _finetune(86.9, 59.9) + (ReportedResult("Kinetics-400", "linear", 43.0, "README"),)),
    _avid("avid_cma_kinetics400", "AVID-CMA_Kinetics_InstX-N1024-PosW-N64-Top32", "Kinetics-400 (232,067 videos)",
          _finetune(87.5, 60.8) + (
              ReportedResult("Kinetics-400", "linear", 44.4, "README"),
              ReportedResult("UCF101", "linear", 72.3, "XKD paper Tab. 7 (computed by the XKD authors)"),
              ReportedResult("HMDB51", "linear", 41.4, "XKD paper Tab. 7 (computed by the XKD authors)"),
              ReportedResult("ESC-50", "linear", 79.1, "XKD paper Tab. 8"))),
    _avid("avid_audioset", "AVID_Audioset_Cross-N1024", "AudioSet (1,784,108 videos)",
          _finetune(91.0, 64.1) + (ReportedResult("Kinetics-400", "linear", 46.5, "README"),)),
    _avid("avid_cma_audioset", "AVID-CMA_Audioset_InstX-N1024-PosW-N64-Top32", "AudioSet (1,784,108 videos)",
          _finetune(91.5, 64.7) + (
              ReportedResult("Kinetics-400", "linear", 48.9, "README"),
              ReportedResult("ESC-50", "linear", 89.2, "XKD paper Tab. 8"))),
    _crisscross("kinetics_sound", "Kinetics-Sound (22K videos)", "video", _finetune(88.3, 60.5)),
    _crisscross("kinetics_sound", "Kinetics-Sound (22K videos)", "audio", (
        ReportedResult("ESC-50", "svm", 82.8, "README"), ReportedResult("DCASE", "linear", 93.0, "README"))),
    _crisscross("kinetics_400", "Kinetics-400 (240K videos)", "video", _finetune(91.5, 64.7) + (
        ReportedResult("UCF101", "linear", 83.9, "XKD paper Tab. 7"),
        ReportedResult("HMDB51", "linear", 50.0, "XKD paper Tab. 7"),
        ReportedResult("Kinetics-400", "linear", 44.5, "XKD paper Tab. 7"))),
    _crisscross("kinetics_400", "Kinetics-400 (240K videos)", "audio", (
        ReportedResult("ESC-50", "svm", 86.8, "README"), ReportedResult("DCASE", "linear", 96.0, "README"))),
    _crisscross("audioset", "AudioSet (1.8M videos)", "video", _finetune(92.4, 67.4) + (
        ReportedResult("UCF101", "linear", 87.7, "XKD paper Tab. 7"),
        ReportedResult("HMDB51", "linear", 56.2, "XKD paper Tab. 7"),
        ReportedResult("Kinetics-400", "linear", 50.1, "XKD paper Tab. 7"))),
    _crisscross("audioset", "AudioSet (1.8M videos)", "audio", (
        ReportedResult("ESC-50", "svm", 90.5, "README"), ReportedResult("DCASE", "linear", 97.0, "README"))),
    _avssrl("xid", (
        ReportedResult("UCF101", "linear", 51.20, "README (fold 1)"),
        ReportedResult("HMDB51", "linear", 28.08, "README (fold 1)"),
        ReportedResult("UCF101", "finetune", 73.22, "README (fold 1)"),
        ReportedResult("HMDB51", "finetune", 42.85, "README (fold 1)"))),
    _avssrl("vicreg", (
        ReportedResult("UCF101", "linear", 39.75, "README (fold 1)"),
        ReportedResult("HMDB51", "linear", 21.85, "README (fold 1)"),
        ReportedResult("UCF101", "finetune", 59.53, "README (fold 1)"),
        ReportedResult("HMDB51", "finetune", 34.65, "README (fold 1)"))),
    _xkd("video", "student"),
    _xkd("video", "teacher"),
    _xkd("audio", "student"),
    _xkd("audio", "teacher"),
)

_BY_NAME = {entry.name: entry for entry in ENTRIES}
if len(_BY_NAME) != len(ENTRIES):
    raise RuntimeError("duplicate zoo entry names")


# ----------------------------------------------------------------------------------------------
# Look-up, download, load


def list_entries(method: str | None = None) -> list[ZooEntry]:
    """All entries (of one ``method``: xdc, xid, avid_cma, crisscross, vicreg, xkd), in table order."""
    return [e for e in ENTRIES if method is None or e.method == method]


def get_entry(name: str) -> ZooEntry:
    if name not in _BY_NAME:
        raise ZooError(f"unknown zoo entry {name!r}; available: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def default_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``, where torch.hub keeps downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _manual_download_help(entry: ZooEntry) -> str:
    return (
        f"download it by hand, then use `avssl zoo load {entry.name} --file PATH` or "
        f"create_encoder({next(iter(entry.encoders.values()))!r}, checkpoint_path=PATH)"
    )


def fetch(name: str, directory: str | Path | None = None, progress: bool = True) -> Path:
    """Download entry ``name`` (if not there yet) into ``directory``; verify its SHA-256 prefix.

    Returns the local path. Raises :class:`ZooError` with the reason (no URL, no network, hash
    mismatch) and how to proceed with a file downloaded by hand.
    """
    entry = get_entry(name)
    if entry.url is None or entry.file_name is None:
        raise ZooError(f"{name}: no stable download URL. {entry.notes} To use it, {_manual_download_help(entry)}")
    target = Path(directory) if directory is not None else default_dir()
    target.mkdir(parents=True, exist_ok=True)
    path = target / entry.file_name
    if path.is_file():
        _verify(entry, path)
        return path
    try:
        # writes to a temporary file, checks the hash prefix, then moves it into place
        torch.hub.download_url_to_file(entry.url, str(path), hash_prefix=entry.sha256_prefix, progress=progress)
    except RuntimeError as exc:  # raised by torch.hub on a hash mismatch
        raise ZooError(f"{name}: downloaded file from {entry.url} failed verification: {exc}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ZooError(
            f"{name}: cannot download {entry.url} ({exc}). Without network access, "
            f"{_manual_download_help(entry)}"
        ) from exc
    return path


def _verify(entry: ZooEntry, path: Path) -> None:
    if entry.sha256_prefix is None:
        return
    digest = sha256_of(path)
    if not digest.startswith(entry.sha256_prefix):
        raise ZooError(
            f"{entry.name}: {path} has SHA-256 {digest[:16]}..., expected a digest starting with "
            f"{entry.sha256_prefix}; the file is corrupted or another release — delete it and fetch again"
        )


def encoder_for(entry: ZooEntry, modality: str | None = None) -> tuple[str, str]:
    """(modality, encoder name) of ``entry``; ``modality`` is required when it holds both."""
    if modality is None:
        if len(entry.encoders) > 1:
            raise ZooError(
                f"{entry.name} holds {' and '.join(entry.encoders)} encoders; choose one with modality="
            )
        modality = next(iter(entry.encoders))
    if modality not in entry.encoders:
        raise ZooError(f"{entry.name} holds no {modality} encoder (it has: {', '.join(entry.encoders)})")
    return modality, entry.encoders[modality]


def checkpoint_for_encoder(name: str, encoder_name: str) -> Path:
    """Local file of entry ``name`` for ``create_encoder(encoder_name, pretrained=name)``.

    The encoder's modality selects the component; any encoder of that modality is accepted here
    and the strict loader checks that the architecture fits.
    """
    from avssl.models.registry import create_encoder

    entry = get_entry(name)
    with torch.device("meta"):  # only the modality is needed: build without allocating weights
        modality = getattr(create_encoder(encoder_name), "modality", None)
    encoder_for(entry, modality)
    return fetch(name)


def local_file(name: str, file: str | Path | None = None, verify: bool = True) -> Path:
    """``file`` checked against entry ``name``'s SHA-256 prefix (unless ``verify=False``, for a
    file re-saved by hand), or the entry's file fetched with :func:`fetch` when ``file`` is None."""
    entry = get_entry(name)
    if file is None:
        return fetch(name)
    path = Path(file)
    if not path.is_file():
        raise ZooError(f"{name}: local file {path} does not exist")
    if verify:
        _verify(entry, path)
    return path


def load(
    name: str, file: str | Path | None = None, modality: str | None = None, verify: bool = True, **kwargs
) -> nn.Module:
    """The encoder of entry ``name`` with its weights, from ``file`` or downloaded with :func:`fetch`.

    ``modality`` picks the encoder of a file holding both; ``verify`` as in :func:`local_file`;
    ``kwargs`` go to the encoder factory (e.g. ``pool="max"``).
    """
    from avssl.models.registry import create_encoder

    _, encoder_name = encoder_for(get_entry(name), modality)
    return create_encoder(encoder_name, checkpoint_path=local_file(name, file, verify), **kwargs)
