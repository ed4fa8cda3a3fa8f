"""The model zoo table, download/verification and the `avssl zoo` command — local files only.

Downloads are exercised with ``file://`` URLs and a closed local port; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import re
from pathlib import Path

import pytest
import torch

from avssl import cli
from avssl.commands import zoo as zoo_command
from avssl.models import zoo
from avssl.models.checkpoints import list_layouts
from avssl.models.checkpoints.avssl_native import load_encoder
from avssl.models.registry import create_encoder, list_encoders


@pytest.fixture
def hub_dir(tmp_path, monkeypatch) -> Path:
    """A private torch.hub folder, so that nothing touches the user's cache."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub" / "checkpoints"


def _replace_entry(monkeypatch, name: str, **changes) -> zoo.ZooEntry:
    entry = dataclasses.replace(zoo.get_entry(name), **changes)
    monkeypatch.setitem(zoo._BY_NAME, name, entry)
    return entry


def _run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    zoo_command.add_arguments(parser)
    return zoo_command.run(parser.parse_args(list(argv)))


# ---------------------------------------------------------------------------------------------
# the table


def test_one_entry_per_official_release() -> None:
    by_method = {}
    for entry in zoo.list_entries():
        by_method.setdefault(entry.method, []).append(entry)
    counts = {method: len(entries) for method, entries in by_method.items()}
    # spec §1.6 (5 XDC files), §3A.6 (2 AVID + 2 AVID-CMA), §2.8 (6 zips), §3B.6 (xID + VICReg),
    # §4.5 (student/teacher × video/audio)
    assert counts == {"xdc": 5, "xid": 3, "avid_cma": 2, "crisscross": 6, "vicreg": 1, "xkd": 4}
    assert {e.name for e in by_method["vicreg"] + by_method["xid"]} >= {"avssrl_xid_vggsound50k",
                                                                        "avssrl_vicreg_vggsound50k"}


def test_entries_point_to_registered_encoders_and_layouts() -> None:
    encoders = set(list_encoders())
    layouts = {layout.name for layout in list_layouts()}
    modality_of = {}
    for entry in zoo.list_entries():
        assert entry.layout in layouts, entry.name
        for modality, name in entry.encoders.items():
            assert name in encoders, f"{entry.name}: encoder {name} is not registered"
            if name not in modality_of:
                with torch.device("meta"):
                    modality_of[name] = create_encoder(name).modality
            assert modality_of[name] == modality, entry.name
        assert entry.results, entry.name
        assert all(0 < r.value <= 100 and r.source for r in entry.results)


def test_urls_and_hash_prefixes() -> None:
    for entry in zoo.list_entries():
        if entry.url is None:
            assert "by hand" in entry.notes or "Google Drive" in entry.notes, entry.name
            continue
        assert entry.url.startswith("https://") and entry.url.endswith("/" + entry.file_name)
    for entry in zoo.list_entries("xdc"):
        # the 8 hex digits in XDC's file names are the SHA-256 prefix torch.hub checks (spec §1.6)
        assert re.fullmatch(r"[0-9a-f]{8}", entry.sha256_prefix)
        assert entry.file_name == f"{entry.name}-{entry.sha256_prefix}.pth"


# ---------------------------------------------------------------------------------------------
# fetch


def _file_for(entry_name: str, tmp_path: Path, monkeypatch, good_hash: bool = True) -> tuple[Path, bytes]:
    source = tmp_path / "server" / "weights.pth"
    source.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"stem.0.weight": torch.ones(2)}, source)
    data = source.read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8] if good_hash else "00000000"
    _replace_entry(monkeypatch, entry_name, url=source.as_uri(), sha256_prefix=prefix)
    return source, data


def test_fetch_downloads_and_verifies(tmp_path, monkeypatch, hub_dir) -> None:
    _, data = _file_for("r2plus1d_18_xdc_audioset", tmp_path, monkeypatch)
    path = zoo.fetch("r2plus1d_18_xdc_audioset", progress=False)
    assert path == hub_dir / zoo.get_entry("r2plus1d_18_xdc_audioset").file_name
    assert path.read_bytes() == data
    assert zoo.fetch("r2plus1d_18_xdc_audioset", progress=False) == path  # cached copy is reused

    path.write_bytes(b"corrupted")
    with pytest.raises(zoo.ZooError, match="has SHA-256 .* expected a digest starting with"):
        zoo.fetch("r2plus1d_18_xdc_audioset")


