"""XDC: cross-modal deep clustering, with its SDC / MDC / CDC ablations (spec §1.3).

Alwassel, Mahajan, Korbar, Torresani, Ghanem, Tran, "Self-Supervised Learning by Cross-Modal Audio-Video
Clustering", NeurIPS 2020 (arXiv 1911.12667). No training code was ever released (spec §1.1); this is a
DeepCluster-style implementation of the paper's formulation. Each cycle:

1. **Cluster** (:meth:`XDC.on_train_epoch_start`, when due): an eval-mode pass over every training clip
   gives ``E_v(v_i)`` and ``E_a(a_i)`` ([N, 512] each, ``ctx.extract_features``); k-means
   (:func:`avssl.methods.kmeans.kmeans`) turns them into pseudo-labels, stored in buffers ``[N]``
   (so a checkpoint resumes with exactly the same labels). The heads are re-initialised, and
   :meth:`XDC.take_reset_parameters` hands them to the engine, which drops their optimiser state
   (momentum, Adam moments of weights that no longer exist; DeepCluster builds a new optimiser
   for its fresh top layer).
2. **Train** with cross-entropy of linear heads on the encoder features against the pseudo-labels:

   =======  ==========================================================  ===========================
   variant  loss                                                        clusterings
   =======  ==========================================================  ===========================
   ``xdc``  CE(g_v(E_v v), y^a) + CE(g_a(E_a a), y^v)                   video, audio
   ``sdc``  CE(g_v(E_v v), y^v) + CE(g_a(E_a a), y^a)                   video, audio
   ``mdc``  both of the above (two heads per encoder)                   video, audio
   ``cdc``  CE(g_v(E_v v), y^va) + CE(g_a(E_a a), y^va)                 joint: k-means on [E_v; E_a]
   =======  ==========================================================  ===========================

Re-clustering schedule: every ``recluster_every`` epochs (DeepCluster: every epoch), or
``recluster_every="plateau"``: when the monitored loss has not improved by ``plateau_min_delta``
(relative) for ``plateau_patience`` epochs — the maintainers train "until the validation loss
saturates" (spec §1.3, issue #8). The monitored loss is ``ctx.val_loss`` when the engine provides one,
else the epoch mean of this method's training loss (accumulated in buffers, averaged over ranks).

Empty clusters: :func:`~avssl.methods.kmeans.kmeans` fills every cluster that ends up empty by
splitting the largest one in two (DeepCluster's remedy, inherited from faiss), so each of the ``k``
classes has members. Class-balanced sampling (DeepCluster's uniform sampling over clusters):
with ``balanced_sampling=True``, :meth:`XDC.sample_weights` gives each clip the weight
``1 / (k_nonempty · |its cluster|)`` averaged over the clusterings the variant predicts, which the
engine uses to draw the epoch's indices.

At each re-clustering the method logs, in the scalars of every following ``forward`` (the engine
writes them as ``train/xdc/<clustering>/<metric>``, clustering ``video`` | ``audio`` | ``joint``):
``nmi``, ``ari``, ``purity`` and ``hungarian_accuracy`` against the class labels, when the batches
carry ``label`` (the engine's dataset does: the manifest row's class index, ``-1`` for a row with no
single label, which is left out of the scores); ``nmi_previous``, the NMI with the previous
assignment (DeepCluster's stability measure); ``inertia`` (k-means objective per point) and
``num_split`` (clusters filled by splitting).

Batch: one video view ``[B, 3, T, H, W]``, one audio view ``[B, 1, F, T]``, ``index`` ``[B]``,
optional ``label`` ``[B]`` (view recipe ``xdc``: synchronous pairs, :mod:`avssl.data.views`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.evaluate.cluster_metrics import clustering_scores, normalized_mutual_info
from avssl.methods import distributed
from avssl.methods.batch import take_index, take_views
from avssl.methods.kmeans import kmeans, preprocess_features
from avssl.methods.registry import register_method

if TYPE_CHECKING:
    from avssl.data.views import ViewRecipe

__all__ = ["XDC", "PredictionTask", "VARIANTS", "prediction_tasks", "clusterings_of", "clustering_statistics",
           "metric_name"]

logger = logging.getLogger(__name__)

Variant = Literal["xdc", "sdc", "mdc", "cdc"]
VARIANTS: tuple[str, ...] = ("xdc", "sdc", "mdc", "cdc")
IGNORE = -1  # pseudo-label of a clip that has none yet (never clustered): ignored by the loss
UNLABELLED = -1  # batch["label"] of a manifest row with no single class: left out of the scores
LOG_PREFIX = "xdc"


@dataclass(frozen=True)
class PredictionTask:
    """One head: the ``source`` encoder's features predict the pseudo-labels of clustering ``target``."""

    name: str  # "v2a": video features predict audio clusters
    source: Literal["video", "audio"]
    target: Literal["video", "audio", "joint"]


