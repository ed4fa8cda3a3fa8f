"""Benchmark adapters on annotation files in the official formats, around real clips.

Each test writes a benchmark's annotation files (the format its release ships) around clips of the
shared test data linked under the official names, then checks the manifest the adapter builds:
rows, class order, split/fold columns, labels, missing media reported and skipped, malformed files
rejected with the file and line named. No decoding happens here.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from avssl.data.benchmarks import AnnotationError, list_benchmarks, load_benchmark
from avssl.data.benchmarks.kinetics_sound import CLASS_LISTS, VERIFIED
from benchmark_layouts import (
    HMDB_CLIPS,
    UCF_CLIPS,
    VAS_TO_KINETICS_SOUND,
    esc50_from_fsdd,
    hmdb51_from_videos,
    kinetics_from_vas,
    link,
    read_manifest,
    ucf101_from_videos,
    ucf_split_of,
    vggsound_from_clips,
    write_csv,
)


def rows_of(data) -> list[dict[str, str]]:
    columns = ("path", "label", "split", "fold", "split_1", "split_2", "split_3", "split_4", "split_5")
    return [{c: data.cell(i, c) for c in columns} for i in range(len(data.manifest))]


def test_registry_lists_every_adapter():
    assert set(list_benchmarks()) == {
        "ucf101", "hmdb51", "esc50", "dcase", "fsd50k", "kinetics400", "kinetics_sound", "vggsound", "audioset",
    }


def test_esc50_folds_and_classes(shared_data, tmp_path):
    speakers = ("george", "jackson")
    root = esc50_from_fsdd(shared_data, tmp_path / "ESC-50", takes=5, speakers=speakers)
    data = load_benchmark("esc50", root)
    fsdd = [r for r in read_manifest(shared_data, "fsdd") if int(r["index"]) < 5 and r["speaker"] in speakers]
    assert len(data.manifest) == len(fsdd) == 100
    assert data.classes == [f"digit_{d}" for d in range(10)]  # ordered by target
    assert data.folds == (1, 2, 3, 4, 5)
    for k in data.folds:
        test = data.split_rows(k, "test")
        assert all(data.cell(r, "fold") == str(k) for r in test)
        assert len(test) == 20 and len(data.split_rows(k, "train")) == 80
    first = next(i for i in range(100) if data.cell(i, "path").endswith("/3_jackson_2.flac"))
    assert data.labels_of(first) == [3] and data.cell(first, "fold") == "3"
    assert data.path_of(first).is_file()


def test_esc50_missing_media_reported_and_skipped(shared_data, tmp_path, caplog):
    root = esc50_from_fsdd(shared_data, tmp_path / "ESC-50", takes=1)
    (root / "audio" / "0_george_0.flac").unlink()
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("esc50", root)
    assert len(data.manifest) == 59 and data.missing == ["0_george_0.flac"]
    assert "1 of 60 media files" in caplog.text and "0_george_0.flac" in caplog.text


def test_unreadable_media_reported_and_skipped(shared_data, tmp_path, caplog):
    root = esc50_from_fsdd(shared_data, tmp_path / "ESC-50", takes=1, speakers=("nicolas", "theo"))
    target = root / "audio" / "4_nicolas_0.flac"
    target.unlink()
    target.write_bytes(b"not a flac file" * 100)
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("esc50", root)
    assert len(data.manifest) == 19 and [p for p, _ in data.unreadable] == ["audio/4_nicolas_0.flac"]
    assert "1 media files could not be probed" in caplog.text


def test_media_facts_probed_and_cached(shared_data, tmp_path, monkeypatch):
    root = esc50_from_fsdd(shared_data, tmp_path / "ESC-50", takes=1, speakers=("yweweler",))
    cache = tmp_path / "cache" / "esc50.csv"
    data = load_benchmark("esc50", root, manifest_cache=cache)
    truth = {Path(r["file"]).name: float(r["duration_s"]) for r in read_manifest(shared_data, "fsdd")}
    for row in data.manifest:
        assert row.has_audio and not row.has_video and row.sample_rate == 16000
        assert row.duration == pytest.approx(truth[Path(row.path).name], abs=0.002)
    probed = []
    monkeypatch.setattr("avssl.data.benchmarks.media_facts._facts", lambda path: probed.append(path))
    again = load_benchmark("esc50", root, manifest_cache=cache)  # every file known: nothing probed
    assert probed == [] and [r.duration for r in again.manifest] == [r.duration for r in data.manifest]


def test_esc50_bad_annotation_names_file_and_line(shared_data, tmp_path):
    root = esc50_from_fsdd(shared_data, tmp_path / "ESC-50", takes=1)
    meta = root / "meta" / "esc50.csv"
    with open(meta, newline="") as f:
        records = list(csv.reader(f))
    records[3][1] = "x"  # line 4: the fold of the third recording
    write_csv(meta, None, records)
    with pytest.raises(AnnotationError, match=r"esc50\.csv:4: fold and target must be integers"):
        load_benchmark("esc50", root)


def test_ucf101_three_splits_from_official_lists(shared_data, tmp_path):
    root = ucf101_from_videos(shared_data, tmp_path / "UCF101", missing=("Wave/v_Wave_g20_c02.avi",))
    data = load_benchmark("ucf101", root)
    assert data.classes == sorted({c for c, _ in UCF_CLIPS.values()})
    assert len(data.manifest) == len(UCF_CLIPS) and data.missing == ["Wave/v_Wave_g20_c02.avi"]
    by_path = {r["path"]: r for r in rows_of(data)}
    for cls, group in UCF_CLIPS.values():
        row = by_path[f"UCF-101/{cls}/v_{cls}_g{group:02d}_c01.avi"]
        assert row["label"] == cls
        assert [row[f"split_{k}"] for k in (1, 2, 3)] == [ucf_split_of(group, k) for k in (1, 2, 3)]
        assert row["fold"] == next((str(k) for k in (1, 2, 3) if ucf_split_of(group, k) == "test"), "")


def test_ucf101_label_index_must_match_folder(shared_data, tmp_path):
    root = ucf101_from_videos(shared_data, tmp_path / "UCF101")
    train = root / "ucfTrainTestlist" / "trainlist01.txt"
    first, *rest = train.read_text().splitlines()
    train.write_text("\n".join([first.rsplit(" ", 1)[0] + " 99", *rest]) + "\n")
    with pytest.raises(AnnotationError, match=r"trainlist01\.txt:1: label 99 does not match"):
        load_benchmark("ucf101", root)


def test_hmdb51_codes_per_split(shared_data, tmp_path):
    codes = {f"wave/{n}": c for n, c in zip(HMDB_CLIPS, [(1, 2, 1), (2, 1, 0), (1, 1, 2)])}
    codes["cartwheel/Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi"] = (2, 0, 1)
    codes["cartwheel/absent_cartwheel_f_cm_np1_ri_med_0.avi"] = (1, 1, 1)
    root = hmdb51_from_videos(shared_data, tmp_path / "HMDB51", codes)
    data = load_benchmark("hmdb51", root)
    assert data.classes == ["cartwheel", "wave"]
    assert data.missing == ["cartwheel/absent_cartwheel_f_cm_np1_ri_med_0.avi"]
    names = {"": "", 1: "train", 2: "test", 0: ""}
    for row in rows_of(data):
        key = "/".join(Path(row["path"]).parts[-2:])
        assert [row[f"split_{k}"] for k in (1, 2, 3)] == [names[c] for c in codes[key]]
    assert len(data.split_rows(1, "test")) == 2 and len(data.split_rows(2, "train")) == 2


def test_hmdb51_rejects_unknown_code(shared_data, tmp_path):
    root = hmdb51_from_videos(shared_data, tmp_path / "HMDB51", {f"wave/{HMDB_CLIPS[0]}": (1, 3, 1)})
    with pytest.raises(AnnotationError, match=r"wave_test_split2\.txt:1: expected '<video> <0\|1\|2>'"):
        load_benchmark("hmdb51", root)


def test_dcase_labels_from_file_names(shared_data, tmp_path):
    root = tmp_path / "dcase2013"
    clips = sorted((shared_data / "fsdd" / "audio").glob("*_george_1*.flac"))
    for i, (scene, split) in enumerate([("bus", "train"), ("bus", "test"), ("busystreet", "train"),
                                        ("office", "train"), ("office", "test"), ("busystreet", "test")]):
        folder = "scenes_stereo" if split == "train" else "scenes_stereo_testset"
        link(clips[i], root / folder / f"{scene}{i + 1:02d}.wav")
    data = load_benchmark("dcase", root)
    assert data.classes == ["bus", "busystreet", "office"] and data.folds == ()
    test_labels = [data.cell(r, "label") for r in data.split_rows(None, "test")]
    assert test_labels == ["bus", "busystreet", "office"]  # sorted by file name
    link(clips[7], root / "scenes_stereo_testset" / "tubestation01.wav")
    with pytest.raises(AnnotationError, match="tubestation"):
        load_benchmark("dcase", root)


def test_fsd50k_multi_label(shared_data, tmp_path):
    root = tmp_path / "FSD50K"
    vocabulary = ["Speech", "Male_speech_and_man_speaking", "Child_speech_and_kid_speaking"]
    write_csv(root / "FSD50K.ground_truth" / "vocabulary.csv", None,
              [[i, n, f"/m/{i:05d}"] for i, n in enumerate(vocabulary)])
    clips = sorted((shared_data / "fsdd" / "audio").glob("*_jackson_3*.flac"))[:4]
    for i, clip in enumerate(clips):
        folder = "FSD50K.dev_audio" if i < 3 else "FSD50K.eval_audio"
        link(clip, root / folder / f"{1000 + i}.wav")
    write_csv(root / "FSD50K.ground_truth" / "dev.csv", ["fname", "labels", "mids", "split"], [
        [1000, "Male_speech_and_man_speaking,Speech", "/m/00001,/m/00000", "train"],
        [1001, "Speech", "/m/00000", "val"],
        [1002, "Child_speech_and_kid_speaking|Speech", "/m/00002,/m/00000", "train"],
        [1009, "Speech", "/m/00000", "train"],
    ])
    write_csv(root / "FSD50K.ground_truth" / "eval.csv", ["fname", "labels", "mids"],
              [[1003, "Speech,Male_speech_and_man_speaking", "/m/00000,/m/00001"]])
    data = load_benchmark("fsd50k", root)
    assert data.multi_label and data.classes == vocabulary
    assert data.missing == ["FSD50K.dev_audio/1009.wav"]
    train, test = data.split_rows(None, "train"), data.split_rows(None, "test")
    assert data.label_array(train).tolist() == [[1, 1, 0], [1, 0, 1]]
    assert data.label_array(test).tolist() == [[1, 1, 0]]
    assert [data.cell(r, "split") for r in range(len(data.manifest))] == ["train", "val", "train", "test"]


def test_kinetics400_finds_clips_by_youtube_id(shared_data, tmp_path, caplog):
    root = kinetics_from_vas(shared_data, tmp_path / "k400", extra_classes={"yoga": [("zzzzzzzzzzz", 5, 15)]})
    with caplog.at_level(logging.WARNING):
        data = load_benchmark("kinetics400", root)
    vas = read_manifest(shared_data, "vas")
    assert len(data.manifest) == len(vas)
    assert data.classes == sorted(set(VAS_TO_KINETICS_SOUND.values()) | {"yoga"})
    assert data.missing == ["zzzzzzzzzzz_000005_000015"] and "zzzzzzzzzzz" in caplog.text
    val = data.split_rows(None, "test")  # Kinetics tests on its val split
    assert len(val) == sum(1 for c in {r["labels"] for r in vas} if sum(r["labels"] == c for r in vas) > 1)
    assert all(data.path_of(r).is_file() for r in range(len(data.manifest)))


def test_kinetics_sound_class_lists(shared_data, tmp_path, caplog):
    root = kinetics_from_vas(shared_data, tmp_path / "k400", extra_classes={"yoga": [("yyyyyyyyyyy", 0, 10)]})
    assert len(CLASS_LISTS["crisscross32"]) == 32 and len(CLASS_LISTS["adamml31"]) == 31
    assert set(CLASS_LISTS["crisscross32"]) - set(CLASS_LISTS["adamml31"]) == {"strumming guitar"}
    assert len(CLASS_LISTS["l3_34"]) == 34 and VERIFIED == {"crisscross32": True, "adamml31": True, "l3_34": False}
    data = load_benchmark("kinetics_sound", root)  # default crisscross32; "yoga" is not a KS class
    assert "yoga" not in data.classes and data.classes == sorted(set(VAS_TO_KINETICS_SOUND.values()))
    assert len(data.manifest) == len(read_manifest(shared_data, "vas"))
    with caplog.at_level(logging.WARNING):
        l3 = load_benchmark("kinetics_sound", root, class_list="l3_34")
    # the seven names used here are in both lists; L3's pre-release names have no Kinetics clips
    assert "class 'fingerpicking' (no training clip)" in l3.missing
    assert l3.classes == data.classes
    with pytest.raises(KeyError, match="unknown class_list"):
        load_benchmark("kinetics_sound", root, class_list="ks99")


def test_vggsound_specvqgan_names(shared_data, tmp_path):
    root = vggsound_from_clips(shared_data, tmp_path / "vggsound", missing=2)
    data = load_benchmark("vggsound", root)
    clips = read_manifest(shared_data, "vggsound")
    assert len(data.manifest) == len(clips) and len(data.missing) == 2
    assert data.classes == sorted({r["labels"].split("|")[0] for r in clips} | {"playing cello"})
    assert len(data.split_rows(None, "test")) == 4
    assert data.cell(0, "youtube_id") == "-1pRmoJIGQc" and data.cell(0, "start") == "10"
    assert data.path_of(0).name == "-1pRmoJIGQc_10000_20000.mp4"


def test_audioset_segments_and_ontology(shared_data, tmp_path):
    root = tmp_path / "audioset"
    link(shared_data / "videos" / "cav-mae" / "00W1lcxW-WU_40.000.mp4", root / "eval" / "00W1lcxW-WU_40.000.mp4")
    clip = read_manifest(shared_data, "vggsound")[3]
    link(shared_data / "vggsound" / clip["file"], root / "train" / "Y1aDnyPubxdY.mp4")
    write_csv(root / "class_labels_indices.csv", ["index", "mid", "display_name"],
              [[0, "/m/09x0r", "Speech"], [1, "/m/04rlf", "Music"], [2, "/t/dd00002", "Baby cry, infant cry"]])
    header = "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=3, num_segs=3\n" \
             "# YTID, start_seconds, end_seconds, positive_labels\n"
    (root / "balanced_train_segments.csv").write_text(
        header + '1aDnyPubxdY, 118.000, 128.000, "/t/dd00002,/m/09x0r"\nabsentabsen, 0.000, 10.000, "/m/04rlf"\n')
    (root / "eval_segments.csv").write_text(header + '00W1lcxW-WU, 40.000, 50.000, "/m/04rlf"\n')
    data = load_benchmark("audioset", root)
    assert data.multi_label and data.classes == ["Speech", "Music", "Baby cry, infant cry"]
    assert data.missing == ["absentabsen_0.000"]
    assert data.label_array(data.split_rows(None, "train")).tolist() == [[1, 0, 1]]
    assert data.label_array(data.split_rows(None, "test")).tolist() == [[0, 1, 0]]
    (root / "eval_segments.csv").write_text(header + '00W1lcxW-WU, 40.000, 50.000, "/m/unknown"\n')
    with pytest.raises(AnnotationError, match=r"eval_segments\.csv:4: label id"):
        load_benchmark("audioset", root)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_benchmark("esc50", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="esc50.csv"):
        load_benchmark("esc50", tmp_path / "empty")


def test_csv_reader_rejects_short_lines(shared_data, tmp_path):
    root = vggsound_from_clips(shared_data, tmp_path / "vggsound")
    with open(root / "vggsound.csv", "a", newline="") as f:
        csv.writer(f).writerow(["onlyid", "3"])
    with pytest.raises(AnnotationError, match=r"vggsound\.csv:13"):
        load_benchmark("vggsound", root)
