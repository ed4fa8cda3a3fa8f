"""The pretraining engine end to end on a tiny embedded corpus (avssl/train/, avssl pretrain).

Every ``configs/pretrain/*/*demo_cpu*.yaml`` runs a few steps; exact resume, the non-finite-loss
stop, skipped files, the epoch feature pass and 2-process DDP on CPU (gloo) are checked on the
CrissCross / xID demos. Runs are kept to a few batches of two samples (2 CPU cores).
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from avssl.commands import pretrain as pretrain_command
from avssl.data.manifest import Manifest, ManifestRow
from avssl.data.prepare import PrepareOptions, prepare_corpus
from avssl.data.synthetic import generate_corpus
from avssl.train.checkpointing import LAST_CHECKPOINT
from avssl.train.config import PretrainConfig, parse_config
from avssl.train.data import PretrainingData
from avssl.train.module import PretrainModule
from avssl.train.runner import PretrainingStopped, build_trainer, run_pretraining

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs" / "pretrain"
DEMO_CONFIGS = sorted(CONFIGS.glob("*/*demo_cpu*.yaml"))


# -- the corpus ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """16 synthetic clips (64², 2–4 s) prepared into manifests: all clips, the first four, and the
    first three with a corrupt file second."""
    root = generate_corpus(tmp_path_factory.mktemp("train") / "corpus", num_clips=16, size=(64, 64), workers=1, progress=False)
    manifest, rejected = prepare_corpus(root, root, PrepareOptions(labels_from_folders=True), progress=False)
    assert len(manifest) == 16 and not rejected
    manifest.with_rows(manifest.rows[:4]).write(root / "manifest4.csv")
    (root / "corrupt.mp4").write_bytes(os.urandom(4096))
    corrupt = ManifestRow(path="corrupt.mp4", duration=3.0, has_video=True, has_audio=True)
    manifest.with_rows([manifest[0], corrupt, manifest[1], manifest[2]]).write(root / "manifest_corrupt.csv")
    return root


def demo_config(config: Path, corpus: Path, out: Path, *overrides: str, manifest: str = "manifest.csv") -> PretrainConfig:
    """A demo config shrunk to a few batches of two samples on the test corpus, one visit of every
    file per epoch (the step counts below assume it)."""
    cfg = parse_config([
        "--config", str(config), "--data.manifest", str(corpus / manifest), "--trainer.output_dir", str(out),
        "--data.batch_size", "2", "--data.num_workers", "0", "--trainer.max_steps", "2",
        "--trainer.progress_bar", "false", "--trainer.log_every_n_steps", "1", "--trainer.resume", "null",
        "--data.repeats", "1", *overrides,
    ])
    # The demos size memory banks and clusterings for the 1,000-clip corpus; this one has 16 clips.
    for key in ("num_negatives", "num_negatives_within", "pos_k", "num_clusters_video", "num_clusters_audio",
                "num_clusters_joint"):
        if key in cfg.method.kwargs:
            cfg.method.kwargs[key] = 2
    return cfg


class _InitialState(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.state = copy.deepcopy(pl_module.method.state_dict())


def _logged_losses(output_dir: Path) -> list[float]:
    metrics = next((output_dir / "logs" / "csv").glob("version_*/metrics.csv"))
    with metrics.open(newline="") as handle:
        return [float(r["train/loss"]) for r in csv.DictReader(handle) if r.get("train/loss")]


# -- every method's demo config ------------------------------------------------------------------


@pytest.mark.parametrize("config", DEMO_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_demo_config_trains_a_few_steps(config, corpus, tmp_path):
    cfg = demo_config(config, corpus, tmp_path, "--data.clips_per_video", "2", manifest="manifest4.csv")
    initial = _InitialState()
    result = run_pretraining(cfg, callbacks=[initial])
    assert result.global_step == 2
    losses = _logged_losses(tmp_path)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    final = result.method.state_dict()
    trained = [k for k, v in initial.state.items() if v.is_floating_point() and not torch.equal(v, final[k])]
    assert any("encoder" in k for k in trained), "no encoder weight changed"
    assert (tmp_path / "checkpoints" / LAST_CHECKPOINT).is_file()
    exported = torch.load(tmp_path / "final" / "method.pt", weights_only=True)
    assert exported["header"]["method"] == cfg.method.name and exported["header"]["global_step"] == 2
    assert (tmp_path / "final" / "video_encoder.pt").is_file()


# -- exact resume --------------------------------------------------------------------------------


class _Preempted(Exception):
    pass


class _PreemptAfter(L.Callback):
    """Crash after step ``step`` (after that step's checkpoint), as a preempted job would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            raise _Preempted


def test_resume_mid_epoch_gives_identical_weights(corpus, tmp_path):
    # 4 files, one per batch (2 clips each): 4 batches per epoch; 5 steps cross an epoch boundary
    # and the crash after step 3 falls mid-epoch. xID draws its negatives from the global RNG and
    # keeps memory banks and the frozen partition constant; warm-up + cosine and LARC depend on the
    # restored step.
    args = ("--trainer.max_steps", "5", "--trainer.checkpoint_every_n_steps", "3", "--data.clips_per_video", "2",
            "--schedule.kind", "warmup_cosine", "--schedule.warmup_epochs", "1", "--schedule.final_lr", "1e-5",
            "--optimizer.larc", "true", "--trainer.loggers", "[]")
    config = CONFIGS / "avid" / "demo_cpu.yaml"
    straight = run_pretraining(demo_config(config, corpus, tmp_path / "straight", *args, manifest="manifest4.csv"))
    interrupted = demo_config(config, corpus, tmp_path / "resumed", *args, manifest="manifest4.csv")
    with pytest.raises(_Preempted):
        run_pretraining(interrupted, callbacks=[_PreemptAfter(3)])
    interrupted.trainer.resume = "auto"
    resumed = run_pretraining(interrupted)
    assert straight.global_step == resumed.global_step == 5
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


# -- stops and reports ---------------------------------------------------------------------------


class _PoisonAfterFirstStep(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, *args):
        if trainer.global_step == 1:
            with torch.no_grad():
                for p in pl_module.method.parameters():
                    p.fill_(float("nan"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(corpus, tmp_path):
    cfg = demo_config(CONFIGS / "avid" / "demo_cpu.yaml", corpus, tmp_path, "--trainer.max_steps", "3",
                      "--trainer.checkpoint_every_n_steps", "1", "--data.clips_per_video", "2", "--trainer.loggers", "[]",
                      manifest="manifest4.csv")
    with pytest.raises(PretrainingStopped, match=r"non-finite loss \(nan\) at step 1 \(epoch 0, batch 1\)") as error:
        run_pretraining(cfg, callbacks=[_PoisonAfterFirstStep()])
    checkpoint_path = tmp_path / "checkpoints" / LAST_CHECKPOINT
    assert f"last checkpoint kept: {checkpoint_path} (step 1)" in str(error.value)
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert checkpoint["global_step"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())


def test_corrupt_file_is_skipped_and_reported(corpus, tmp_path):
    cfg = demo_config(CONFIGS / "avid" / "demo_cpu.yaml", corpus, tmp_path, "--trainer.max_steps", "-1",
                      "--trainer.max_epochs", "1", "--trainer.loggers", "[]", manifest="manifest_corrupt.csv")
    with pytest.warns(UserWarning, match=r"XID keeps memory banks but data.repeats is 1"):
        result = run_pretraining(cfg)
    assert result.global_step == 2  # one epoch: the 4 rows in 2 batches; the corrupt one is replaced
    bad = str(corpus / "corrupt.mp4")
    assert dict(result.skipped.counts) == {bad: 1}
    report = (tmp_path / "skipped_files.txt").read_text()
    assert "1 file(s) skipped (1 time(s))" in report and bad in report


# -- the feature pass of on_train_epoch_start ----------------------------------------------------


class _FeatureProbe(nn.Module):
    """A minimal method whose epoch hook runs ctx.extract_features (as XDC does)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))
        self.tables: list[dict[str, torch.Tensor]] = []
        self.contexts: list = []

    def forward(self, batch):
        return {"loss": self.weight * batch["video"][0].mean()}

    def on_train_epoch_start(self, ctx):
        self.contexts.append(ctx)
        self.tables.append(ctx.extract_features(lambda b: {"id": b["index"].float()[:, None].repeat(1, 3)}))


def test_epoch_context_and_feature_pass_cover_every_file_in_order(corpus, tmp_path):
    cfg = demo_config(CONFIGS / "avid" / "demo_cpu.yaml", corpus, tmp_path, "--trainer.max_steps", "3",
                      "--trainer.loggers", "[]", manifest="manifest4.csv")
    probe = _FeatureProbe()
    trainer = build_trainer(cfg)
    trainer.fit(PretrainModule(probe, cfg), datamodule=PretrainingData(cfg.data, Manifest.read(cfg.data.manifest)))
    assert [c.epoch for c in probe.contexts] == [0, 1]
    ctx = probe.contexts[1]
    assert (ctx.global_step, ctx.max_steps, ctx.steps_per_epoch, ctx.max_epochs, ctx.num_items) == (2, 3, 2, 2, 4)
    table = probe.tables[0]
    assert table["id"].shape == (4, 3) and torch.equal(table["id"][:, 0], torch.arange(4.0))
    assert table["valid"].all() and torch.equal(table["index"], torch.arange(4))
    assert probe.training  # the pass restores training mode


# -- command line and DDP ------------------------------------------------------------------------


def _pretrain_cli(options: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="avssl")
    commands = parser.add_subparsers(dest="command")
    pretrain_command.add_arguments(commands.add_parser("pretrain"))
    return pretrain_command.run(parser.parse_args(["pretrain", *options]))


def test_cli_prints_the_resolved_config_and_runs(corpus, tmp_path, capsys):
    config = str(CONFIGS / "crisscross" / "demo_cpu.yaml")
    with pytest.raises(SystemExit) as exit_info:
        _pretrain_cli(["--config", config, "--optimizer.lr", "0.5", "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "lr: 0.5" in printed and "recipe: crisscross" in printed
    options = ["--config", config, "--data.manifest", str(corpus / "manifest4.csv"), "--trainer.output_dir", str(tmp_path),
               "--trainer.max_steps", "1", "--data.batch_size", "2", "--data.num_workers", "0",
               "--trainer.progress_bar", "false", "--trainer.resume", "null", "--trainer.precision", "bf16-mixed"]
    assert _pretrain_cli(options) == 0  # bf16 autocast on CPU
    assert "trained 1 steps" in capsys.readouterr().out
    assert (tmp_path / "config.yaml").is_file()
    assert _pretrain_cli([*options, "--data.batch_size", "3", "--data.clips_per_video", "2"]) == 2
    assert "must be a positive multiple of data.clips_per_video" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from avssl.train.config import parse_config
    from avssl.train.runner import run_pretraining
    result = run_pretraining(parse_config(sys.argv[2:]))
    rank = torch.distributed.get_rank()
    torch.save({"state": result.method.state_dict(), "skipped": dict(result.skipped.counts)}, f"{sys.argv[1]}/rank{rank}.pt")
    """
)


def test_two_process_ddp_on_cpu_ends_with_identical_weights(corpus, tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "run"
    # 4 rows, one corrupt: each step's global batch (2 ranks x 2 files) covers every row once.
    options = ["--config", str(CONFIGS / "avid" / "demo_cpu.yaml"), "--data.manifest", str(corpus / "manifest_corrupt.csv"),
               "--trainer.output_dir", str(out), "--trainer.max_steps", "2", "--data.batch_size", "2",
               "--data.num_workers", "0", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
               "--trainer.progress_bar", "false", "--trainer.loggers", "[]", "--trainer.resume", "null",
               "--data.repeats", "1", "--method.kwargs", '{"proj_dims": [32, 32, 16], "num_negatives": 2}']
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
               str(script), str(tmp_path), *options]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    a, b = ranks[0]["state"], ranks[1]["state"]
    # Everything but BatchNorm statistics, which stay per rank on CPU (SyncBatchNorm is CUDA-only):
    # parameters, and the memory banks and partition constant the method keeps in sync itself.
    per_rank = ("running_mean", "running_var", "num_batches_tracked")
    shared = [k for k in a if not k.endswith(per_rank)]
    assert a.keys() == b.keys() and any("memory" in k for k in shared)
    assert all(torch.equal(a[k], b[k]) for k in shared), [k for k in shared if not torch.equal(a[k], b[k])][:5]
    # Two steps = two epochs: the corrupt file was met twice, by whichever ranks drew it; the
    # report sums both ranks, on every rank.
    bad = str(corpus / "corrupt.mp4")
    assert ranks[0]["skipped"] == ranks[1]["skipped"] == {bad: 2}
    assert "1 file(s) skipped (2 time(s))" in (out / "skipped_files.txt").read_text()
