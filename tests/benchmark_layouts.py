"""Benchmark folders in their official layouts, built from the real clips of the shared test data.

Each builder links real media from ``shared_data`` under the official file names into ``root`` and
writes the benchmark's annotation files in the official format, so the adapters of
``avssl.data.benchmarks`` and every protocol run on them exactly as on the real benchmarks. Clip
classes come from the shared data's MANIFEST.csv; where a benchmark needs its own class names
(UCF101 CamelCase, Kinetics-Sound), the mapping is written out here.

Used by tests/test_benchmarks_adapters.py, test_eval_*.py, test_evaluate_cli.py and the fine-tuning
tests of evaluation II.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


def link(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(source, target)
    return target


def read_manifest(shared_data: Path, folder: str) -> list[dict[str, str]]:
    with open(shared_data / folder / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, header: list[str] | None, rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


# -- ESC-50 from the Free Spoken Digit Dataset --------------------------------------------------------


def esc50_from_fsdd(shared_data: Path, root: Path, takes: int = 50, speakers: tuple[str, ...] | None = None) -> Path:
    """ESC-50 layout (``meta/esc50.csv`` + ``audio/``) whose classes are the spoken digits.

    Fold = take index mod 5 + 1, so every fold holds every speaker and digit. ``takes`` keeps takes
    ``0..takes-1`` (50 = all 3,000 clips); ``speakers`` keeps only those speakers.
    """
    rows = []
    for record in read_manifest(shared_data, "fsdd"):
        take = int(record["index"])
        if take >= takes or (speakers is not None and record["speaker"] not in speakers):
            continue
        name = Path(record["file"]).name
        link(shared_data / "fsdd" / record["file"], root / "audio" / name)
        digit = int(record["labels"])
        rows.append([name, take % 5 + 1, digit, f"digit_{digit}", "False", record["speaker"], take])
    header = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    write_csv(root / "meta" / "esc50.csv", header, rows)
    return root


# -- UCF101 and HMDB51 from the labelled clips of videos/ --------------------------------------------

# shared file -> (UCF101-style class, group). Labels from videos/MANIFEST.csv; groups chosen so that
# each split tests one clip of most classes (groups 1–7: split 1, 8–14: split 2, 15–21: split 3).
UCF_CLIPS = {
    "mmaction2/test.avi": ("ApplyEyeMakeup", 1),
    "pytorch-vision/RATRACE_wave_f_nm_np1_fr_goo_37.avi": ("Wave", 2),
    "pytorch-vision/SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi": ("Wave", 9),
    "pytorch-vision/TrumanShow_wave_f_nm_np1_fr_med_26.avi": ("Wave", 16),
    "pytorch-vision/R6llTwEh07w.mp4": ("UsingSegway", 3),
    "pytorch-vision/SOX5yA1l24A.mp4": ("UsingSegway", 10),
    "pytorch-vision/WUzgd7C1pWA.mp4": ("UsingSegway", 17),
    "mmaction2/test.mp4": ("CleaningPool", 4),
    "mmaction2/rawvideo_dataset_part_0.mp4": ("CleaningPool", 11),
    "pytorch-vision/v_SoccerJuggling_g23_c01.avi": ("SoccerJuggling", 5),
    "pytorch-vision/v_SoccerJuggling_g24_c01.avi": ("SoccerJuggling", 12),
}


def ucf_split_of(group: int, split: int) -> str:
    """UCF101's rule: test list k holds groups 7(k−1)+1 .. 7k; groups above 21 always train."""
    return "test" if 7 * (split - 1) < group <= 7 * split else "train"


# VAS clip -> (UCF101-style class, group), for a UCF101-format layout whose videos all have sound
UCF_FROM_VAS = {
    "baby/video_01951.mp4": ("Baby", 22), "cough/video_00331.mp4": ("Cough", 23),
    "dog/video_02677.mp4": ("Dog", 1), "dog/video_02754.mp4": ("Dog", 8),
    "drum/video_02480.mp4": ("Drum", 2), "drum/video_02542.mp4": ("Drum", 9),
    "fireworks/video_02997.mp4": ("Fireworks", 3), "fireworks/video_03051.mp4": ("Fireworks", 24),
    "gun/video_00819.mp4": ("Gun", 25), "hammer/video_00323.mp4": ("Hammer", 15),
}


def ucf101_from_videos(
    shared_data: Path, root: Path, missing: tuple[str, ...] = (), clips: dict | None = None, folder: str = "videos"
) -> Path:
    """UCF101 layout: ``UCF-101/<Class>/v_<Class>_g<GG>_c01.avi`` and ``ucfTrainTestlist/``.

    ``clips`` maps shared files under ``folder`` to (class, group) (default :data:`UCF_CLIPS`;
    :data:`UCF_FROM_VAS` with ``folder="vas"``). ``missing`` adds list entries
    (``"<Class>/<file>"``) whose video is absent.
    """
    clips = UCF_CLIPS if clips is None else clips
    classes = sorted({c for c, _ in clips.values()})
    entries = []
    for source, (cls, group) in clips.items():
        relative = f"{cls}/v_{cls}_g{group:02d}_c01.avi"
        link(shared_data / folder / source, root / "UCF-101" / relative)
        entries.append((relative, cls, group))
    entries += [(m, m.split("/")[0], int(m.split("_g")[1][:2])) for m in missing]
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    for k in (1, 2, 3):
        train = [f"{rel} {classes.index(cls) + 1}\n" for rel, cls, g in entries if ucf_split_of(g, k) == "train"]
        test = [f"{rel}\n" for rel, cls, g in entries if ucf_split_of(g, k) == "test"]
        (lists / f"trainlist0{k}.txt").write_text("".join(train))
        (lists / f"testlist0{k}.txt").write_text("".join(test))
    return root


