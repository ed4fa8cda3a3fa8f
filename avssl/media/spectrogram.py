"""Waveform -> spectrogram with torch only (``torch.stft`` + a frequency matrix), one named preset per method.

Every step that the original code left to a library default is an explicit field of
:class:`SpectrogramPreset` (spec §6.2 item 2): STFT padding mode (librosa < 0.9 padded with
``reflect``, >= 0.9 with zeros), window symmetry, power vs magnitude, mel scale and filterbank
normalisation, log type and the normalisation statistics.

Presets (spec §2.2, §3A.2, §3B.3, §4.2), output for the default clip length:

============  ======  ======================================================  ===========
name          rate    recipe                                                  output
============  ======  ======================================================  ===========
crisscross    16 kHz  n_fft 1024, hop 160, 80 Slaney mel, ln, global z-score  1×80×201
xkd           16 kHz  as crisscross with hop 143 and 4 s clips                1×80×448
avid          24 kHz  n_fft 1024, hop 240, 513→257 bins, dB, per-bin z-score  1×257×200 (F×T)
avssrl        16 kHz  peak norm, n_fft 512, hop 256, 128 L1 mel, log10, z     1×128×125
============  ======  ======================================================  ===========

The per-bin statistics of ``avid`` and ``avssrl`` are the numbers shipped with the original
releases (AVID-CMA ``audio-spectDB-24k-513-norm-stats.npz``, AV-SSRL
``audio_spec_50k_norm_stats.npz``); they live in ``avssl/media/stats/*.npz`` (keys ``mean``, ``std``).

Every preset outputs the library's ``B×1×F×T`` layout; ``get_preset("avid", layout="TF")`` gives
AVID's original time-first front-end output (its encoder transposes inside instead).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

WindowKind = Literal["hann_periodic", "hann_symmetric"]
PadMode = Literal["reflect", "constant"]
FrequencyScale = Literal["mel", "linear", "linear_pair_average"]
MelScale = Literal["slaney", "htk"]
MelNorm = Literal["slaney", "l1", "none"]
LogKind = Literal["ln", "log10", "db", "none"]
Layout = Literal["FT", "TF"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "window": ("hann_periodic", "hann_symmetric"),
    "pad_mode": ("reflect", "constant"),
    "frequency_scale": ("mel", "linear", "linear_pair_average"),
    "mel_scale": ("slaney", "htk"),
    "mel_norm": ("slaney", "l1", "none"),
    "log": ("ln", "log10", "db", "none"),
    "layout": ("FT", "TF"),
}

# Added to |X|^2 by CrissCross/XKD (numpy float64 eps) and to the mel energies before ln (float32 eps).
FLOAT64_EPS = float(np.finfo(np.float64).eps)
FLOAT32_EPS = float(np.finfo(np.float32).eps)
# AV-SSRL's waveform peak normalisation guards the division with this constant.
PEAK_NORMALIZE_EPS = 1e-9


@dataclass(frozen=True)
class SpectrogramPreset:
    """Every knob of the waveform -> spectrogram pipeline, in the order the steps run.

    1. mono mix (mean over channels), then trim / zero-pad at the end to ``clip_seconds``
       (``None``: keep the input length);
    2. ``peak_normalize``: ``y · p / (max|y| + 1e-9)`` per clip (AV-SSRL uses 0.95);
    3. pad both sides by ``n_fft // 2`` (``center=True``, librosa's centring) or by ``pad``
       (``center=False``) with ``pad_mode``, then STFT with ``n_fft`` / ``hop_length`` and
       ``window`` (``hann_periodic`` = librosa/scipy ``"hann"``, ``hann_symmetric`` = ``np.hanning``);
    4. ``|X| ** power + power_offset`` (2 = power, 1 = magnitude);
    5. frequency axis: ``mel`` (``n_mels`` filters over ``fmin..fmax``, ``mel_scale``, filter
       normalisation ``mel_norm``), ``linear`` (all ``n_fft//2+1`` bins) or
       ``linear_pair_average`` (keep bin 0, average bins (1,2), (3,4), ... : AVID's 513 -> 257);
    6. ``keep_frames_per_second``: keep the first ``floor(seconds · rate)`` frames (AVID: 100 -> 200);
    7. ``log``: ``ln`` / ``log10`` of ``max(x + log_offset, log_floor)``; ``db`` is
       ``10·log10(max(x, log_floor)) − 10·log10(max(db_ref, log_floor))`` clipped at
       ``db_top`` below the clip maximum (librosa ``power_to_db``); ``none`` skips it;
    8. normalisation: ``(x − norm_mean) / (norm_std + norm_std_eps)`` with scalars, or with
       per-bin vectors from the packaged stats file ``norm_stats``; neither: skipped;
    9. ``layout``: ``FT`` (frequency × time) or ``TF``.
    """

    name: str
    sample_rate: int
    clip_seconds: float | None
    n_fft: int
    hop_length: int
    window: WindowKind = "hann_periodic"
    center: bool = True
    pad: int = 0
    pad_mode: PadMode = "reflect"
    peak_normalize: float | None = None
    power: float = 2.0
    power_offset: float = 0.0
    frequency_scale: FrequencyScale = "mel"
    n_mels: int | None = None
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: MelScale = "slaney"
    mel_norm: MelNorm = "slaney"
    keep_frames_per_second: float | None = None
    log: LogKind = "ln"
    log_offset: float = 0.0
    log_floor: float = 0.0
    db_ref: float = 1.0
    db_top: float | None = None
    norm_mean: float | None = None
    norm_std: float | None = None
    norm_stats: str | None = None
    norm_std_eps: float = 0.0
    layout: Layout = "FT"

    def __post_init__(self) -> None:
        where = f"spectrogram preset {self.name!r}"
        for field, choices in _CHOICES.items():
            if getattr(self, field) not in choices:
                raise ValueError(f"{where}: {field}={getattr(self, field)!r}, expected one of {choices}")
        for field in ("sample_rate", "n_fft", "hop_length"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{where}: {field} must be a positive integer, got {value!r}")
        if self.clip_seconds is not None and not self.clip_seconds > 0:
            raise ValueError(f"{where}: clip_seconds must be > 0 or None, got {self.clip_seconds!r}")
        if self.pad < 0 or (self.center and self.pad):
            raise ValueError(f"{where}: pad={self.pad} needs center=False and pad >= 0 (center pads n_fft // 2)")
        if self.power <= 0:
            raise ValueError(f"{where}: power must be > 0, got {self.power}")
        if self.frequency_scale == "mel":
            if not self.n_mels or self.n_mels <= 0:
                raise ValueError(f"{where}: frequency_scale='mel' needs a positive n_mels, got {self.n_mels!r}")
            top = self.sample_rate / 2 if self.fmax is None else self.fmax
            if not 0 <= self.fmin < top <= self.sample_rate / 2:
                raise ValueError(f"{where}: need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={top}")
        if self.frequency_scale == "linear_pair_average" and (self.n_fft // 2) % 2:
            raise ValueError(f"{where}: linear_pair_average needs n_fft // 2 even, got n_fft={self.n_fft}")
        if self.log != "none" and not (self.log_offset > 0 or self.log_floor > 0):
            raise ValueError(f"{where}: log={self.log!r} needs log_offset > 0 or log_floor > 0 (log of 0)")
        if self.log == "db" and not self.log_floor > 0:
            raise ValueError(f"{where}: log='db' needs log_floor (librosa amin) > 0, got {self.log_floor}")
        scalars = (self.norm_mean is not None, self.norm_std is not None)
        if scalars[0] != scalars[1]:
            raise ValueError(f"{where}: give both norm_mean and norm_std, or neither")
        if scalars[0] and self.norm_stats is not None:
            raise ValueError(f"{where}: give scalar norm_mean/norm_std or a norm_stats file, not both")

    @property
    def num_bins(self) -> int:
        """Size of the frequency axis of the output."""
        if self.frequency_scale == "mel":
            return int(self.n_mels)
        if self.frequency_scale == "linear_pair_average":
            return 1 + self.n_fft // 4
        return self.n_fft // 2 + 1

    def num_samples(self, seconds: float) -> int:
        """Waveform length of a clip of ``seconds`` (rounded, so 0.7 s at 16 kHz is 11200 samples)."""
        return int(round(seconds * self.sample_rate))

    def num_frames(self, num_samples: int) -> int:
        """Number of output frames for a (trimmed / padded) mono waveform of ``num_samples``."""
        side = self.n_fft // 2 if self.center else self.pad
        padded = num_samples + 2 * side
        if padded < self.n_fft:
            raise ValueError(
                f"spectrogram preset {self.name!r}: {num_samples} samples are too short for n_fft={self.n_fft}"
            )
        frames = 1 + (padded - self.n_fft) // self.hop_length
        if self.keep_frames_per_second is not None:
            # int(duration · rate) as the original; the 1e-9 absorbs float error in 48000/24000·100.
            frames = min(frames, math.floor(num_samples / self.sample_rate * self.keep_frames_per_second + 1e-9))
        return frames

    def output_shape(self, duration: float | None = None) -> tuple[int, int]:
        """``(F, T)`` (or ``(T, F)`` for ``layout="TF"``) for a clip of ``duration`` seconds.

        ``duration`` defaults to ``clip_seconds``; a different value describes the same recipe
        run on clips of that length (the trim/pad target follows it).
        """
        seconds = self.clip_seconds if duration is None else duration
        if seconds is None or not seconds > 0:
            raise ValueError(f"spectrogram preset {self.name!r}: output_shape needs a duration > 0, got {seconds!r}")
        frames = self.num_frames(self.num_samples(seconds))
        return (self.num_bins, frames) if self.layout == "FT" else (frames, self.num_bins)


_CRISSCROSS = SpectrogramPreset(
    name="crisscross",
    sample_rate=16000,
    clip_seconds=2.0,
    n_fft=1024,
    hop_length=160,
    power_offset=FLOAT64_EPS,
    n_mels=80,
    log="ln",
    log_offset=FLOAT32_EPS,
    # Kinetics statistics hard-coded in CrissCross and XKD (spec §2.2).
    norm_mean=-5.3688107,
    norm_std=4.410007,
)

_PRESETS: dict[str, SpectrogramPreset] = {
    "crisscross": _CRISSCROSS,
    "xkd": dataclasses.replace(_CRISSCROSS, name="xkd", clip_seconds=4.0, hop_length=143),
    "avid": SpectrogramPreset(
        name="avid",
        sample_rate=24000,
        clip_seconds=2.0,
        n_fft=1024,
        hop_length=240,
        frequency_scale="linear_pair_average",
        keep_frames_per_second=100.0,
        log="db",
        log_floor=1e-10,
        db_ref=1.0,
        db_top=100.0,
        norm_stats="avid_spectdb_24k_257",
        norm_std_eps=1e-5,
        # AVID's network reads time × frequency, but our encoders all take B×1×F×T and the
        # AVID audio encoder transposes inside; layout="TF" gives the original front-end output.
        layout="FT",
    ),
    "avssrl": SpectrogramPreset(
        name="avssrl",
        sample_rate=16000,
        clip_seconds=2.0,
        peak_normalize=0.95,
        n_fft=512,
        hop_length=256,
        window="hann_symmetric",
        center=False,
        pad=(512 - 256) // 2,
        pad_mode="reflect",
        power=1.0,
        n_mels=128,
        fmax=8000.0,
        mel_norm="l1",
        log="log10",
        log_floor=1e-5,
        norm_stats="avssrl_logmel_16k_128",
        norm_std_eps=1e-6,
    ),
}


def list_presets() -> list[str]:
    """Names accepted by :func:`get_preset`, sorted."""
    return sorted(_PRESETS)


def get_preset(name: str, **overrides) -> SpectrogramPreset:
    """The named preset, optionally with fields replaced (``get_preset("xkd", clip_seconds=1.0)``)."""
    if name not in _PRESETS:
        raise KeyError(f"unknown spectrogram preset {name!r}; available: {', '.join(list_presets())}")
    preset = _PRESETS[name]
    unknown = set(overrides) - {f.name for f in dataclasses.fields(SpectrogramPreset)}
    if unknown:
        raise TypeError(f"get_preset({name!r}): unknown field(s) {sorted(unknown)}")
    return dataclasses.replace(preset, **overrides) if overrides else preset


@lru_cache(maxsize=None)
def load_norm_stats(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin ``(mean, std)`` float64 vectors from the packaged file ``avssl/media/stats/{name}.npz``."""
    path = resources.files("avssl.media").joinpath("stats", f"{name}.npz")
    if not path.is_file():
        raise FileNotFoundError(f"normalisation statistics {name!r} not found at {path}")
    with resources.as_file(path) as local, np.load(local) as stats:
        for key in ("mean", "std"):
            if key not in stats:
                raise KeyError(f"{path}: missing array {key!r} (found {sorted(stats.files)})")
        mean, std = stats["mean"].astype(np.float64), stats["std"].astype(np.float64)
    if mean.shape != std.shape or mean.ndim != 1:
        raise ValueError(f"{path}: mean {mean.shape} and std {std.shape} must be equal-length vectors")
    return mean, std


# ----------------------------------------------------------------------------- mel filterbank

_SLANEY_HZ_PER_MEL = 200.0 / 3  # linear part: 3 mels per 200 Hz below 1 kHz
_SLANEY_BREAK_HZ = 1000.0
_SLANEY_LOG_STEP = math.log(6.4) / 27.0  # 27 mels per factor 6.4 in frequency above 1 kHz


def hz_to_mel(hz: Tensor, scale: MelScale = "slaney") -> Tensor:
    """Frequency in Hz -> mel: Slaney's Auditory Toolbox scale (librosa ``htk=False``) or HTK."""
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + hz / 700.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    linear = hz / _SLANEY_HZ_PER_MEL
    logarithmic = break_mel + torch.log(hz.clamp(min=_SLANEY_BREAK_HZ) / _SLANEY_BREAK_HZ) / _SLANEY_LOG_STEP
    return torch.where(hz >= _SLANEY_BREAK_HZ, logarithmic, linear)


def mel_to_hz(mel: Tensor, scale: MelScale = "slaney") -> Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    break_mel = _SLANEY_BREAK_HZ / _SLANEY_HZ_PER_MEL
    linear = mel * _SLANEY_HZ_PER_MEL
    logarithmic = _SLANEY_BREAK_HZ * torch.exp(_SLANEY_LOG_STEP * (mel - break_mel))
    return torch.where(mel >= break_mel, logarithmic, linear)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    scale: MelScale = "slaney",
    norm: MelNorm = "slaney",
) -> Tensor:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]`` in float64.

    Filter ``m`` rises linearly from mel point ``m`` to ``m+1`` and falls to ``m+2`` on the Hz axis,
    where the ``n_mels + 2`` points are equally spaced in mel between ``fmin`` and ``fmax``
    (default ``sample_rate / 2``). ``norm``: ``slaney`` scales each filter by
    ``2 / (f[m+2] − f[m])`` (equal area), ``l1`` makes each row sum to 1 (librosa ``norm=1``),
    ``none`` keeps peak 1.
    """
    top = sample_rate / 2.0 if fmax is None else float(fmax)
    fft_hz = torch.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)  # [K]
    mel_edges = torch.linspace(
        float(hz_to_mel(torch.tensor(float(fmin), dtype=torch.float64), scale)),
        float(hz_to_mel(torch.tensor(top, dtype=torch.float64), scale)),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz_edges = mel_to_hz(mel_edges, scale)  # [M+2]
    widths = hz_edges.diff()  # [M+1]
    distance = hz_edges[:, None] - fft_hz[None, :]  # [M+2, K]
    rising = -distance[:-2] / widths[:-1, None]  # [M, K]
    falling = distance[2:] / widths[1:, None]  # [M, K]
    weights = torch.minimum(rising, falling).clamp(min=0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    elif norm == "l1":
        row_sum = weights.abs().sum(dim=1, keepdim=True)
        # Empty filters (too many mels for the FFT size) stay zero instead of becoming NaN.
        weights = weights / torch.where(row_sum > 0, row_sum, torch.ones_like(row_sum))
    return weights


def pair_average_matrix(n_fft: int) -> Tensor:
    """``[1 + n_fft // 4, n_fft // 2 + 1]`` matrix keeping bin 0 and averaging bins (1,2), (3,4), ... (AVID)."""
    n_bins = n_fft // 2 + 1
    matrix = torch.zeros(1 + n_fft // 4, n_bins, dtype=torch.float64)
    matrix[0, 0] = 1.0
    rows = torch.arange(1, matrix.shape[0])
    matrix[rows, 2 * rows - 1] = 0.5
    matrix[rows, 2 * rows] = 0.5
    return matrix


def frequency_matrix(preset: SpectrogramPreset) -> Tensor | None:
    """The ``[F, n_fft // 2 + 1]`` float64 matrix applied to the STFT bins, or None (keep all bins)."""
    if preset.frequency_scale == "mel":
        return mel_filterbank(
            preset.sample_rate, preset.n_fft, int(preset.n_mels), preset.fmin, preset.fmax,
            preset.mel_scale, preset.mel_norm,
        )
    if preset.frequency_scale == "linear_pair_average":
        return pair_average_matrix(preset.n_fft)
    return None


# ----------------------------------------------------------------------------- the module


class Spectrogram(nn.Module):
    """Waveforms -> spectrograms of one preset, batched, on the waveform's device.

    Input: ``[N]``, ``[B, N]`` (mono) or ``[B, C, N]`` (channels averaged), float32/float64 in
    [-1, 1]. Output: ``[B, 1, F, T]`` (``[B, 1, T, F]`` for ``layout="TF"``) in the input dtype.
    Window, frequency matrix and statistics are non-persistent buffers: they move with
    ``.to(device)`` and never enter a checkpoint. They are computed in float64 and stored in
    ``dtype``: float32 by default (fine for float32 audio, and usable on devices without float64);
    pass ``dtype=torch.float64`` for a float64 pipeline that matches librosa to ~1e-10 — float32
    window rounding leaks into bins 100 dB below the peak and moves their log by up to ~5e-5.
    """

    def __init__(self, preset: SpectrogramPreset | str, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        p = self.preset
        window = torch.hann_window(p.n_fft, periodic=p.window == "hann_periodic", dtype=torch.float64)
        self.register_buffer("window", window.to(dtype), persistent=False)
        matrix = frequency_matrix(p)
        self.register_buffer("freq_matrix", None if matrix is None else matrix.to(dtype), persistent=False)
        mean, std = self._normalization_stats(p)
        self.register_buffer("norm_mean", None if mean is None else mean.to(dtype), persistent=False)
        self.register_buffer("norm_std", None if std is None else std.to(dtype), persistent=False)

    @staticmethod
    def _normalization_stats(p: SpectrogramPreset) -> tuple[Tensor | None, Tensor | None]:
        # float64, shaped [F, 1] (or scalars) so they broadcast over [B, F, T].
        if p.norm_stats is not None:
            mean, std = load_norm_stats(p.norm_stats)
            if mean.shape[0] != p.num_bins:
                raise ValueError(
                    f"spectrogram preset {p.name!r}: norm_stats {p.norm_stats!r} has {mean.shape[0]} bins, "
                    f"the preset produces {p.num_bins}"
                )
            return torch.from_numpy(mean)[:, None], torch.from_numpy(std + p.norm_std_eps)[:, None]
        if p.norm_mean is not None:
            std = p.norm_std + p.norm_std_eps
            return torch.tensor(p.norm_mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        return None, None

    def extra_repr(self) -> str:
        return f"preset={self.preset.name!r}, sample_rate={self.preset.sample_rate}"

    def forward(self, waveform: Tensor) -> Tensor:
        x = self._mono_clips(waveform)  # [B, N]
        spec = self._power_spectrum(x)  # [B, K, T]
        if self.freq_matrix is not None:
            spec = self._buffer(self.freq_matrix, spec) @ spec  # [B, F, T]
        spec = spec[..., : self.preset.num_frames(x.shape[-1])]
        spec = self._log(spec)
        if self.norm_mean is not None:
            spec = (spec - self._buffer(self.norm_mean, spec)) / self._buffer(self.norm_std, spec)
        if self.preset.layout == "TF":
            spec = spec.transpose(-1, -2)
        return spec.unsqueeze(1)  # [B, 1, F, T] or [B, 1, T, F]

    @staticmethod
    def _buffer(buffer: Tensor, like: Tensor) -> Tensor:
        # No-op when module and input already agree; lets a CPU module serve float64 or GPU inputs.
        return buffer.to(device=like.device, dtype=like.dtype)

    def _mono_clips(self, waveform: Tensor) -> Tensor:
        p = self.preset
        if not torch.is_tensor(waveform) or not waveform.is_floating_point():
            kind = waveform.dtype if torch.is_tensor(waveform) else type(waveform).__name__
            raise TypeError(f"Spectrogram({p.name!r}): waveform must be a float tensor in [-1, 1], got {kind}")
        if waveform.dim() not in (1, 2, 3) or waveform.shape[-1] == 0:
            raise ValueError(
                f"Spectrogram({p.name!r}): waveform must be [N], [B, N] or [B, C, N] with N > 0, "
                f"got shape {tuple(waveform.shape)}"
            )
        x = waveform.reshape(1, -1) if waveform.dim() == 1 else waveform
        if x.dim() == 3:
            x = x.mean(dim=1)  # [B, N]: mono mix as every original loader
        if p.clip_seconds is not None:
            target = p.num_samples(p.clip_seconds)
            x = x[:, :target] if x.shape[-1] >= target else F.pad(x, (0, target - x.shape[-1]))
        if p.peak_normalize is not None:
            peak = x.abs().amax(dim=-1, keepdim=True)
            x = p.peak_normalize * x / (peak + PEAK_NORMALIZE_EPS)
        return x

    def _power_spectrum(self, x: Tensor) -> Tensor:
        p = self.preset
        side = p.n_fft // 2 if p.center else p.pad
        if side:
            if p.pad_mode == "reflect" and side >= x.shape[-1]:
                raise ValueError(
                    f"Spectrogram({p.name!r}): reflect padding of {side} samples needs more than "
                    f"{side} input samples, got {x.shape[-1]}"
                )
            x = F.pad(x[:, None], (side, side), mode=p.pad_mode)[:, 0]  # [B, N + 2·side]
        stft = torch.stft(
            x, p.n_fft, hop_length=p.hop_length, window=self._buffer(self.window, x),
            center=False, return_complex=True,
        )  # [B, K, T]
        magnitude = stft.abs()
        spec = magnitude.square() if p.power == 2.0 else magnitude.pow(p.power)
        return spec + p.power_offset if p.power_offset else spec

    def _log(self, spec: Tensor) -> Tensor:
        p = self.preset
        if p.log == "none":
            return spec
        clipped = (spec + p.log_offset).clamp(min=p.log_floor) if p.log_offset else spec.clamp(min=p.log_floor)
        if p.log == "ln":
            return clipped.log()
        if p.log == "log10":
            return clipped.log10()
        db = 10.0 * clipped.log10() - 10.0 * math.log10(max(p.db_ref, p.log_floor))
        if p.db_top is not None:
            # top_db is relative to each clip's own maximum, as librosa.power_to_db on one clip.
            db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - p.db_top)
        return db
