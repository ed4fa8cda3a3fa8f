"""XDC and its SDC / MDC / CDC variants: heads and targets, re-clustering, resume, balanced sampling.

The engine's feature pass is stood in for by :class:`FeaturePass`, which does what
docs/pretraining.md specifies for ``ctx.extract_features``: every instance once, method in eval mode
under ``no_grad``, rows ordered by instance id, plus ``"index"``. The last tests run XDC through the
engine (``run_pretraining``) on a few clips of the ``tiny_corpus`` fixture: labels, optimiser state of
the re-initialised heads, the decoded-clip store and the final export.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.data.datasets import PretrainingDataset, collate_views
from avssl.data.manifest import Manifest
from avssl.data.views import get_view_recipe
from avssl.evaluate.cluster_metrics import clustering_scores
from avssl.media import decode
from avssl.methods.registry import create_method
from avssl.methods.xdc import XDC, clusterings_of, prediction_tasks
from avssl.models.checkpoints.avssl_native import load_encoder
from avssl.models.registry import create_encoder
from avssl.train.checkpointing import export_final
from avssl.train.runner import build_method, run_pretraining
from test_train_engine import CONFIGS, demo_config  # the engine tests' config helper

NUM_ITEMS = 12
NUM_CLASSES = 3
VIDEO_SHAPE = (3, 2, 24, 24)
AUDIO_SHAPE = (1, 80, 24)


def random_corpus(seed: int = 0) -> dict[str, Tensor]:
    """NUM_ITEMS clips whose video and audio carry their class (a per-class offset) plus noise."""
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(NUM_ITEMS) % NUM_CLASSES
    video_means = torch.randn(NUM_CLASSES, *VIDEO_SHAPE, generator=g)
    audio_means = torch.randn(NUM_CLASSES, *AUDIO_SHAPE, generator=g)
    return {
        "video": video_means[label] + 0.3 * torch.randn(NUM_ITEMS, *VIDEO_SHAPE, generator=g),
        "audio": audio_means[label] + 0.3 * torch.randn(NUM_ITEMS, *AUDIO_SHAPE, generator=g),
        "label": label,
    }


def batch_of(corpus: dict[str, Tensor], index: Tensor, with_label: bool = True) -> dict:
    batch = {"video": [corpus["video"][index]], "audio": [corpus["audio"][index]], "index": index}
    if with_label:
        batch["label"] = corpus["label"][index]
    return batch


@dataclass
class FeaturePass:
    """The ``ctx`` of ``on_train_epoch_start`` for a corpus held in memory."""

    method: nn.Module
    corpus: dict[str, Tensor]
    epoch: int = 0
    max_epochs: int = 3
    with_label: bool = True
    val_loss: float | None = None
    unreadable: tuple[int, ...] = ()  # files whose rows the engine marks invalid (zeros)
    calls: int = 0
    seen_modes: list[bool] = field(default_factory=list)

    def extract_features(self, fn: Callable, recipe=None, batch_size: int | None = None) -> dict[str, Tensor]:
        self.calls += 1
        was_training = self.method.training
        self.method.eval()
        self.seen_modes.append(self.method.training)
        parts: dict[str, list[Tensor]] = {}
        with torch.no_grad():
            for index in torch.arange(NUM_ITEMS).split(batch_size or 5):
                for name, value in fn(batch_of(self.corpus, index, self.with_label)).items():
                    parts.setdefault(name, []).append(value)
        self.method.train(was_training)
        table = {k: torch.cat(v).float() for k, v in parts.items()}  # the engine gathers floats
        valid = torch.ones(NUM_ITEMS, dtype=torch.bool)
        valid[list(self.unreadable)] = False
        for value in table.values():
            value[~valid] = 0
        return {**table, "index": torch.arange(NUM_ITEMS), "valid": valid}


class LinearEncoder(nn.Module):
    """A stand-in encoder (flatten + linear) for the tests of XDC's bookkeeping, which any encoder
    with ``out_dim`` serves; the training tests use the real small encoders."""

    def __init__(self, in_shape: tuple[int, ...], out_dim: int = 16) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.proj = nn.Linear(int(torch.tensor(in_shape).prod()), out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.flatten(1))


def small_xdc(variant: str = "xdc", real_encoders: bool = False, **kwargs) -> XDC:
    torch.manual_seed(0)
    settings = dict(num_clusters_video=NUM_CLASSES, num_clusters_audio=NUM_CLASSES, num_items=NUM_ITEMS,
                    kmeans_nredo=2)
    settings.update(kwargs)
    if real_encoders:
        encoders = create_encoder("r2plus1d_small"), create_encoder("audio_resnet_small")
    else:
        encoders = LinearEncoder(VIDEO_SHAPE), LinearEncoder(AUDIO_SHAPE)
    return XDC(*encoders, variant=variant, **settings)


def train_epochs(method: XDC, corpus: dict[str, Tensor], epochs: int, steps: int = 2) -> list[dict]:
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    ctx = FeaturePass(method, corpus, max_epochs=epochs)
    outputs = []
    for epoch in range(epochs):
        ctx.epoch = epoch
        method.on_train_epoch_start(ctx)
        method.train()
        for step in range(steps):
            index = torch.randperm(NUM_ITEMS, generator=torch.Generator().manual_seed(epoch * 10 + step))[:4]
            out = method(batch_of(corpus, index))
            optimizer.zero_grad()
            out["loss"].backward()
            optimizer.step()
            outputs.append(out)
    return outputs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions run ~50x slower on two threads when other processes share the two cores
    (OpenMP threads wait on each other); one thread is also what these sizes need."""
    previous = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(previous[0])
    faiss.omp_set_num_threads(previous[1])


