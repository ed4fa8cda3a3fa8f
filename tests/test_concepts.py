"""Concept generalisation (spec §3B.7): class-name similarity, the seen/unseen rule, `avssl concepts`.

The downstream classes are the 101 real UCF101 class names; the pretraining classes are real
VGGSound class names (those of the VGGSound clips in shared/data, read from their MANIFEST.csv,
plus well-known VGGSound classes written here).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from avssl.evaluate.class_name_similarity import (
    get_class_similarity,
    humanise_class_name,
    list_class_similarities,
    load_minilm,
    register_class_similarity,
)
from avssl.evaluate.concepts import (
    read_class_names,
    read_concept_split,
    split_concepts,
    top_k_positive,
    write_concept_split,
)

UCF101_CLASSES = """
ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch Basketball
BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles BodyWeightSquats Bowling
BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth CleanAndJerk CliffDiving CricketBowling
CricketShot CuttingInKitchen Diving Drumming Fencing FieldHockeyPenalty FloorGymnastics FrisbeeCatch
FrontCrawl GolfSwing Haircut Hammering HammerThrow HandstandPushups HandstandWalking HeadMassage
HighJump HorseRace HorseRiding HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope
Kayaking Knitting LongJump Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars
PizzaTossing PlayingCello PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar
PlayingTabla PlayingViolin PoleVault PommelHorse PullUps Punch PushUps Rafting RockClimbingIndoor
RopeClimbing Rowing SalsaSpin ShavingBeard Shotput SkateBoarding Skiing Skijet SkyDiving
SoccerJuggling SoccerPenalty StillRings SumoWrestling Surfing Swing TableTennisShot TaiChi
TennisSwing ThrowDiscus TrampolineJumping Typing UnevenBars VolleyballSpiking WalkingWithDog
WallPushups WritingOnBoard YoYo
""".split()

# Well-known VGGSound classes (VGGSound's class list, 309 names), beside those in shared/data.
VGGSOUND_EXTRA = [
    "playing acoustic guitar", "playing electric guitar", "playing violin, fiddle", "playing drum kit",
    "playing piano", "playing flute", "playing tabla", "playing sitar", "playing table tennis",
    "playing badminton", "dog barking", "horse neighing", "typing on computer keyboard", "skateboarding",
    "lawn mowing", "chopping wood", "hammering nails", "mouse clicking", "tap dancing", "cattle mooing",
    "bowling impact", "basketball bounce", "train horning", "printer printing", "playing bagpipes",
]


@pytest.fixture(scope="module")
def vggsound_classes(shared_data) -> list[str]:
    names: list[str] = []
    with open(shared_data / "vggsound" / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            names += [n for n in row["labels"].split("|") if n not in names]
    return names + [n for n in VGGSOUND_EXTRA if n not in names]


@pytest.fixture(scope="module")
def minilm(monkeypatch_module):
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch_module.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        return load_minilm()
    except ImportError as exc:
        pytest.skip(f"all-MiniLM-L6-v2 not installed (extra 'concepts'): {exc}")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def ucf_split(minilm, vggsound_classes):
    return split_concepts(UCF101_CLASSES, vggsound_classes, threshold=0.47, top_k=3)


def test_ucf101_list_is_complete():
    assert len(UCF101_CLASSES) == len(set(UCF101_CLASSES)) == 101


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ApplyEyeMakeup", "apply eye makeup"),
        ("YoYo", "yo yo"),
        ("brush_hair", "brush hair"),
        ("playing violin, fiddle", "playing violin, fiddle"),
        ("HMDBClass", "hmdb class"),
        ("  Sword-Exercise ", "sword exercise"),
    ],
)
def test_humanise_class_name(name, expected):
    assert humanise_class_name(name) == expected


def test_read_class_names_formats_and_errors(tmp_path):
    indexed = tmp_path / "classInd.txt"
    indexed.write_text("1 ApplyEyeMakeup\n2 ApplyLipstick\n\n# comment\n3 Playing Guitar\n")
    assert read_class_names(indexed) == ["ApplyEyeMakeup", "ApplyLipstick", "Playing Guitar"]
    duplicate = tmp_path / "dup.txt"
    duplicate.write_text("dog barking\ncat meowing\ndog barking\n")
    with pytest.raises(ValueError, match=r"dup\.txt:3: class 'dog barking' repeats line 1"):
        read_class_names(duplicate)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="no class names"):
        read_class_names(empty)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_class_names(tmp_path / "missing.txt")


def test_top_k_positive_keeps_positive_entries_in_stable_order():
    sims = np.array([0.2, 0.0, 0.5, 0.2, -0.1])
    assert top_k_positive(sims, 3) == [2, 0, 3]
    assert top_k_positive(np.array([0.0, 0.0, 0.3]), 3) == [2]
    assert top_k_positive(np.zeros(4), 2) == []


def test_tfidf_similarity_is_lexical_and_bounded():
    tfidf = get_class_similarity("tfidf_char")
    sims = tfidf(["PlayingGuitar", "ApplyEyeMakeup"], ["playing electric guitar", "dog barking"])
    assert sims.shape == (2, 2)
    assert np.all(sims >= 0) and np.all(sims <= 1 + 1e-6)
    assert sims[0, 0] > sims[0, 1]  # shares "playing" and "guitar"
    same = tfidf(["dog barking"], ["dog barking"])
    np.testing.assert_allclose(same, [[1.0]], atol=1e-6)


def test_minilm_embeddings_match_the_split_scores(ucf_split, minilm, vggsound_classes):
    # Recompute the primary similarity directly with the sentence-transformers model.
    d = minilm.encode([humanise_class_name(n) for n in UCF101_CLASSES], normalize_embeddings=True)
    p = minilm.encode([humanise_class_name(n) for n in vggsound_classes], normalize_embeddings=True)
    sims = d @ p.T
    for row, verdict in enumerate(ucf_split.verdicts):
        assert verdict.name == UCF101_CLASSES[row]
        assert verdict.nearest == vggsound_classes[int(np.argmax(sims[row]))]
        assert verdict.similarity == pytest.approx(float(sims[row].max()), abs=1e-5)


def test_seen_rule_holds_for_every_class(ucf_split):
    seen, unseen = ucf_split.seen, ucf_split.unseen
    assert set(seen).isdisjoint(unseen) and sorted(seen + unseen) == sorted(UCF101_CLASSES)
    for v in ucf_split.verdicts:
        assert set(v.shared) == set(v.primary_top_k) & set(v.secondary_top_k)
        assert len(v.primary_top_k) <= 3 and len(v.secondary_top_k) <= 3
        assert v.seen == (v.similarity > 0.47 and bool(v.shared))
    assert 0 < len(seen) < len(UCF101_CLASSES) // 2  # 52 sound classes cover some UCF actions, not most


def test_instrument_classes_are_seen_and_gymnastics_unseen(ucf_split):
    seen = set(ucf_split.seen)
    for name in ("PlayingCello", "PlayingGuitar", "PlayingViolin", "PlayingSitar", "PlayingTabla"):
        assert name in seen, name
    for name in ("UnevenBars", "ParallelBars", "ApplyEyeMakeup", "JumpingJack", "Knitting"):
        assert name not in seen, name
    verdict = {v.name: v for v in ucf_split.verdicts}["PlayingCello"]
    assert verdict.nearest == "playing cello"


def test_threshold_and_forced_outliers(ucf_split, vggsound_classes):
    # Cosine similarities of unit vectors never exceed 1 (up to float32 rounding).
    exact_names = ["PlayingCello", "PlayingPiano", "PlayingFlute", "PlayingTabla"]
    strict = split_concepts(exact_names, vggsound_classes, threshold=1.001)
    assert strict.seen == []
    # "PommelHorse" meets "horse neighing" by name only: the kind of false friend that AV-SSRL's
    # manual outlier list removes.
    assert "PommelHorse" in ucf_split.seen
    some = ["PommelHorse", "PlayingCello", "Knitting"]
    forced = split_concepts(some, vggsound_classes, threshold=0.47, force_unseen=["PommelHorse"])
    assert forced.seen == ["PlayingCello"] and forced.unseen == ["PommelHorse", "Knitting"]
    assert [v.forced_unseen for v in forced.verdicts] == [True, False, False]
    with pytest.raises(ValueError, match="NotAClass"):
        split_concepts(UCF101_CLASSES, vggsound_classes, force_unseen=["NotAClass"])


def test_second_encoder_is_pluggable(minilm, vggsound_classes):
    # An encoder that only "knows" instruments: the agreement rule must follow it.
    @register_class_similarity("test_only_cello")
    def only_cello(downstream, pretrain):
        return np.array([[1.0 if ("cello" in d.lower() and p == "playing cello") else 0.0 for p in pretrain]
                         for d in downstream], dtype=np.float32)

    assert "test_only_cello" in list_class_similarities()
    some = ["PlayingGuitar", "PlayingCello", "PlayingViolin", "Knitting"]
    split = split_concepts(some, vggsound_classes, secondary="test_only_cello")
    assert split.seen == ["PlayingCello"]
    assert "test_only_cello" in split.notes["secondary"]


def test_write_and_read_split(ucf_split, tmp_path):
    paths = write_concept_split(ucf_split, tmp_path / "split")
    seen, unseen = read_concept_split(tmp_path / "split")
    assert seen == ucf_split.seen and unseen == ucf_split.unseen
    rows = list(csv.DictReader(paths["scores.csv"].open(encoding="utf-8")))
    assert [r["class"] for r in rows] == UCF101_CLASSES
    assert {r["class"] for r in rows if r["seen"] == "1"} == set(seen)
    summary = json.loads(paths["split.json"].read_text())
    assert summary["num_seen"] == len(seen) and summary["threshold"] == 0.47
    assert "Phrase-BERT" in summary["notes"]["secondary"]


def test_command_writes_the_split(vggsound_classes, ucf_split, tmp_path, capsys):
    import argparse

    from avssl.cli import COMMANDS
    from avssl.commands import concepts as command

    assert COMMANDS["concepts"] == "avssl.commands.concepts"
    downstream = tmp_path / "ucf101.txt"
    downstream.write_text("".join(f"{i} {n}\n" for i, n in enumerate(UCF101_CLASSES, start=1)))
    pretrain = tmp_path / "vggsound.txt"
    pretrain.write_text("\n".join(vggsound_classes) + "\n")
    out = tmp_path / "out"
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--downstream-classes", str(downstream), "--pretrain-classes", str(pretrain),
                              "--threshold", "0.47", "--topk", "3", "--out", str(out)])
    assert command.run(args) == 0
    assert (out / "seen.txt").read_text().split() == ucf_split.seen
    assert (out / "unseen.txt").read_text().split() == ucf_split.unseen
    assert f"{len(ucf_split.seen)} seen, {len(ucf_split.unseen)} unseen" in capsys.readouterr().out


def test_protocol_split_from_a_pretrain_class_file(ucf_split, vggsound_classes, tmp_path):
    from avssl.evaluate.concepts import concept_split_for
    from avssl.evaluate.protocols import load_protocol

    (tmp_path / "vggsound.txt").write_text("\n".join(vggsound_classes) + "\n")
    preset = load_protocol("ucf101/avssrl_concepts")
    with pytest.raises(ValueError, match="set split_dir"):
        concept_split_for(preset, UCF101_CLASSES, tmp_path)
    # a relative path is resolved against the benchmark folder; the preset's threshold is UCF's 0.47
    seen, unseen, how = concept_split_for(
        preset.with_overrides({"concepts.pretrain_classes": "vggsound.txt"}), UCF101_CLASSES, tmp_path
    )
    assert (seen, unseen) == (ucf_split.seen, ucf_split.unseen)
    assert how["threshold"] == 0.47 and how["secondary"] == "tfidf_char"
    write_concept_split(ucf_split, tmp_path / "split")
    with pytest.raises(ValueError, match="not classes of ucf101"):
        concept_split_for(preset.with_overrides({"concepts.split_dir": "split"}), UCF101_CLASSES[:50], tmp_path)
