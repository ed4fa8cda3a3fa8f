"""Parameters and FLOPs of every registered encoder, written to docs/models.md.

    python benchmarks/model_table.py               # writes docs/models.md
    python benchmarks/model_table.py --out -       # prints it

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on a forward pass of batch 1. That
counter charges **2 FLOPs per multiply-add** of convolutions, matrix products and attention, and
nothing for BatchNorm, activations and pooling; so GFLOPs here = 2 × GMACs, the convention of the
landscape table (§5.1), while fvcore/MMEngine-style tables count one per multiply-add. Networks are
built on the ``meta`` device: shapes only, no memory, a few seconds for the whole table.

The parameter counts are checked against the figures the spec derived from the original code
(§1.2, §2.1, §3A.1, §4.1); the script exits with status 1 if one differs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from avssl.models import zoo  # noqa: E402
from avssl.models.checkpoints import list_layouts  # noqa: E402
from avssl.models.encoder import count_parameters, standard_input_shape  # noqa: E402
from avssl.models.registry import create_encoder, describe_encoder, list_encoders  # noqa: E402

# Parameter counts of the original networks (without classifier), spec [derived].
SPEC_PARAMETERS: dict[str, tuple[int, str]] = {
    "r2plus1d_18_vmz": (33_165_639, "§1.2"),
    "r2plus1d_18_avid": (15_379_136, "§3A.1"),
    "r2plus1d_18_crisscross": (15_379_136, "§2.1"),
    "r2plus1d_18_avssrl": (15_379_136, "§3B.2"),
    "audio_resnet18_crisscross": (11_170_240, "§2.1"),
    "audio_conv2d10_avid": (4_725_696, "§3A.1"),
    "audio_conv2d10_avssrl": (4_725_696, "§3B.2"),
    "vit_b_video_xkd": (87_691_008, "§4.1"),
    "vit_b_audio_xkd": (85_509_888, "§4.1"),
}


def _torchvision_r2plus1d_18() -> nn.Module:
    from torchvision.models.video import r2plus1d_18

    model = r2plus1d_18()
    model.fc = nn.Identity()  # compare backbones without the 400-way classifier
    return model


# Other input sizes worth a row: those quoted in landscape §0 item 6 / §5.1 and the usual
# clip lengths. (builder, label, input shape without batch, landscape GFLOPs or None)
EXTRA_INPUTS: list[tuple[str, tuple[int, ...], float | None]] = [
    ("r2plus1d_18_avid", (3, 8, 112, 112), 6.2),
    ("r2plus1d_18_avid", (3, 16, 112, 112), 12.3),
    ("r2plus1d_18_avid", (3, 32, 112, 112), 24.6),
    ("r2plus1d_18_avid", (3, 8, 224, 224), 24.3),
    ("r2plus1d_18_vmz", (3, 8, 112, 112), None),
    ("r2plus1d_18_vmz", (3, 16, 112, 112), None),
    ("torchvision r2plus1d_18", (3, 8, 112, 112), 40.5),
    ("torchvision r2plus1d_18", (3, 16, 112, 112), 81.0),
    ("audio_resnet18_crisscross", (1, 80, 200), 1.21),
    ("audio_resnet18_crisscross", (1, 80, 100), 0.64),
    ("audio_conv2d10_avid", (1, 257, 200), 2.88),
]
EXTRA_BUILDERS: dict[str, Callable[[], nn.Module]] = {"torchvision r2plus1d_18": _torchvision_r2plus1d_18}


@dataclass(frozen=True)
class Row:
    name: str
    modality: str
    input_shape: tuple[int, ...]  # without the batch dimension
    parameters: int
    gflops: float
    out_dim: int | None = None
    description: str = ""


def _build_meta(name: str) -> nn.Module:
    with torch.device("meta"):
        model = EXTRA_BUILDERS[name]() if name in EXTRA_BUILDERS else create_encoder(name)
    return model.eval()


def count_flops(model: nn.Module, shape: Sequence[int]) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of ``model`` on a ``shape`` tensor."""
    device = next(model.parameters()).device
    x = torch.zeros(tuple(shape), device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def measure(name: str, input_shape: Sequence[int] | None = None) -> Row:
    """Parameters and GFLOPs of ``name`` at ``input_shape`` (default: its standard input)."""
    model = _build_meta(name)
    shape = tuple(input_shape) if input_shape is not None else standard_input_shape(model, 1)[1:]
    return Row(
        name=name,
        modality=getattr(model, "modality", "video"),
        input_shape=tuple(shape),
        parameters=count_parameters(model),
        gflops=count_flops(model, (1, *shape)) / 1e9,
        out_dim=getattr(model, "out_dim", None),
        description=describe_encoder(name) if name not in EXTRA_BUILDERS else "",
    )


def parameter_mismatches(rows: Sequence[Row]) -> list[str]:
    """Encoders whose parameter count differs from the spec figure."""
    return [
        f"{r.name}: {r.parameters:,} parameters, spec {SPEC_PARAMETERS[r.name][0]:,}"
        for r in rows
        if r.name in SPEC_PARAMETERS and r.parameters != SPEC_PARAMETERS[r.name][0]
    ]


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)