# ------------------------------------------------------------------------------------------ tests


def test_variants_define_the_paper_targets():
    pairs = {v: {(t.source, t.target) for t in prediction_tasks(v)} for v in ("xdc", "sdc", "mdc", "cdc")}
    assert pairs["xdc"] == {("video", "audio"), ("audio", "video")}
    assert pairs["sdc"] == {("video", "video"), ("audio", "audio")}
    assert pairs["mdc"] == pairs["xdc"] | pairs["sdc"]
    assert pairs["cdc"] == {("video", "joint"), ("audio", "joint")}
    assert clusterings_of("cdc") == ("joint",)
    with pytest.raises(ValueError, match="variant"):
        prediction_tasks("abc")


@pytest.mark.parametrize("variant", ["xdc", "sdc", "mdc", "cdc"])
def test_each_variant_trains_and_reclusters(variant):
    corpus = random_corpus()
    method = small_xdc(variant, real_encoders=True, recluster_every=1)
    outputs = train_epochs(method, corpus, epochs=2)

    assert int(method.num_clusterings) == 2 and int(method.last_clustering_epoch) == 1
    assert all(torch.isfinite(out["loss"]) for out in outputs)
    assert {f"loss/{t.name}" for t in method.tasks} <= set(outputs[-1])
    for name in clusterings_of(variant):
        labels = method.pseudo_labels(name)
        assert labels.shape == (NUM_ITEMS,)
        # every clip labelled, every one of the k clusters used (empty ones are split)
        assert torch.bincount(labels, minlength=NUM_CLASSES).min() > 0
        log = method.clustering_log
        assert 0.0 <= log[f"xdc/{name}/nmi_previous"] <= 1.0  # second clustering compares with the first
        assert 0.0 < log[f"xdc/{name}/purity"] <= 1.0 and f"xdc/{name}/hungarian_accuracy" in log
    assert f"xdc/{clusterings_of(variant)[0]}/nmi" in outputs[-1]


