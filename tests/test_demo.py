"""The demo end to end on a small embedded corpus: table, figures and gallery in one folder."""

from __future__ import annotations

import json
import math

import pytest

from avssl.demo.methods import DEMO_CONFIGS, demo_config_path
from avssl.demo.run import TABLE_COLUMNS, DemoOptions, run_demo
from avssl.methods.registry import list_methods


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_demo_method_is_registered_and_has_its_config():
    assert set(DEMO_CONFIGS) <= set(list_methods())
    for method in DEMO_CONFIGS:
        assert demo_config_path(method).is_file()
    with pytest.raises(KeyError, match="available"):
        demo_config_path("nope")


def test_demo_writes_table_figures_and_gallery(tmp_path):
    out = tmp_path / "demo"
    rows = run_demo(DemoOptions(out=out, num_clips=60, steps=3, batch_size=8, workers=1, progress=False))
    assert set(rows) == {"xid", "random"}
    for scores in rows.values():
        for column in TABLE_COLUMNS:
            assert 0.0 <= scores[column] <= 100.0, column  # xID has a shared space: every score exists
    saved = json.loads((out / "results.json").read_text())
    assert saved["facts"]["steps"] == 3 and saved["facts"]["method"] == "xid"
    assert saved["facts"]["held_out_clips"] + saved["facts"]["train_clips"] == 60
    assert math.isclose(saved["scores"]["random"]["video_probe"], rows["random"]["video_probe"])
    table = (out / "results.md").read_text()
    assert "| xid |" in table and "| random |" in table
    for figure in ("loss_curve.png", "embeddings.png"):
        assert (out / figure).stat().st_size > 5000
    page = (out / "gallery" / "index.html").read_text()
    assert "avssl demo: xid clusters" in page and list((out / "gallery" / "clips").glob("*.mp4"))


def test_demo_pretraining_config_takes_accelerator_and_precision(tmp_path):
    from avssl.demo.run import pretraining_config

    default = pretraining_config("xid", tmp_path / "train.csv", tmp_path / "run")
    assert (default.trainer.accelerator, default.trainer.precision) == ("cpu", "32")
    on_gpu = pretraining_config("xid", tmp_path / "train.csv", tmp_path / "run", accelerator="gpu",
                                precision="bf16-mixed", steps=7)
    assert (on_gpu.trainer.accelerator, on_gpu.trainer.precision, on_gpu.trainer.max_steps) == ("gpu", "bf16-mixed", 7)