def test_fetch_refuses_a_file_with_the_wrong_hash(tmp_path, monkeypatch) -> None:
    _file_for("r2plus1d_18_xdc_audioset", tmp_path, monkeypatch, good_hash=False)
    target = tmp_path / "out"
    with pytest.raises(zoo.ZooError, match="failed verification"):
        zoo.fetch("r2plus1d_18_xdc_audioset", directory=target, progress=False)
    assert list(target.iterdir()) == []


def test_fetch_offline_and_without_url_explain_what_to_do(tmp_path, monkeypatch) -> None:
    _replace_entry(monkeypatch, "avid_kinetics400", url="http://127.0.0.1:9/AVID.pth.tar")
    with pytest.raises(zoo.ZooError, match=r"cannot download .*avssl zoo load avid_kinetics400 --file"):
        zoo.fetch("avid_kinetics400", directory=tmp_path, progress=False)
    with pytest.raises(zoo.ZooError, match=r"no stable download URL.*Google Drive"):
        zoo.fetch("avssrl_xid_vggsound50k", directory=tmp_path)
    with pytest.raises(zoo.ZooError, match="unknown zoo entry"):
        zoo.fetch("no_such_release")


# ---------------------------------------------------------------------------------------------
# loading from local files


@pytest.fixture(scope="module")
def crisscross_audio_file(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(7)
    encoder = create_encoder("audio_resnet18_crisscross").eval()
    path = tmp_path_factory.mktemp("zoo") / "aud_crisscross_kinetics_400.pth.tar"
    torch.save(encoder.state_dict(), path)
    return path, encoder


def test_load_from_a_local_file(crisscross_audio_file) -> None:
    path, reference = crisscross_audio_file
    loaded = zoo.load("crisscross_kinetics400_audio", file=path).eval()
    x = torch.randn(1, 1, 80, 101)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference(x), rtol=0, atol=0)
    with pytest.raises(zoo.ZooError, match="does not exist"):
        zoo.load("crisscross_kinetics400_audio", file=path.parent / "missing.pth.tar")
    with pytest.raises(zoo.ZooError, match="holds video and audio encoders; choose one"):
        zoo.load("avid_kinetics400", file=path)


def test_pretrained_name_resolves_through_the_hub_folder(crisscross_audio_file, hub_dir) -> None:
    path, reference = crisscross_audio_file
    hub_dir.mkdir(parents=True)
    (hub_dir / zoo.get_entry("crisscross_kinetics400_audio").file_name).write_bytes(path.read_bytes())
    loaded = create_encoder("audio_resnet18_crisscross", pretrained="crisscross_kinetics400_audio").eval()
    torch.testing.assert_close(loaded.block4[1].conv2.weight, reference.block4[1].conv2.weight)
    with pytest.raises(zoo.ZooError, match="holds no video encoder"):
        create_encoder("r2plus1d_small", pretrained="crisscross_kinetics400_audio")


# ---------------------------------------------------------------------------------------------
# the command


def test_command_is_registered() -> None:
    assert cli.COMMANDS["zoo"] == "avssl.commands.zoo"


def test_zoo_list_prints_every_entry(capsys) -> None:
    assert _run_command("list") == 0
    out = capsys.readouterr().out
    assert all(entry.name in out for entry in zoo.list_entries())
    assert "f24f6ffb" in out and "UCF101 finetune 95.5" in out
    assert _run_command("list", "--method", "crisscross") == 0
    out = capsys.readouterr().out
    assert "crisscross_audioset_audio" in out and "r2plus1d_18_xdc" not in out


def test_zoo_load_and_save(crisscross_audio_file, tmp_path, capsys) -> None:
    path, reference = crisscross_audio_file
    saved = tmp_path / "converted.pt"
    assert _run_command("load", "crisscross_kinetics400_audio", "--file", str(path), "--save", str(saved)) == 0
    out = capsys.readouterr().out
    assert "layout 'crisscross-audio'" in out and "11,170,240 parameters" in out
    converted = load_encoder(saved).eval()
    assert converted.checkpoint_header["extra"] == {"zoo_entry": "crisscross_kinetics400_audio"}
    torch.testing.assert_close(converted.block1[0].conv1.weight, reference.block1[0].conv1.weight)


def test_zoo_errors_exit_with_status_1(tmp_path, capsys) -> None:
    assert _run_command("fetch", "avssrl_vicreg_vggsound50k", "--dir", str(tmp_path)) == 1
    assert "no stable download URL" in capsys.readouterr().err
    assert _run_command("load", "avid_kinetics400", "--file", str(tmp_path / "x")) == 1
    assert "choose one with modality" in capsys.readouterr().err