def test_loss_is_cross_entropy_against_the_other_modality_clusters():
    corpus = random_corpus()
    method = small_xdc("xdc")
    method.on_train_epoch_start(FeaturePass(method, corpus))
    # Make the two clusterings differ, so predicting the wrong one would be caught.
    method.pseudo_labels_video.copy_(torch.arange(NUM_ITEMS) % NUM_CLASSES)
    method.pseudo_labels_audio.copy_((torch.arange(NUM_ITEMS) // 4) % NUM_CLASSES)
    method.eval()
    index = torch.tensor([0, 5, 7, 10])
    out = method(batch_of(corpus, index))
    video_logits = method.heads["v2a"](method.video_encoder(corpus["video"][index]))
    audio_logits = method.heads["a2v"](method.audio_encoder(corpus["audio"][index]))
    expected_v2a = F.cross_entropy(video_logits, method.pseudo_labels_audio[index])
    expected_a2v = F.cross_entropy(audio_logits, method.pseudo_labels_video[index])
    torch.testing.assert_close(out["loss/v2a"], expected_v2a)
    torch.testing.assert_close(out["loss/a2v"], expected_a2v)
    torch.testing.assert_close(out["loss"], expected_v2a + expected_a2v)


def test_reclustering_reinitialises_heads_and_extracts_in_eval_mode():
    corpus = random_corpus()
    method = small_xdc("sdc")
    ctx = FeaturePass(method, corpus)
    method.on_train_epoch_start(ctx)
    with torch.no_grad():
        method.heads["v2v"].weight.fill_(1.0)
    ctx.epoch = 1
    method.train()
    method.on_train_epoch_start(ctx)
    assert ctx.seen_modes == [False, False] and method.training
    weight = method.heads["v2v"].weight
    assert weight.abs().max() < 0.1 and method.heads["v2v"].bias.abs().max() == 0


def test_pseudo_labels_survive_a_state_dict_round_trip():
    corpus = random_corpus()
    method = small_xdc("mdc", recluster_every="plateau")
    train_epochs(method, corpus, epochs=1)
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)

    restored = small_xdc("mdc", recluster_every="plateau", num_items=None)  # buffers start empty
    restored.load_state_dict(state)
    for name in ("video", "audio"):
        assert torch.equal(restored.pseudo_labels(name), method.pseudo_labels(name))
    assert int(restored.num_clusterings) == 1
    assert restored.epoch_loss_count == method.epoch_loss_count
    # Resumed at the next epoch, both decide the same way (plateau state came along).
    for model in (method, restored):
        model.on_train_epoch_start(FeaturePass(model, corpus, epoch=1))
    assert int(restored.num_clusterings) == int(method.num_clusterings)
    assert torch.equal(restored.pseudo_labels_video, method.pseudo_labels_video)


def test_unreadable_clips_get_no_pseudo_label_and_no_loss():
    corpus = random_corpus()
    method = small_xdc("xdc")
    method.on_train_epoch_start(FeaturePass(method, corpus, unreadable=(2, 7)))
    for name in ("video", "audio"):
        labels = method.pseudo_labels(name)
        assert labels[[2, 7]].tolist() == [-1, -1] and (labels[[0, 1, 3]] >= 0).all()
    only_unreadable = method(batch_of(corpus, torch.tensor([2, 7])))
    assert only_unreadable["loss"] == 0 and "acc/v2a" not in only_unreadable
    mixed = method(batch_of(corpus, torch.tensor([2, 3])))
    readable = method(batch_of(corpus, torch.tensor([3])))
    torch.testing.assert_close(mixed["loss"], readable["loss"])


def test_recluster_every_e_epochs():
    corpus = random_corpus()
    method = small_xdc("xdc", recluster_every=2)
    ctx = FeaturePass(method, corpus)
    for epoch in range(5):
        ctx.epoch = epoch
        method.on_train_epoch_start(ctx)
    assert ctx.calls == 3  # epochs 0, 2, 4


def test_recluster_on_plateau_of_the_monitored_loss():
    corpus = random_corpus()
    method = small_xdc("xdc", recluster_every="plateau", plateau_patience=2, plateau_min_delta=0.05)
    ctx = FeaturePass(method, corpus)
    # val_loss seen at the start of epochs 1..: improves, then stalls (< 5 % better) twice.
    for epoch, loss in enumerate([None, 2.0, 1.0, 0.99, 0.98, 0.5]):
        ctx.epoch, ctx.val_loss = epoch, loss
        method.on_train_epoch_start(ctx)
    # clustering at epoch 0 and at epoch 4 (two epochs without improvement after epoch 2);
    # epoch 5's 0.5 is the first value after that clustering, so no third one.
    assert ctx.calls == 2 and int(method.last_clustering_epoch) == 4


def test_sample_weights_are_uniform_over_clusters():
    method = small_xdc("sdc", balanced_sampling=True)
    assert method.sample_weights() is None  # nothing clustered yet
    video = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    audio = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    method.pseudo_labels_video.copy_(video)
    method.pseudo_labels_audio.copy_(audio)
    method.num_clusterings += 1
    weights = method.sample_weights()
    # video: sizes 6, 3, 3 -> 1/(3*6), 1/(3*3); audio: all clusters of 4 -> 1/(3*4); averaged.
    expected = 0.5 * (1.0 / (3 * torch.bincount(video)[video].double())) + 0.5 * (1.0 / 12)
    torch.testing.assert_close(weights, expected)
    for labels in (video, audio):
        mass = torch.zeros(3, dtype=torch.float64).index_add_(0, labels, weights)
        assert mass.sum() == pytest.approx(1.0)
    assert small_xdc("sdc").sample_weights() is None  # balanced_sampling off


def test_empty_clusters_are_filled_by_splitting():
    method = small_xdc("sdc", num_clusters_video=4, num_clusters_audio=4)
    # Only two distinct video features: k-means alone leaves two of four clusters empty.
    video = torch.cat([torch.zeros(6, 16), torch.ones(6, 16)])
    audio = torch.randn(NUM_ITEMS, 16, generator=torch.Generator().manual_seed(0))
    method.assign_pseudo_labels({"video": video, "audio": audio}, epoch=0)
    assert torch.bincount(method.pseudo_labels_video, minlength=4).min() > 0
    assert method.clustering_log["xdc/video/num_split"] == 2


def test_forward_before_any_clustering_is_refused_and_registry_builds_it():
    corpus = random_corpus()
    method = create_method(
        "xdc", video_encoder=create_encoder("r2plus1d_small"), audio_encoder=create_encoder("audio_resnet_small"),
        variant="cdc", num_clusters_video=NUM_CLASSES, num_items=NUM_ITEMS,
    )
    assert isinstance(method, XDC) and method.variant == "cdc"
    with pytest.raises(RuntimeError, match="on_train_epoch_start"):
        method(batch_of(corpus, torch.arange(4)))
    with pytest.raises(ValueError, match="recluster_every"):
        small_xdc("xdc", recluster_every=0)


# ------------------------------------------------------------------- scores against the labels


def test_scores_against_labels_leave_out_unlabelled_rows():
    corpus = random_corpus()
    corpus["label"][[1, 4, 9]] = -1  # manifest rows with no single class
    method = small_xdc("xdc")
    method.on_train_epoch_start(FeaturePass(method, corpus, unreadable=(2,)))
    known = torch.ones(NUM_ITEMS, dtype=torch.bool)
    known[[1, 2, 4, 9]] = False
    out = method(batch_of(corpus, torch.arange(4)))
    for name in ("video", "audio"):
        assignments = method.pseudo_labels(name)
        expected = clustering_scores(assignments[known], corpus["label"][known])
        valid = assignments >= 0
        # Counting the -1 rows as a class of their own would give other scores: the test can tell.
        assert clustering_scores(assignments[valid], corpus["label"][valid]) != expected
        for metric, value in expected.items():
            assert method.clustering_log[f"xdc/{name}/{metric}"] == pytest.approx(value)
            assert float(out[f"xdc/{name}/{metric}"]) == pytest.approx(value, rel=1e-6)
    assert "xdc/video/nmi_previous" not in method.clustering_log  # first clustering: nothing to compare


def test_no_label_scores_when_no_row_has_a_class():
    corpus = random_corpus()
    corpus["label"].fill_(-1)
    method = small_xdc("cdc")
    method.on_train_epoch_start(FeaturePass(method, corpus))
    assert sorted(method.clustering_log) == ["xdc/joint/inertia", "xdc/joint/num_split"]
    method.on_train_epoch_start(FeaturePass(method, corpus, epoch=1))
    assert 0.0 <= method.clustering_log["xdc/joint/nmi_previous"] <= 1.0


# ----------------------------------------------------------------- optimiser state of the heads


def test_reclustering_hands_the_fresh_heads_out_once():
    corpus = random_corpus()
    method = small_xdc("mdc", recluster_every=2)
    ctx = FeaturePass(method, corpus)
    method.on_train_epoch_start(ctx)
    reset = method.take_reset_parameters()
    heads = list(method.heads.parameters())
    assert len(reset) == len(heads) == 8 and all(a is b for a, b in zip(reset, heads))
    assert method.take_reset_parameters() == []  # handed out once
    ctx.epoch = 1
    method.on_train_epoch_start(ctx)  # no clustering due: nothing was reset
    assert method.take_reset_parameters() == []
    ctx.epoch = 2
    method.on_train_epoch_start(ctx)
    assert len(method.take_reset_parameters()) == 8


# ------------------------------------------------------------------------ export of extra state


class _XDCWithExtraState(XDC):
    """XDC keeping its last clustering's scores in ``get_extra_state`` (a dict, not a tensor)."""

    def get_extra_state(self) -> dict:
        return {"clustering_log": dict(self.clustering_log), "rounds": [int(self.num_clusterings)], "note": None}

    def set_extra_state(self, state: dict) -> None:
        self.clustering_log = dict(state["clustering_log"])


def _xdc_with_extra_state() -> XDC:
    torch.manual_seed(0)
    return _XDCWithExtraState(
        create_encoder("r2plus1d_small"), create_encoder("audio_resnet_small"),
        num_clusters_video=NUM_CLASSES, num_clusters_audio=NUM_CLASSES, num_items=NUM_ITEMS,
    )


def test_export_final_writes_extra_state_that_loads_back(tmp_path):
    corpus = random_corpus()
    method = _xdc_with_extra_state()
    method.on_train_epoch_start(FeaturePass(method, corpus))
    written = export_final(method, tmp_path, {"method": "xdc"})
    assert sorted(p.name for p in written) == ["audio_encoder.pt", "method.pt", "video_encoder.pt"]

    payload = torch.load(tmp_path / "method.pt", weights_only=True)
    assert payload["state_dict"]["_extra_state"]["clustering_log"] == method.clustering_log
    restored = _xdc_with_extra_state()
    restored.load_state_dict(payload["state_dict"])  # strict
    assert restored.clustering_log == method.clustering_log and "xdc/video/purity" in restored.clustering_log
    assert torch.equal(restored.pseudo_labels_audio, method.pseudo_labels_audio)
    video = load_encoder(tmp_path / "video_encoder.pt")
    for key, value in method.video_encoder.state_dict().items():
        assert torch.equal(video.state_dict()[key], value)


def test_export_final_names_the_entry_it_cannot_write(tmp_path):
    class Opaque:
        pass

    method = _xdc_with_extra_state()
    method.get_extra_state = lambda: {"clustering_log": {}, "kmeans_index": Opaque()}
    with pytest.raises(TypeError, match=r"method\.pt: state_dict\['_extra_state'\]\['kmeans_index'\] is a Opaque"):
        export_final(method, tmp_path, {"method": "xdc"})


# ------------------------------------------------------------------------------ the view recipe


def test_xdc_recipe_reads_synchronous_mel_views_with_kinetics_statistics(tiny_corpus):
    recipe = get_view_recipe("xdc")
    assert (recipe.scheme, recipe.max_offsync, recipe.video_fps, recipe.video_seconds, recipe.audio_seconds) == (
        "synchronous", 0.0, 16, 0.5, 2.0)
    small = recipe.with_overrides(video_augment_overrides=(*recipe.video_augment_overrides, ("size", 64)))
    dataset = PretrainingDataset(Manifest.read(tiny_corpus), small, clips_per_video=2)
    batch = collate_views([dataset[0], dataset[5]])
    assert [tuple(v.shape) for v in batch["video"]] == [(4, 3, 8, 64, 64)]
    assert [tuple(a.shape) for a in batch["audio"]] == [(4, 1, 80, 201)]  # the 80-mel front end, 2 s
    assert batch["label"].dtype == torch.long and (batch["label"] >= 0).all()
    normalize = [t for t in small.build().video_augment.transforms if type(t).__name__ == "Normalize"]
    assert len(normalize) == 1 and tuple(normalize[0].mean) == pytest.approx((0.43216, 0.394666, 0.37645))


# ------------------------------------------------------------------------ through the engine

ENGINE_FILES = 6  # 3 batches of 2 per epoch; 6 steps = 2 epochs = 2 clusterings
UNLABELLED_ROWS = (1, 4)


class _EngineProbe(L.Callback):
    """Counts disk reads after the store is filled, and looks at the optimiser at epoch 1's first batch."""

    def __init__(self) -> None:
        self.patch = pytest.MonkeyPatch()
        self.disk_reads = 0
        self.head_state: list[bool] = []
        self.encoder_state: list[bool] = []

    def on_train_start(self, trainer, pl_module):
        # DataModule.setup filled the store before this hook; from now on nothing should decode.
        for name in ("read_video", "read_audio"):
            self.patch.setattr(decode, name, self._counting(getattr(decode, name)))

    def _counting(self, read: Callable) -> Callable:
        def counted(*args, **kwargs):
            self.disk_reads += 1
            return read(*args, **kwargs)

        return counted

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 0:
            state = trainer.optimizers[0].state
            method = pl_module.method
            self.head_state = [bool(state.get(p)) for p in method.heads.parameters()]
            self.encoder_state = [bool(state.get(p)) for p in method.video_encoder.parameters()]


@pytest.fixture(scope="module")
def engine_run(tiny_corpus, tmp_path_factory):
    """The XDC demo config (recipe xdc, decoded-clip store) for 2 epochs on 6 clips, two unlabelled."""
    torch.set_num_threads(1)
    manifest = Manifest.read(tiny_corpus)
    # Absolute paths: the subset lives in this test's folder, not in the shared corpus.
    rows = [dataclasses.replace(row, path=str(manifest.resolve(row)), label="" if i in UNLABELLED_ROWS else row.label)
            for i, row in enumerate(manifest.rows[:ENGINE_FILES])]
    corpus = tmp_path_factory.mktemp("xdc_engine")
    Manifest(rows, corpus).write(corpus / "xdc_engine.csv")
    out = corpus / "run"
    cfg = demo_config(CONFIGS / "xdc" / "demo_cpu.yaml", corpus, out, "--trainer.max_steps", str(ENGINE_FILES),
                      "--trainer.loggers", "[csv]", manifest="xdc_engine.csv")
    assert cfg.data.cache_decoded and cfg.data.recipe == "xdc"
    probe = _EngineProbe()
    try:
        result = run_pretraining(cfg, callbacks=[probe])
    finally:
        probe.patch.undo()
    return cfg, result, probe, Manifest.read(corpus / "xdc_engine.csv")


def _last_logged(output_dir: Path, name: str) -> float:
    metrics = next((output_dir / "logs" / "csv").glob("version_*/metrics.csv"))
    with metrics.open(newline="") as handle:
        values = [float(row[name]) for row in csv.DictReader(handle) if row.get(name)]
    assert values, f"{name} was never logged"
    return values[-1]


def test_engine_run_logs_scores_against_the_manifest_labels(engine_run):
    cfg, result, _, manifest = engine_run
    assert result.global_step == ENGINE_FILES and int(result.method.num_clusterings) == 2
    classes = manifest.labels()
    labels = torch.tensor([classes.index(row.label) if row.label else -1 for row in manifest])
    known = labels >= 0
    for name in ("video", "audio"):
        assignments = result.method.pseudo_labels(name)  # the second clustering's, logged in epoch 1
        for metric, value in clustering_scores(assignments[known], labels[known]).items():
            assert _last_logged(result.output_dir, f"train/xdc/{name}/{metric}") == pytest.approx(value, rel=1e-6)
        assert 0.0 <= _last_logged(result.output_dir, f"train/xdc/{name}/nmi_previous") <= 1.0


def test_engine_drops_the_optimizer_state_of_reinitialised_heads(engine_run):
    _, _, probe, _ = engine_run
    # Epoch 1 starts right after the second clustering: Adam kept its moments for the encoder
    # (trained through epoch 0) and has none for the fresh heads.
    assert probe.encoder_state and all(probe.encoder_state)
    assert probe.head_state and not any(probe.head_state)


def test_engine_feature_pass_reads_the_decoded_clip_store(engine_run):
    _, result, probe, _ = engine_run
    assert probe.disk_reads == 0  # training batches and both feature passes came from memory
    for name in ("video", "audio"):
        assert (result.method.pseudo_labels(name) >= 0).all()  # every clip was read and clustered


def test_engine_final_export_loads_back(engine_run):
    cfg, result, _, manifest = engine_run
    final = result.output_dir / "final"
    payload = torch.load(final / "method.pt", weights_only=True)
    restored = build_method(cfg.method, num_items=len(manifest))
    restored.load_state_dict(payload["state_dict"])  # strict
    assert torch.equal(restored.pseudo_labels_video, result.method.pseudo_labels_video)
    for modality in ("video", "audio"):
        encoder = load_encoder(final / f"{modality}_encoder.pt")
        trained = getattr(result.method, f"{modality}_encoder").state_dict()
        assert encoder.state_dict().keys() == trained.keys()
        assert all(torch.equal(encoder.state_dict()[k], v) for k, v in trained.items())
