"""`avssl evaluate` and `avssl extract` end to end on real media; reports and their contents."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from avssl import cli
from avssl.commands import evaluate as evaluate_command
from avssl.commands import extract as extract_command
from avssl.data.benchmarks import load_benchmark
from avssl.evaluate.protocols import (
    EncoderChoice,
    EvaluationResult,
    FoldResult,
    ProtocolError,
    list_protocols,
    load_protocol,
)
from avssl.evaluate.report import render_markdown, summarise_folds, write_report
from avssl.media import decode
from avssl.models.checkpoints.avssl_native import save_encoder
from avssl.models.registry import create_encoder
from benchmark_layouts import esc50_from_fsdd

SMALL = ["--set", "clip.seconds=1.0", "--set", "train.clips=1", "--set", "test.clips=2", "--set", "svm.c=[0.001, 1.0]"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def esc50_root(shared_data, tmp_path_factory):
    return esc50_from_fsdd(shared_data, tmp_path_factory.mktemp("cli") / "ESC-50", takes=5,
                           speakers=("theo", "nicolas"))


def run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_commands_are_registered():
    assert cli.COMMANDS["evaluate"] == "avssl.commands.evaluate"
    assert cli.COMMANDS["extract"] == "avssl.commands.extract"


def test_list_shows_presets_with_versions(capsys):
    assert run(evaluate_command, ["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("esc50/crisscross_svm_2s", "ucf101/xkd_svm", "kinetics_sound/xkd_av_svm", "esc50/avssl-v1_svm"):
        assert name in out and name in list_protocols()
    assert "selection=test" in out and "selection=heldout" in out and "svm" in out.splitlines()[0]


def test_every_preset_parses_and_names_a_registered_kind():
    from avssl.evaluate.protocols import list_protocol_kinds

    for name in list_protocols():
        preset = load_protocol(name)
        assert preset.name == name and preset.kind in list_protocol_kinds() and preset.source


def test_evaluate_writes_json_and_markdown(esc50_root, tmp_path, capsys):
    out = tmp_path / "reports"
    argv = ["--protocol", "esc50/crisscross_svm_2s", "--encoder", "audio_resnet_small", "--data", str(esc50_root),
            "--folds", "1,2", "--out", str(out), "--seed", "7", "--batch-size", "64", "--no-progress", *SMALL]
    assert run(evaluate_command, argv) == 0
    report = json.loads(next(out.glob("*.json")).read_text())
    assert report["protocol"]["name"] == "esc50/crisscross_svm_2s" and report["protocol"]["version"] == "1"
    assert report["protocol"]["selection"] == "test" and report["seed"] == 7
    assert report["protocol"]["overrides"]["svm.c"] == [0.001, 1.0]
    assert "--protocol esc50/crisscross_svm_2s" in report["command_line"]
    assert "--set train.clips=1" in report["command_line"]
    top1 = [f["metrics"]["top1"] for f in report["folds"]]
    assert [f["fold"] for f in report["folds"]] == [1, 2]
    assert report["summary"]["top1"]["mean"] == pytest.approx(np.mean(top1))
    assert report["summary"]["top1"]["std"] == pytest.approx(np.std(top1, ddof=1))
    markdown = next(out.glob("*.md")).read_text()
    assert "esc50/crisscross_svm_2s (version 1)" in markdown and "on the test fold" in markdown
    assert "parameters overridden" in markdown and "**mean ± std**" in markdown
    assert markdown in capsys.readouterr().out


def test_report_beside_checkpoint_and_cache_resumes(esc50_root, tmp_path, monkeypatch):
    checkpoint = save_encoder(create_encoder("audio_resnet_small"), tmp_path / "run" / "audio.pt")
    argv = ["--protocol", "esc50/avssl-v1_knn", "--encoder", "audio_resnet_small", "--checkpoint", str(checkpoint),
            "--data", str(esc50_root), "--folds", "4", "--cache", str(tmp_path / "cache"), "--no-progress",
            "--set", "test.clips=2"]
    assert run(evaluate_command, argv) == 0
    first = json.loads(next((tmp_path / "run").glob("eval-esc50-avssl-v1_knn-v1-*.json")).read_text())
    assert first["encoders"] == [{"name": "audio_resnet_small", "checkpoint": str(checkpoint)}]
    assert list((tmp_path / "cache" / "manifests").glob("esc50-*.csv"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached run must not decode audio")

    monkeypatch.setattr(decode, "read_audio", no_decoding)
    assert run(evaluate_command, argv) == 0
    second = json.loads(next((tmp_path / "run").glob("eval-esc50-avssl-v1_knn-v1-*.json")).read_text())
    assert second["folds"][0]["metrics"] == first["folds"][0]["metrics"]


def test_evaluate_input_errors(esc50_root, tmp_path, capsys):
    base = ["--encoder", "audio_resnet_small", "--data", str(esc50_root), "--no-progress"]
    with pytest.raises(ProtocolError, match="unknown protocol 'esc50/nope'.*esc50/crisscross_svm_2s"):
        run(evaluate_command, ["--protocol", "esc50/nope", *base])
    with pytest.raises(ProtocolError, match="params has no mapping 'trian'"):
        run(evaluate_command, ["--protocol", "esc50/xkd_svm", *base, "--set", "trian.clips=3"])
    with pytest.raises(ProtocolError, match=r"fold\(s\) \[7\] do not exist"):
        run(evaluate_command, ["--protocol", "esc50/xkd_svm", *base, "--folds", "7"])
    with pytest.raises(ValueError, match="one per encoder or one for all"):
        two = ["--checkpoint", __file__, "--checkpoint", __file__]
        run(evaluate_command, ["--protocol", "esc50/xkd_svm", *base, *two])
    assert run(evaluate_command, ["--encoder", "audio_resnet_small"]) == 2
    assert "--protocol and --data are required" in capsys.readouterr().err
    bad = tmp_path / "evaluate" / "esc50" / "broken.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("name: esc50/broken\nversion: 1\nkind: svm\nbenchmark: esc50\nselection: best\nparams: {}\n")
    with pytest.raises(ProtocolError, match="broken.yaml: field selection must be one of"):
        load_protocol(bad)


def test_extract_writes_mean_and_per_clip_features(esc50_root, tmp_path):
    data = load_benchmark("esc50", esc50_root)
    manifest = data.manifest.with_rows(data.manifest.rows[:6])
    manifest_path = manifest.write(esc50_root / "subset_manifest.csv")
    out = tmp_path / "features"
    argv = ["--encoder", "audio_resnet_small", "--manifest", str(manifest_path), "--out", str(out), "--clips", "3",
            "--per-clip", "--no-progress"]
    assert run(extract_command, argv) == 0
    mean, clips = np.load(out / "features.npy"), np.load(out / "clip_features.npy")
    assert mean.shape == (6, 128) and clips.shape == (6, 3, 128)
    np.testing.assert_allclose(mean, clips.mean(axis=1), rtol=1e-5, atol=1e-7)
    with open(out / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert [r["path"] for r in index] == [row.path for row in manifest.rows]
    assert [r["label"] for r in index] == [row.label for row in manifest.rows]
    assert json.loads((out / "extract.json").read_text())["dim"] == 128


def test_summary_uses_sample_std_and_marks_single_split(tmp_path):
    preset = load_protocol("kinetics_sound/xkd_av_svm")
    folds = [FoldResult(1, {"top1": 50.0}), FoldResult(2, {"top1": 70.0}), FoldResult(3, {"top1": 90.0, "top5": 99.0})]
    summary = summarise_folds(folds)
    assert summary["top1"] == {"mean": 70.0, "std": pytest.approx(20.0), "n": 3}
    assert summary["top5"] == {"mean": 99.0, "std": 0.0, "n": 1}
    encoders = [EncoderChoice("vit_b_video_xkd")]
    single = EvaluationResult(preset, [FoldResult(None, {"top1": 42.0})], encoders, 0, "", 1.0, "0")
    markdown = render_markdown(single)
    assert "| test | 42.00 |" in markdown and "mean ± std" not in markdown
    assert "random initialisation" in markdown
    json_path, md_path = write_report(single, tmp_path)
    assert json_path.name == "eval-kinetics_sound-xkd_av_svm-v1-vit_b_video_xkd.json"
    assert md_path.read_text() == markdown