_TASKS: dict[str, tuple[PredictionTask, ...]] = {
    "xdc": (PredictionTask("v2a", "video", "audio"), PredictionTask("a2v", "audio", "video")),
    "sdc": (PredictionTask("v2v", "video", "video"), PredictionTask("a2a", "audio", "audio")),
    "mdc": (
        PredictionTask("v2v", "video", "video"),
        PredictionTask("v2a", "video", "audio"),
        PredictionTask("a2a", "audio", "audio"),
        PredictionTask("a2v", "audio", "video"),
    ),
    "cdc": (PredictionTask("v2va", "video", "joint"), PredictionTask("a2va", "audio", "joint")),
}


def prediction_tasks(variant: str) -> tuple[PredictionTask, ...]:
    """The heads of ``variant`` (see the module table)."""
    if variant not in _TASKS:
        raise ValueError(f"XDC: variant must be one of {VARIANTS}, got {variant!r}")
    return _TASKS[variant]


def clusterings_of(variant: str) -> tuple[str, ...]:
    """The clusterings ``variant`` needs, in the order they are computed."""
    return ("joint",) if variant == "cdc" else ("video", "audio")


class XDC(nn.Module):
    """Cross-modal deep clustering (XDC) and the SDC / MDC / CDC variants (spec §1.3).

    Args:
        video_encoder, audio_encoder: avssl encoders (``out_dim`` sizes the heads).
        variant: ``"xdc"`` | ``"sdc"`` | ``"mdc"`` | ``"cdc"``.
        num_clusters_video, num_clusters_audio: ``k`` of each modality's k-means (the paper sweeps
            values such as 64…1024 per dataset, unverified; spec §1.3).
        num_clusters_joint: ``k`` of CDC's joint k-means (default: ``num_clusters_video``).
        num_items: training-set size N (the engine passes ``len(manifest)``); ``None`` sizes the
            pseudo-label buffers at the first clustering.
        recluster_every: epochs between clusterings, or ``"plateau"`` (see the module docstring).
        plateau_patience, plateau_min_delta: epochs without a relative improvement of
            ``plateau_min_delta`` that trigger a re-clustering in plateau mode.
        max_epochs_per_clustering: plateau mode: re-cluster at the latest after this many epochs
            (``None``: no cap).
        balanced_sampling: expose class-balanced sample weights (:meth:`sample_weights`).
        kmeans_niter, kmeans_nredo, kmeans_spherical: k-means settings
            (:func:`~avssl.methods.kmeans.kmeans`).
        pca_dim: DeepCluster's whitening PCA before k-means (``None``: none). Features are always
            L2-normalised before clustering; CDC concatenates the normalised features of both
            modalities so that neither dominates.
        seed: k-means seed; clustering round ``r`` uses ``seed + r``.
        clustering_recipe: view recipe for the feature pass (e.g. an evaluation-style
            ``avssl.data.views.ViewRecipe``); ``None`` uses the training recipe with its fixed data
            seed (``ctx.extract_features``).
        feature_batch_size: batch size of the feature pass (``None``: the engine's default).
    """

    def __init__(
        self,
        video_encoder: nn.Module,
        audio_encoder: nn.Module,
        variant: Variant = "xdc",
        num_clusters_video: int = 256,
        num_clusters_audio: int = 256,
        num_clusters_joint: int | None = None,
        num_items: int | None = None,
        recluster_every: int | Literal["plateau"] = 1,
        plateau_patience: int = 1,
        plateau_min_delta: float = 0.01,
        max_epochs_per_clustering: int | None = None,
        balanced_sampling: bool = False,
        kmeans_niter: int = 20,
        kmeans_nredo: int = 1,
        kmeans_spherical: bool = True,
        pca_dim: int | None = None,
        seed: int = 0,
        clustering_recipe: ViewRecipe | None = None,
        feature_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if video_encoder is None or audio_encoder is None:
            raise ValueError("XDC needs both a video_encoder and an audio_encoder")
        self.variant = variant
        self.tasks = prediction_tasks(variant)
        self.video_encoder = video_encoder
        self.audio_encoder = audio_encoder
        self.num_clusters = {
            "video": num_clusters_video,
            "audio": num_clusters_audio,
            "joint": num_clusters_joint or num_clusters_video,
        }
        for name in clusterings_of(variant):
            if self.num_clusters[name] < 2:
                raise ValueError(f"XDC: num_clusters_{name} must be >= 2, got {self.num_clusters[name]}")
        if recluster_every != "plateau" and (not isinstance(recluster_every, int) or recluster_every < 1):
            raise ValueError(f"XDC: recluster_every must be a positive int or 'plateau', got {recluster_every!r}")
        if plateau_patience < 1 or plateau_min_delta < 0:
            raise ValueError("XDC: plateau_patience must be >= 1 and plateau_min_delta >= 0")
        self.recluster_every = recluster_every
        self.plateau_patience = plateau_patience
        self.plateau_min_delta = plateau_min_delta
        self.max_epochs_per_clustering = max_epochs_per_clustering
        self.balanced_sampling = balanced_sampling
        self.kmeans_settings = dict(niter=kmeans_niter, nredo=kmeans_nredo, spherical=kmeans_spherical)
        self.pca_dim = pca_dim
        self.seed = seed
        self.clustering_recipe = clustering_recipe
        self.feature_batch_size = feature_batch_size

        dims = {"video": video_encoder.out_dim, "audio": audio_encoder.out_dim}
        self._heads_reset = False  # set by reset_heads, consumed by take_reset_parameters
        self.heads = nn.ModuleDict(
            {t.name: nn.Linear(dims[t.source], self.num_clusters[t.target]) for t in self.tasks}
        )
        self.reset_heads()

        size = num_items if num_items is not None else 0
        for name in clusterings_of(variant):
            self.register_buffer(f"pseudo_labels_{name}", torch.full((size,), IGNORE, dtype=torch.long))
        # Schedule and plateau state, in buffers so that a resume decides exactly as the first run.
        self.register_buffer("num_clusterings", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_clustering_epoch", torch.full((), -1, dtype=torch.long))
        self.register_buffer("best_monitored_loss", torch.full((), float("inf"), dtype=torch.float64))
        self.register_buffer("epochs_without_improvement", torch.zeros((), dtype=torch.long))
        self.register_buffer("epoch_loss_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("epoch_loss_count", torch.zeros((), dtype=torch.long))
        # The statistics of the last clustering, repeated in every forward's logged scalars. Logs
        # only: not part of the state (a resumed run logs them again from its next clustering).
        self.clustering_log: dict[str, float] = {}
        # Buffers of size N are created before N is known (num_items=None): take the size a
        # checkpoint has, so a resume restores the labels instead of failing on the shape.
        self.register_load_state_dict_pre_hook(_resize_pseudo_label_buffers)

    # ------------------------------------------------------------------------------------ state

    def pseudo_labels(self, clustering: str) -> Tensor:
        """``[N]`` current pseudo-labels of ``clustering`` (``-1`` where none)."""
        return getattr(self, f"pseudo_labels_{clustering}")

    @property
    def has_pseudo_labels(self) -> bool:
        return int(self.num_clusterings) > 0

    def reset_heads(self) -> None:
        """Fresh linear heads: the pseudo-label classes change meaning at every clustering.

        DeepCluster's top-layer initialisation: weights N(0, 0.01²), biases 0.
        """
        for head in self.heads.values():
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)
        self._heads_reset = True

    def take_reset_parameters(self) -> list[nn.Parameter]:
        """The parameters re-initialised since the last call (all head parameters after a
        re-clustering, else none); each reset is handed out once.

        The engine (:class:`avssl.train.module.PretrainModule`) calls this after
        :meth:`on_train_epoch_start` and drops the optimiser state of what it gets: momentum and
        Adam moments accumulated for the old heads would push the fresh ones along the gradients
        of classes that no longer exist.
        """
        if not self._heads_reset:
            return []
        self._heads_reset = False
        return list(self.heads.parameters())

    # ---------------------------------------------------------------------------------- training

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        (video,) = take_views(batch, "video", 1, "XDC")
        (audio,) = take_views(batch, "audio", 1, "XDC")
        index = take_index(batch, video.shape[0], "XDC")
        if not self.has_pseudo_labels:
            raise RuntimeError(
                "XDC has no pseudo-labels yet: on_train_epoch_start(ctx) must run a clustering before the "
                "first training step (the engine calls it at the start of every epoch)"
            )
        features = {"video": self.video_encoder(video), "audio": self.audio_encoder(audio)}  # [B, D]
        outputs: dict[str, Tensor] = {}
        total = features["video"].new_zeros(())
        for task in self.tasks:
            logits = self.heads[task.name](features[task.source])  # [B, k]
            target = self.pseudo_labels(task.target)[index]  # [B]
            valid = target != IGNORE
            # A batch of clips that were never clustered contributes nothing (CE over zero rows is NaN).
            loss = F.cross_entropy(logits[valid], target[valid]) if valid.any() else logits.sum() * 0.0
            total = total + loss
            outputs[f"loss/{task.name}"] = loss.detach()
            if valid.any():
                accuracy = (logits[valid].argmax(1) == target[valid]).float().mean()
                outputs[f"acc/{task.name}"] = accuracy.detach()
        if self.training:
            with torch.no_grad():
                self.epoch_loss_sum += total.detach().double()
                self.epoch_loss_count += 1
        outputs["loss"] = total
        for name, value in self.clustering_log.items():
            outputs[name] = torch.tensor(value)
        return outputs

    # -------------------------------------------------------------------------------- clustering

    def on_train_epoch_start(self, ctx: Any) -> None:
        """Close the previous epoch's plateau bookkeeping, then re-cluster when due."""
        epoch = int(ctx.epoch)
        self._record_epoch_loss(getattr(ctx, "val_loss", None))
        if self._clustering_due(epoch):
            self.recluster(ctx)

    def _record_epoch_loss(self, val_loss: float | None) -> None:
        count = distributed.all_reduce_mean(self.epoch_loss_count.double())
        if float(count) > 0 or val_loss is not None:
            mean = distributed.all_reduce_mean(self.epoch_loss_sum) / count if val_loss is None else val_loss
            mean = float(mean)
            if mean < float(self.best_monitored_loss) * (1 - self.plateau_min_delta):
                self.best_monitored_loss.fill_(mean)
                self.epochs_without_improvement.zero_()
            else:
                self.epochs_without_improvement += 1
        self.epoch_loss_sum.zero_()
        self.epoch_loss_count.zero_()

    def _clustering_due(self, epoch: int) -> bool:
        if not self.has_pseudo_labels:
            return True
        since = epoch - int(self.last_clustering_epoch)
        if self.recluster_every != "plateau":
            return since >= self.recluster_every
        if self.max_epochs_per_clustering is not None and since >= self.max_epochs_per_clustering:
            return True
        return int(self.epochs_without_improvement) >= self.plateau_patience

    def clustering_features(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """What the feature pass keeps of one batch: ``{"video": [B, Dv], "audio": [B, Da]}`` and,
        when the batch carries labels, ``"label": [B, 1]`` (gathered with the features, so each
        instance's label lands in its row of the table; -1 = unlabelled)."""
        (video,) = take_views(batch, "video", 1, "XDC")
        (audio,) = take_views(batch, "audio", 1, "XDC")
        out = {"video": self.video_encoder(video), "audio": self.audio_encoder(audio)}
        if isinstance(batch.get("label"), Tensor):
            out["label"] = batch["label"].reshape(-1, 1)
        return out

    @torch.no_grad()
    def recluster(self, ctx: Any) -> dict[str, float]:
        """Extract features of every training clip, run k-means, store pseudo-labels, reset the heads.

        ``ctx.extract_features(fn, recipe=None, batch_size=None)`` returns ``{name: Tensor[N, D]}``
        with row ``i`` = instance ``i`` on every rank, and ``"valid"`` ``[N]`` (False for files that
        could not be decoded). Returns the logged statistics.
        """
        features = ctx.extract_features(
            self.clustering_features, recipe=self.clustering_recipe, batch_size=self.feature_batch_size
        )
        # The engine gathers every table as float: class indices (and -1) are exact in float32.
        labels = features["label"].reshape(-1).round().long().cpu() if "label" in features else None
        return self.assign_pseudo_labels(
            {"video": features["video"], "audio": features["audio"]}, int(ctx.epoch), labels, features.get("valid")
        )

    @torch.no_grad()
    def assign_pseudo_labels(
        self,
        features: Mapping[str, Tensor],
        epoch: int,
        labels: Tensor | None = None,
        valid: Tensor | None = None,
    ) -> dict[str, float]:
        """Cluster ``features`` (``{"video": [N, Dv], "audio": [N, Da]}``, row = instance id) and make
        the assignments the new pseudo-labels.

        ``valid`` ``[N]`` bool marks the rows to cluster (the others get no pseudo-label and are
        ignored by the loss); ``labels`` ``[N]`` (optional; ``-1`` = unlabelled) only feed the logged
        scores. k-means runs on rank 0 and its assignment is broadcast, so every rank trains on the
        same labels.
        """
        num_items = features["video"].shape[0]
        valid = torch.ones(num_items, dtype=torch.bool) if valid is None else valid.bool().cpu()
        if labels is not None and labels.shape != (num_items,):
            raise ValueError(f"XDC: labels must be [N] = [{num_items}] class indices, got shape {tuple(labels.shape)}")
        round_seed = self.seed + int(self.num_clusterings)
        log: dict[str, float] = {}
        for name in clusterings_of(self.variant):
            if int(valid.sum()) < self.num_clusters[name]:
                raise ValueError(
                    f"XDC: {int(valid.sum())} of {num_items} training clips could be read, fewer than "
                    f"num_clusters_{name} = {self.num_clusters[name]}"
                )
            points = self._points_for(name, features, valid)  # [N_valid, D]
            buffer = self.pseudo_labels(name)
            previous = buffer.clone().cpu() if buffer.numel() == num_items and self.has_pseudo_labels else None
            assignments = torch.full((num_items,), IGNORE, dtype=torch.long, device=buffer.device)
            kmeans_stats = torch.zeros(2, dtype=torch.float64, device=buffer.device)
            if distributed.rank() == 0:
                result = kmeans(points, self.num_clusters[name], seed=round_seed, **self.kmeans_settings)
                assignments[valid.to(buffer.device)] = result.assignments.to(buffer.device)
                kmeans_stats.copy_(torch.tensor([result.inertia / len(points), result.num_split]))
            distributed.broadcast_from_rank0(assignments)
            distributed.broadcast_from_rank0(kmeans_stats)
            setattr(self, f"pseudo_labels_{name}", assignments)
            inertia, num_split = kmeans_stats.tolist()
            log.update(clustering_statistics(name, assignments.cpu(), valid, previous, labels))
            log.update({metric_name(name, "inertia"): inertia, metric_name(name, "num_split"): num_split})
        self.reset_heads()
        self.num_clusterings += 1
        self.last_clustering_epoch.fill_(epoch)
        self.best_monitored_loss.fill_(float("inf"))
        self.epochs_without_improvement.zero_()
        self.clustering_log = log
        logger.info("XDC clustering %d (epoch %d): %s", int(self.num_clusterings), epoch,
                    ", ".join(f"{k}={v:.4g}" for k, v in sorted(log.items())))
        return dict(log)

    def _points_for(self, clustering: str, features: Mapping[str, Tensor], valid: Tensor) -> Tensor:
        """Features ``[N_valid, D]`` k-means sees for ``clustering`` (L2-normalised, optional PCA)."""
        if clustering == "joint":
            # Normalise each modality first, so that the concatenation weighs them equally.
            parts = [F.normalize(features[m].float().cpu()[valid], dim=1) for m in ("video", "audio")]
            raw = torch.cat(parts, dim=1)  # [N_valid, Dv + Da]
        else:
            raw = features[clustering].float().cpu()[valid]
        return preprocess_features(raw, self.pca_dim)

    # ------------------------------------------------------------------------ balanced sampling

    def sample_weights(self) -> Tensor | None:
        """``[N]`` sampling weights uniform over clusters, or ``None`` (uniform over clips).

        ``None`` unless ``balanced_sampling`` and a clustering exists. Each predicted clustering
        gives clip ``i`` the weight ``1 / (k_nonempty · |cluster(i)|)`` (every non-empty cluster then
        has total weight ``1 / k_nonempty``); XDC / MDC average the video and audio weights. Clips
        without a pseudo-label get weight 0.
        """
        if not self.balanced_sampling or not self.has_pseudo_labels:
            return None
        targets = sorted({task.target for task in self.tasks})
        weights = torch.zeros(self.pseudo_labels(targets[0]).numel(), dtype=torch.float64)
        for name in targets:
            labels = self.pseudo_labels(name).cpu()
            valid = labels != IGNORE
            sizes = torch.bincount(labels[valid], minlength=self.num_clusters[name]).double()
            nonempty = int((sizes > 0).sum())
            per_clip = torch.zeros_like(weights)
            per_clip[valid] = 1.0 / (nonempty * sizes[labels[valid]])
            weights += per_clip / len(targets)
        return weights


def metric_name(clustering: str, metric: str) -> str:
    """Logged name of one clustering statistic, e.g. ``xdc/video/purity``."""
    return f"{LOG_PREFIX}/{clustering}/{metric}"


def clustering_statistics(
    clustering: str,
    assignments: Tensor,
    valid: Tensor,
    previous: Tensor | None = None,
    labels: Tensor | None = None,
) -> dict[str, float]:
    """Scores of one clustering's ``assignments`` ``[N]`` over the ``valid`` ``[N]`` rows.

    ``nmi_previous``: NMI with ``previous`` ``[N]`` (the last round's pseudo-labels) over the rows
    both rounds assigned. ``nmi`` / ``ari`` / ``purity`` / ``hungarian_accuracy``
    (:func:`avssl.evaluate.cluster_metrics.clustering_scores`): against ``labels`` ``[N]`` over the
    rows with a class (``-1`` rows, e.g. multi-label or unlabelled manifest rows, are left out).
    A score with no row to compute it on is not reported.
    """
    out: dict[str, float] = {}
    if previous is not None:
        both = valid & (previous != IGNORE)
        if both.any():
            out[metric_name(clustering, "nmi_previous")] = normalized_mutual_info(assignments[both], previous[both])
    if labels is not None:
        known = valid & (labels != UNLABELLED)
        if known.any():
            scores = clustering_scores(assignments[known], labels[known])
            out.update({metric_name(clustering, metric): value for metric, value in scores.items()})
    return out


def _resize_pseudo_label_buffers(module: XDC, state_dict: Mapping[str, Tensor], prefix: str, *args: Any) -> None:
    for name in clusterings_of(module.variant):
        key = f"{prefix}pseudo_labels_{name}"
        if key in state_dict and state_dict[key].shape != module.pseudo_labels(name).shape:
            current = module.pseudo_labels(name)
            setattr(module, f"pseudo_labels_{name}", torch.full_like(state_dict[key], IGNORE, device=current.device))


@register_method("xdc")
def xdc(video_encoder: nn.Module, audio_encoder: nn.Module, num_items: int | None = None, **kwargs: Any) -> XDC:
    """XDC / SDC / MDC / CDC deep clustering (spec §1.3); pick the variant with ``variant=``."""
    return XDC(video_encoder, audio_encoder, num_items=num_items, **kwargs)