def _encoder_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| encoder | modality | standard input | out | parameters | spec | GFLOPs | what it is |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spec = SPEC_PARAMETERS.get(r.name)
        spec_text = f"{spec[0]:,} ({spec[1]}) ✓" if spec and spec[0] == r.parameters else (
            f"{spec[0]:,} ({spec[1]}) ✗" if spec else "–")
        lines.append(
            f"| `{r.name}` | {r.modality} | {_shape_text(r.input_shape)} | {r.out_dim} | {r.parameters:,} "
            f"| {spec_text} | {r.gflops:.2f} | {r.description} |"
        )
    return lines


def _extra_table(rows: Sequence[tuple[Row, float | None]]) -> list[str]:
    lines = ["| network | input | parameters | GFLOPs | landscape §5.1 |", "|---|---|---|---|---|"]
    for row, quoted in rows:
        label = row.name if row.name in EXTRA_BUILDERS else f"`{row.name}`"
        lines.append(
            f"| {label} | {_shape_text(row.input_shape)} | {row.parameters:,} | {row.gflops:.2f} "
            f"| {quoted if quoted is not None else '–'} |"
        )
    return lines


def _layout_table() -> list[str]:
    lines = ["| layout | files it reads |", "|---|---|"]
    lines += [f"| `{layout.name}` | {layout.description} |" for layout in list_layouts()]
    return lines


def _zoo_table() -> list[str]:
    lines = [
        "| zoo entry | encoder(s) | pretraining data | file | SHA-256 prefix | reported (authors) |",
        "|---|---|---|---|---|---|",
    ]
    for e in zoo.list_entries():
        file_text = f"[`{e.file_name}`]({e.url})" if e.url else f"`{e.file_name or '–'}` (by hand)"
        results = "; ".join(f"{r.benchmark} {r.protocol} {r.value_text}" for r in e.results)
        lines.append(
            f"| `{e.name}` | {', '.join(f'`{n}`' for n in e.encoders.values())} | {e.pretraining_data} "
            f"| {file_text} | {e.sha256_prefix or '–'} | {results} |"
        )
    return lines


INTRO = """# Encoders, checkpoints and the model zoo

*Generated by `python benchmarks/model_table.py`; edit the script, not this file.*

Every encoder is created by name (`avssl.create_encoder(NAME, checkpoint_path=FILE | pretrained=ZOO_ENTRY)`)
and follows one contract: `forward(x) -> B×out_dim`, `forward_features(x) -> dict` of named maps
(`conv1`, `conv2x`..`conv5x`, `pool` for the CNNs; `tokens`, `pooled` for the ViTs), and the attributes
`out_dim`, `modality`, `input_spec`. Video input is `B×3×T×H×W` (RGB in [0,1] normalised with
`input_spec.mean/std`: Kinetics statistics for XDC, ImageNet for the others); audio input is a
`B×1×F×T` spectrogram from the preset `input_spec.spectrogram`. AVID's Conv2D-10 was trained on
time × frequency: it takes `B×1×257×T` like the others and transposes inside. Audio CNNs check the
number of frequency bins (`freq_bins`), because a transposed spectrogram would otherwise run silently.

## Registered encoders

"""

