"""XDC and its SDC / MDC / CDC variants: heads and targets, re-clustering, resume, balanced sampling.

The engine's feature pass is stood in for by :class:`FeaturePass`, which does what
docs/pretraining.md specifies for ``ctx.extract_features``: every instance once, method in eval mode
under ``no_grad``, rows ordered by instance id, plus ``"index"``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import faiss
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods.registry import create_method
from avssl.methods.xdc import XDC, clusterings_of, prediction_tasks
from avssl.models.registry import create_encoder

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
        assert 0.0 <= log[f"{name}_nmi_previous"] <= 1.0  # second clustering compares with the first
        assert 0.0 < log[f"{name}_purity"] <= 1.0 and f"{name}_hungarian_accuracy" in log
    assert "cluster/" + clusterings_of(variant)[0] + "_nmi" in outputs[-1]


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
    assert method.clustering_log["video_num_split"] == 2


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
