"""Frozen encoders and one clip per file: what the cluster gallery and the demo evaluation read.

* :func:`load_encoders` — encoders from a run's ``final/`` folder, its ``method.pt``, an avssl
  encoder file or an official release, or a seeded random initialisation (the baseline);
  ``input_spec`` is set to what the run fed them (:func:`trained_input_specs`).
* :func:`extract_middle_clip_features` — one clip from the middle of each file, cut and
  normalised as each encoder's ``input_spec`` says, through the encoders: ``{modality: [n, D]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avssl.data.recipe_overrides import trained_input_specs



# ------------------------------------------------------------------------------------ encoders


def _method_file_encoders(obj: Mapping[str, Any], source: Path, wanted: Sequence[str]) -> dict[str, nn.Module]:
    """Encoders of an ``avssl-method`` file (``final/method.pt``): names from the run's config,
    weights from the ``<modality>_encoder.`` entries of the method's state dict, ``input_spec`` as
    the run fed them (:func:`trained_input_specs`)."""
    import dataclasses

    from avssl.models.checkpoints import CheckpointError, load_state_strict
    from avssl.models.registry import create_encoder

    config = (obj.get("header") or {}).get("config") or {}
    method = config.get("method") or {}
    state = obj.get("state_dict") or {}
    encoders = {}
    for modality in wanted:
        name = method.get(f"{modality}_encoder")
        if not name:
            continue
        # The run's kwargs may point at the weights it started from; these weights replace them.
        kwargs = {k: v for k, v in (method.get(f"{modality}_encoder_kwargs") or {}).items()
                  if k not in ("checkpoint_path", "pretrained")}
        prefix = f"{modality}_encoder."
        sub_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not sub_state:
            raise CheckpointError(f"checkpoint {source}: field 'state_dict' has no '{prefix}*' entries")
        encoder = create_encoder(name, **kwargs)
        load_state_strict(encoder, sub_state, f"{source} [{prefix}*]")
        changes = trained_input_specs(config).get(modality)
        if changes:
            encoder.input_spec = dataclasses.replace(encoder.input_spec, **changes)
        encoders[modality] = encoder
    return encoders


def _checkpoint_encoders(path: Path, names: Mapping[str, str | None], wanted: Sequence[str]) -> dict[str, nn.Module]:
    from avssl.models.checkpoints import CheckpointError, read_checkpoint
    from avssl.models.checkpoints.avssl_native import load_encoder, read_header
    from avssl.models.registry import create_encoder

    if path.is_dir():
        files = [path / "method.pt"] if (path / "method.pt").is_file() else sorted(path.glob("*_encoder.pt"))
        if not files:
            raise CheckpointError(f"checkpoint folder {path}: holds neither method.pt nor *_encoder.pt")
        found: dict[str, nn.Module] = {}
        for file in files:
            found.update(_checkpoint_encoders(file, names, wanted))
        return found
    obj = read_checkpoint(path)
    if isinstance(obj, Mapping) and obj.get("format") == "avssl-method":
        return _method_file_encoders(obj, path, wanted)
    if read_header(obj, f"checkpoint {path}") is not None:
        encoder = load_encoder(path)
        return {encoder.modality: encoder}
    failures = []
    for modality in wanted:
        if names.get(modality):
            try:
                return {modality: create_encoder(names[modality], checkpoint_path=path)}
            except CheckpointError as exc:
                failures.append(f"{names[modality]}: {exc}")
    detail = "; ".join(failures) or "name its encoder with --video-encoder or --audio-encoder"
    raise CheckpointError(f"checkpoint {path}: not an avssl file and no named encoder accepts it ({detail})")


def load_encoders(
    checkpoints: Sequence[Path], names: Mapping[str, str | None], wanted: Sequence[str], seed: int = 0
) -> dict[str, nn.Module]:
    """One encoder per wanted modality, in eval mode: from the checkpoints, else a seeded random
    initialisation of the named encoder. Raises naming the modality that has neither."""
    from avssl.models.registry import create_encoder

    encoders: dict[str, nn.Module] = {}
    for path in checkpoints:
        for modality, encoder in _checkpoint_encoders(Path(path), names, wanted).items():
            if modality in wanted:
                encoders.setdefault(modality, encoder)
    for modality in wanted:
        if modality not in encoders:
            if not names.get(modality):
                raise ValueError(
                    f"no {modality} encoder: give a checkpoint that holds one, or --{modality}-encoder NAME "
                    f"(with --checkpoint for its weights, without for a random baseline)"
                )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                encoders[modality] = create_encoder(names[modality])
    return {m: encoders[m].eval().requires_grad_(False) for m in wanted}


# ------------------------------------------------------------------------------------ features


class ClipReader:
    """Turns one file into each encoder's input: a clip from the middle of the file, prepared as
    the encoder's ``input_spec`` says (evaluation resize + centre crop + normalisation for video,
    the spectrogram preset for audio)."""

    def __init__(self, encoders: Mapping[str, nn.Module]) -> None:
        from avssl.media.augment import get_video_augment
        from avssl.media.augment.presets import EVAL_CROP_FRACTION
        from avssl.media.spectrogram import Spectrogram, get_preset

        self.video_transform = self.spectrogram = None
        if "video" in encoders:
            spec = encoders["video"].input_spec
            self.video_spec = spec
            self.video_transform = get_video_augment("eval_video", size=spec.size, mean=spec.mean, std=spec.std)
            self.short_side = round(spec.size / EVAL_CROP_FRACTION)
        if "audio" in encoders:
            spec = encoders["audio"].input_spec
            self.audio_spec = spec
            self.spectrogram = Spectrogram(get_preset(spec.spectrogram, clip_seconds=spec.duration))

    def __call__(self, path: Path) -> dict[str, Tensor]:
        from avssl.media import decode
        from avssl.viz.gallery import middle_window

        info = decode.probe(path, count_frames=False)
        inputs: dict[str, Tensor] = {}
        if self.video_transform is not None:
            if not info.has_video:
                raise decode.DecodeError(path, "no video stream")
            fps = self.video_spec.fps or info.fps  # None: the native rate (VMZ)
            window = middle_window(info.video_start, info.video_end, self.video_spec.frames / fps)
            (clip,) = decode.read_video(path, [window], fps, info=info, short_side=self.short_side)
            inputs["video"] = self.video_transform(clip)  # [3, T, S, S]
        if self.spectrogram is not None:
            if not info.has_audio:
                raise decode.DecodeError(path, "no audio stream")
            window = middle_window(info.audio_start, info.audio_end, self.audio_spec.duration)
            (wave,) = decode.read_audio(path, [window], self.audio_spec.sample_rate, info=info)
            inputs["audio"] = self.spectrogram(wave)[0]  # [1, F, T]
        return inputs


def reads_alike(first: Mapping[str, nn.Module], other: Mapping[str, nn.Module]) -> bool:
    """Whether :class:`ClipReader` cuts the same inputs for two encoder sets (same modalities and
    input specs), so that one read of each file can feed both."""
    return first.keys() == other.keys() and all(first[m].input_spec == other[m].input_spec for m in first)


def extract_middle_clip_features(
    paths: Sequence[Path], encoders: Mapping[str, nn.Module], device: str, batch_size: int, progress: bool = True
) -> tuple[dict[str, Tensor], list[int], list[tuple[str, str]]]:
    """Features ``{modality: [n, D]}`` of the files that could be read, their positions in
    ``paths``, and ``(path, reason)`` for the others."""
    (features,), kept, failed = extract_features_together(paths, [encoders], device, batch_size, progress)
    return features, kept, failed


@torch.no_grad()
def extract_features_together(
    paths: Sequence[Path], sets: Sequence[Mapping[str, nn.Module]], device: str, batch_size: int,
    progress: bool = True,
) -> tuple[list[dict[str, Tensor]], list[int], list[tuple[str, str]]]:
    """:func:`extract_middle_clip_features` for several encoder sets that read alike
    (:func:`reads_alike`, e.g. a trained model and a random initialisation of its architecture):
    each file is decoded once for all of them; the features come back in the order of ``sets``."""
    from tqdm import tqdm

    from avssl.data.datasets import DECODE_FAILURES

    if not sets or any(not reads_alike(sets[0], other) for other in sets[1:]):
        raise ValueError("extract_features_together: the encoder sets must share modalities and input specs")
    reader = ClipReader(sets[0])
    models = [{m: e.to(device) for m, e in group.items()} for group in sets]
    features: list[dict[str, list[Tensor]]] = [{m: [] for m in group} for group in models]
    kept: list[int] = []
    failed: list[tuple[str, str]] = []
    pending: list[dict[str, Tensor]] = []

    def flush() -> None:
        batches = {m: torch.stack([p[m] for p in pending]).to(device) for m in sets[0]}
        for group, out in zip(models, features):
            for modality, model in group.items():
                out[modality].append(model(batches[modality]).float().cpu())
        pending.clear()

    for position, path in enumerate(tqdm(paths, desc="clip features", unit="file", disable=not progress)):
        try:
            pending.append(reader(path))
        except DECODE_FAILURES as exc:
            failed.append((str(path), f"{type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        kept.append(position)
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    joined = [{m: torch.cat(parts) if parts else torch.empty(0) for m, parts in out.items()} for out in features]
    return joined, kept, failed