R2PLUS1D_NOTE = """
## Two networks called "R(2+1)D-18"

* `r2plus1d_18_vmz` is XDC's VMZ definition: torchvision `VideoResNet` names (`stem.*`, `layer*.*`),
  a (2+1)D conv whose middle width is recomputed per conv (`layer{2,3,4}.0.conv2` has 288/576/1152
  mid-planes where torchvision's `r2plus1d_18` has 230/460/921, so XDC weights do not load into
  torchvision's model), BatchNorm eps 1e-3. XDC sets BN momentum 0.9 calling it "exact Caffe2
  momentum"; Caffe2's momentum weighs the old value, so that is PyTorch 0.1, our default
  (`bn_momentum=0.9` reproduces the official loader). `num_classes=None` (default) has no `fc`.
* `r2plus1d_18_avid` / `_crisscross` / `_avssrl` are one class (`R2Plus1dAVID`): 3-D 3×7×7 stem with
  max-pool, no mid-plane widening, `out_bn` after the residual sum. They differ in pooling (`max`
  for AVID and AV-SSRL, `avg` for CrissCross pretraining — pass `pool="max"` for CrissCross's
  fine-tuning configs) and in their standard input. AV-SSRL's key names are mapped on loading.
* `r2plus1d_small` and `audio_resnet_small` are the same code, narrower (16..128 channels) and one
  block per stage, for CPU tests and the demo.

## FLOPs

`torch.utils.flop_counter.FlopCounterMode`, forward pass, batch 1: **2 FLOPs per multiply-add**
(GFLOPs = 2 × GMACs); BatchNorm, activations and pooling are not counted. The landscape figures
(6.2 G for AVID's R(2+1)D-18 and 40.5 G for "the VMZ one" at 8×112²) are in this convention. The
40.5 G belongs to **torchvision's** `r2plus1d_18` (31.3 M parameters); XDC's own VMZ variant, with
its wider mid-planes, costs about 1 G more (below). torchvision's `_ops` metadata of 40.519 is the
same number counted in GMACs for 16-frame clips. fvcore / MMEngine-style tables (mmaction2,
pytorchvideo) count one FLOP per multiply-add: halve our numbers to compare.

"""


def render(rows: Sequence[Row], extra_rows: Sequence[tuple[Row, float | None]]) -> str:
    parts = [INTRO, *_encoder_table(rows), R2PLUS1D_NOTE, *_extra_table(extra_rows)]
    parts += [
        "",
        "## Checkpoint layouts",
        "",
        "`create_encoder(NAME, checkpoint_path=FILE)` recognises the file's layout, maps its keys to ours and",
        "loads strictly: a mismatch names every missing, unexpected and wrongly shaped key. Files are read",
        "with `torch.load(weights_only=True)`. `save_encoder(encoder, path)` / `load_encoder(path)`",
        "(`avssl.models.checkpoints.avssl_native`) write and read avssl's own format (state dict + header).",
        "",
        *_layout_table(),
        "",
        "## Model zoo",
        "",
        "`avssl zoo list` prints this table; `avssl zoo fetch NAME` downloads into `torch.hub.get_dir()/checkpoints`",
        "and verifies the SHA-256 prefix where the authors published one; `avssl zoo load NAME --file LOCAL`",
        "loads a copy downloaded by hand. torch.hub: `torch.hub.load(REPO, 'xdc_video_encoder')`, `avid_encoder`,",
        "`crisscross_encoder`, `avssrl_encoder`, `xkd_encoder`, `encoder` (see `hubconf.py`). Results are the",
        "authors' numbers as reported (top-1 % unless mAP), not measured by avssl.",
        "",
        *_zoo_table(),
        "",
    ]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "models.md"), help="output file, or - for stdout")
    args = parser.parse_args(argv)
    rows = [measure(name) for name in list_encoders()]
    extra = [(measure(name, shape), quoted) for name, shape, quoted in EXTRA_INPUTS]
    text = render(rows, extra)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    mismatches = parameter_mismatches(rows)
    for line in mismatches:
        print(f"parameter count differs from the spec: {line}", file=sys.stderr)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