HMDB_CLIPS = ("RATRACE_wave_f_nm_np1_fr_goo_37.avi", "SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi",
              "TrumanShow_wave_f_nm_np1_fr_med_26.avi")
HMDB_CARTWHEEL = "hmdb51_Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi"


def hmdb51_from_videos(shared_data: Path, root: Path, codes: dict[str, tuple[int, int, int]]) -> Path:
    """HMDB51 layout (``hmdb51_org/<class>/`` + ``testTrainMulti_7030_splits/``) of the four HMDB clips.

    ``codes`` gives each video's code (0 unused, 1 train, 2 test) in splits 1, 2, 3; its keys are
    ``"<class>/<file>"`` (a key whose file is not one of the shared clips is listed but absent).
    """
    shared = {f"wave/{n}": n for n in HMDB_CLIPS}
    shared["cartwheel/" + HMDB_CARTWHEEL.removeprefix("hmdb51_")] = HMDB_CARTWHEEL
    for key, source in shared.items():
        if key in codes:
            link(shared_data / "videos" / "pytorch-vision" / source, root / "hmdb51_org" / key)
    for label in sorted({k.split("/")[0] for k in codes}):
        for split in (1, 2, 3):
            lines = [f"{k.split('/')[1]} {c[split - 1]}\n" for k, c in codes.items() if k.split("/")[0] == label]
            path = root / "testTrainMulti_7030_splits" / f"{label}_test_split{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(lines))
    return root


# -- Kinetics-400 / Kinetics-Sound / VGGSound / AudioSet from vas/ and vggsound/ ------------------------

# VAS class -> a Kinetics-Sound class (an arbitrary but fixed renaming: the test needs KS names)
VAS_TO_KINETICS_SOUND = {
    "baby": "laughing", "cough": "blowing nose", "dog": "tickling", "drum": "playing drums",
    "fireworks": "shoveling snow", "gun": "bowling", "hammer": "chopping wood",
}


def kinetics_from_vas(shared_data: Path, root: Path, val_per_class: int = 1, extra_classes: dict | None = None) -> Path:
    """Kinetics-400 layout of the 10 VAS clips: ``annotations/{train,validate}.csv`` (official columns)
    and ``<split>/<label>/<id>_<start:06d>_<end:06d>.mp4``. Class names: ``VAS_TO_KINETICS_SOUND``.

    The first ``val_per_class`` clips of a class with 2 clips go to ``val``; ``extra_classes``
    (``{label: [(youtube_id, start, end), ...]}``) adds csv lines without media.
    """
    splits: dict[str, list[list[object]]] = {"train": [], "val": []}
    counts: dict[str, int] = {}
    records = read_manifest(shared_data, "vas")
    per_class = {r["labels"]: sum(x["labels"] == r["labels"] for x in records) for r in records}
    for i, record in enumerate(records):
        label = VAS_TO_KINETICS_SOUND[record["labels"]]
        seen = counts.get(label, 0)
        counts[label] = seen + 1
        split = "val" if per_class[record["labels"]] > 1 and seen < val_per_class else "train"
        youtube_id, start, end = f"vas{i:02d}{Path(record['file']).stem}", 0, 10
        folder = "train" if split == "train" else "val"
        link(shared_data / "vas" / record["file"],
             root / folder / label / f"{youtube_id}_{start:06d}_{end:06d}.mp4")
        splits[split].append([label, youtube_id, start, end, split])
    for label, clips in (extra_classes or {}).items():
        splits["train"] += [[label, y, s, e, "train"] for y, s, e in clips]
    header = ["label", "youtube_id", "time_start", "time_end", "split"]
    write_csv(root / "annotations" / "train.csv", header, splits["train"])
    write_csv(root / "annotations" / "validate.csv", header, splits["val"])
    return root


def vggsound_from_clips(shared_data: Path, root: Path, test_every: int = 3, missing: int = 0) -> Path:
    """VGGSound layout: ``vggsound.csv`` (no header; id, start, label, split) and the 12 shared clips
    under their SpecVQGAN names (``<id>_<start_ms>_<end_ms>.mp4``). Label: the first VGGSounder label.
    Every ``test_every``-th clip is ``test``; ``missing`` adds that many csv lines without media."""
    rows = []
    for i, record in enumerate(read_manifest(shared_data, "vggsound")):
        stem = Path(record["file"]).stem
        youtube_id, start_ms, _ = stem.rsplit("_", 2)
        link(shared_data / "vggsound" / record["file"], root / "video" / record["file"])
        split = "test" if i % test_every == 0 else "train"
        rows.append([youtube_id, int(start_ms) // 1000, record["labels"].split("|")[0], split])
    rows += [[f"absent{i:07d}", 30, "playing cello", "train"] for i in range(missing)]
    write_csv(root / "vggsound.csv", None, rows)
    return root
