"""XKD: cross-modal knowledge distillation with domain alignment, and XKD-MAS / XKD-MATS (spec §4).

Per iteration, on a batch ``video = [global B×3×32×112², local B×3×8×96² (×n)]`` and
``audio = [global B×1×80×448, local B×1×80×112]`` (view recipe ``xkd``):

1. masked reconstruction of the global views by the students (video ratio 0.85, audio 0.80);
2. EMA teachers (no grad) encode ``video[1]`` / ``audio[1]`` — the first **local** views, as the
   released code does (``teacher_view="local"``; the paper figure feeds the global view:
   ``teacher_view="global"``, spec §4.3 discrepancy note, pitfall 16) — and return the CLS
   attention row of their last block;
3. the teacher tokens are re-weighted by cross-modal attention (:func:`cross_modal_attention`,
   :func:`refine_tokens`) and pooled into the teacher heads;
4. the student heads see the visible-token mean of the masked global view and each local view;
5. ``L_da = ½[MMD(S_v, S_a) + MMD(t_v, t_a)]``; 6. ``L_kd = ½[ℓ(t_v→S_a) + ℓ(t_a→S_v)]``;
7. ``L = (1·L_da + 1·L_kd + 5·L_recon)/7``; 8. teachers follow the students by cosine-scheduled EMA.

Variants: ``"mas"`` shares the students' transformer blocks between modalities; ``"mats"`` also the
teachers', whose shared blocks then get two EMA steps per iteration as released (``m²``;
``shared_teacher_update="single"`` for one).

Engine hooks: ``on_train_epoch_start(ctx)`` (teacher-temperature warm-up),
``on_before_optimizer_step()`` (per-tensor gradient clipping of the students, after unscaling),
``on_after_optimizer_step(step, max_steps)`` (EMA teachers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from avssl.methods.ema import EMATeacher, cosine_momentum
from avssl.methods.masking import random_masking
from avssl.methods.registry import register_method
from avssl.methods.xkd_losses import (
    AlignmentKind,
    CrossModalDistillLoss,
    alignment_distance,
    autocast_off,
    masked_reconstruction_loss,
    teacher_temperature,
)
from avssl.models.dino_head import DINOHead
from avssl.models.mae_decoder import MAEDecoder
from avssl.models.vit import ViTEncoder

Variant = Literal["xkd", "mas", "mats"]
MODALITIES = ("video", "audio")


# -- teacher refinement (§4.3 step 3) -----------------------------------------------------------


def cross_modal_attention(
    video_attn: Tensor, audio_attn: Tensor, mode: Literal["mean", "softmax"] = "mean"
) -> tuple[Tensor, Tensor]:
    """Re-weight each modality's CLS attention by the other's (``XKD_Net.cross_modal_attn``).

    ``video_attn`` ``B×H×N_v`` and ``audio_attn`` ``B×H×N_a`` are the last-block CLS-row attentions
    without the CLS column. ``mean``: ``w^v = α^v · mean_j α^a / mean_i α^v`` (and symmetrically);
    ``softmax``: ``w^v = softmax_i(α^v · mean_j α^a)``. The cross-modal information enters only
    through the per-head scalars ``mean α`` of the other modality. Returns ``(w^v, w^a)``.
    """
    video_mean = video_attn.mean(dim=-1, keepdim=True)  # [B, H, 1]
    audio_mean = audio_attn.mean(dim=-1, keepdim=True)
    if mode == "mean":
        return video_attn * audio_mean / video_mean, audio_attn * video_mean / audio_mean
    if mode == "softmax":
        return (video_attn * audio_mean).softmax(dim=-1), (audio_attn * video_mean).softmax(dim=-1)
    raise ValueError(f"cm_attn_mode must be 'mean' or 'softmax', got {mode!r}")


def refine_tokens(tokens: Tensor, weights: Tensor) -> Tensor:
    """``x̃_i = c·w_i·x_i`` with ``w_i`` the head-mean weight and ``c = ‖mean x‖ / ‖mean w·x‖``
    (``XKD_Net.align_feats``: the energy of the mean-pooled feature is kept).

    ``tokens`` ``B×N×D`` (no CLS), ``weights`` ``B×H×N`` → ``B×N×D``.
    """
    w = weights.mean(dim=1).unsqueeze(-1)  # [B, N, 1]
    energy_before = tokens.mean(dim=1).pow(2).sum(dim=1, keepdim=True)  # [B, 1]
    energy_after = (tokens * w).mean(dim=1).pow(2).sum(dim=1, keepdim=True)
    scale = (energy_before / energy_after).sqrt().unsqueeze(-1)  # [B, 1, 1]
    return scale * w * tokens


# -- the method -------------------------------------------------------------------------------


def share_student_blocks(video_encoder: ViTEncoder, audio_encoder: ViTEncoder) -> None:
    """Make ``audio_encoder`` use ``video_encoder``'s transformer blocks (XKD-MAS/MATS students)."""
    video_shapes = [p.shape for p in video_encoder.blocks.parameters()]
    audio_shapes = [p.shape for p in audio_encoder.blocks.parameters()]
    if video_shapes != audio_shapes:
        raise ValueError(
            "XKD-MAS/MATS: the video and audio encoders must have identical transformer blocks to "
            f"share them (video {len(video_encoder.blocks)} blocks of width {video_encoder.out_dim}, "
            f"audio {len(audio_encoder.blocks)} of width {audio_encoder.out_dim})"
        )
    audio_encoder.blocks = video_encoder.blocks


class XKD(nn.Module):
    """XKD / XKD-MAS / XKD-MATS pretext objective (see the module docstring).

    Args:
        video_encoder, audio_encoder: :class:`ViTEncoder` students (e.g. ``vit_b_video_xkd``).
        variant: ``"xkd"``, ``"mas"`` (shared student blocks) or ``"mats"`` (shared teacher too).
        video_mask_ratio, audio_mask_ratio: masked fraction of the global views (0.85, 0.80).
        norm_pix_loss: per-patch normalised reconstruction targets.
        head_hidden_dim, head_bottleneck_dim, head_out_dim: DINO heads (2048, 256, 8192).
        decoder_dim, decoder_depth, decoder_heads: MAE decoders (384, 4, 12).
        teacher_view: ``"local"`` (released code) or ``"global"`` (paper figure).
        cm_attn_mode: teacher refinement, ``"mean"`` or ``"softmax"``.
        align_loss: ``"mmd"`` (multi-kernel Gaussian) or ``"mean_cov"`` (CORAL).
        align_coeff, cmkd_coeff, recon_coeff: loss weights (1, 1, 5; the total is divided by their sum).
        student_temp: student temperature of both directions (the release passes the audio
            student's 0.1 to both, the video one being 0.1 too).
        video_teacher_temp, audio_teacher_temp: final teacher temperatures (0.1, 0.07), reached
            linearly per epoch from ``*_warmup_teacher_temp`` over ``warmup_teacher_temp_epochs``.
        center_momentum: DINO centre EMA (0.9), one centre per direction.
        ema_momentum: teacher momentum at step 0, cosine to 1 (0.997).
        shared_teacher_update: MATS only — ``"double"`` (released: one EMA step per modality) or
            ``"single"``.
        clip_grad: per-tensor gradient-norm clip of the students (0.3; ``None`` disables).
    """

    def __init__(
        self,
        video_encoder: ViTEncoder,
        audio_encoder: ViTEncoder,
        variant: Variant = "xkd",
        video_mask_ratio: float = 0.85,
        audio_mask_ratio: float = 0.80,
        norm_pix_loss: bool = True,
        head_hidden_dim: int = 2048,
        head_bottleneck_dim: int = 256,
        head_out_dim: int = 8192,
        decoder_dim: int = 384,
        decoder_depth: int = 4,
        decoder_heads: int = 12,
        teacher_view: Literal["local", "global"] = "local",
        cm_attn_mode: Literal["mean", "softmax"] = "mean",
        align_loss: AlignmentKind = "mmd",
        align_coeff: float = 1.0,
        cmkd_coeff: float = 1.0,
        recon_coeff: float = 5.0,
        student_temp: float = 0.1,
        video_teacher_temp: float = 0.1,
        video_warmup_teacher_temp: float = 0.1,
        audio_teacher_temp: float = 0.07,
        audio_warmup_teacher_temp: float = 0.07,
        warmup_teacher_temp_epochs: int = 30,
        center_momentum: float = 0.9,
        ema_momentum: float = 0.997,
        shared_teacher_update: Literal["double", "single"] = "double",
        clip_grad: float | None = 0.3,
    ) -> None:
        super().__init__()
        for modality, enc in (("video", video_encoder), ("audio", audio_encoder)):
            if not isinstance(enc, ViTEncoder) or enc.modality != modality:
                raise TypeError(f"XKD: {modality}_encoder must be a {modality} ViTEncoder, got {type(enc).__name__}")
        choices = {
            "variant": (variant, ("xkd", "mas", "mats")),
            "teacher_view": (teacher_view, ("local", "global")),
            "cm_attn_mode": (cm_attn_mode, ("mean", "softmax")),
            "align_loss": (align_loss, ("mmd", "mean_cov")),
            "shared_teacher_update": (shared_teacher_update, ("double", "single")),
        }
        for field, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"XKD: {field} must be one of {allowed}, got {value!r}")
        if variant in ("mas", "mats"):
            share_student_blocks(video_encoder, audio_encoder)
        self.variant = variant
        self.video_encoder, self.audio_encoder = video_encoder, audio_encoder
        head = dict(hidden_dim=head_hidden_dim, bottleneck_dim=head_bottleneck_dim, out_dim=head_out_dim)
        self.video_head = DINOHead(video_encoder.out_dim, **head)
        self.audio_head = DINOHead(audio_encoder.out_dim, **head)
        decoder = dict(decoder_dim=decoder_dim, depth=decoder_depth, num_heads=decoder_heads)
        self.video_decoder = MAEDecoder(video_encoder.patch_grid, video_encoder.out_dim, **decoder)
        self.audio_decoder = MAEDecoder(audio_encoder.patch_grid, audio_encoder.out_dim, **decoder)
        # One deepcopy of both groups keeps the students' shared blocks shared in the teacher (MATS).
        self.teachers = EMATeacher(self._student_groups(), share_like_students=variant == "mats")
        self.distill_v2a = CrossModalDistillLoss(head_out_dim, center_momentum)  # video teacher → audio students
        self.distill_a2v = CrossModalDistillLoss(head_out_dim, center_momentum)
        self.mask_ratio = {"video": video_mask_ratio, "audio": audio_mask_ratio}
        self.norm_pix_loss = norm_pix_loss
        self.teacher_view = teacher_view
        self.cm_attn_mode = cm_attn_mode
        self.align_loss = align_loss
        self.coeffs = {"align": align_coeff, "cmkd": cmkd_coeff, "recon": recon_coeff}
        self.student_temp = student_temp
        self.teacher_temp_schedule = {
            "video": (video_warmup_teacher_temp, video_teacher_temp),
            "audio": (audio_warmup_teacher_temp, audio_teacher_temp),
        }
        self.warmup_teacher_temp_epochs = warmup_teacher_temp_epochs
        self.ema_momentum = ema_momentum
        self.shared_teacher_update = shared_teacher_update
        self.clip_grad = clip_grad
        # Resume state: the warm-up epoch (the engine does not call on_train_epoch_start again when
        # it resumes mid-epoch) and, for the logs, the last EMA momentum. ``self.epoch`` mirrors the
        # buffer as a Python int so a step never waits on the device to read it.
        self.register_buffer("epoch_state", torch.zeros((), dtype=torch.long))
        self.register_buffer("last_momentum", torch.tensor(float(ema_momentum)))
        self.epoch = 0
        self.register_load_state_dict_post_hook(_sync_epoch_after_load)

    # -- pieces --------------------------------------------------------------------------------

    def _student_groups(self) -> dict[str, nn.ModuleDict]:
        # Transient containers (not registered): what each teacher copies and follows.
        return {
            "video": nn.ModuleDict({"encoder": self.video_encoder, "head": self.video_head}),
            "audio": nn.ModuleDict({"encoder": self.audio_encoder, "head": self.audio_head}),
        }

    def teacher_encoder(self, modality: str) -> ViTEncoder:
        """The EMA teacher backbone of ``modality`` (``"video"`` or ``"audio"``)."""
        return self.teachers[modality]["encoder"]

    def teacher_temperatures(self) -> dict[str, float]:
        """Current teacher temperature per modality (per-epoch warm-up)."""
        return {
            m: teacher_temperature(self.epoch, start, final, self.warmup_teacher_temp_epochs)
            for m, (start, final) in self.teacher_temp_schedule.items()
        }

    def reconstruct(
        self, modality: str, x: Tensor, noise: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Masked reconstruction of view ``x``: returns ``(loss, latent B×(1+L)×D)`` (§4.3 step 1).

        ``noise`` (``B×N``) replaces the random masking noise (replay, parity).
        """
        encoder: ViTEncoder = getattr(self, f"{modality}_encoder")
        decoder: MAEDecoder = getattr(self, f"{modality}_decoder")
        grid = encoder.token_grid(x)
        masks = random_masking(x.shape[0], math.prod(grid), self.mask_ratio[modality], x.device, noise)
        latent = encoder.forward_tokens(x, keep_index=masks.keep_index)["tokens"]  # [B, 1+L, D]
        pred = decoder(latent, masks.ids_restore, grid)  # [B, N, P]
        loss = masked_reconstruction_loss(pred, encoder.patchify(x), masks.mask, self.norm_pix_loss)
        return loss, latent

    @torch.no_grad()
    def teacher_outputs(self, video: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Refined teacher head outputs ``(t_v, t_a)``, each ``B×head_out_dim`` (§4.3 steps 2–3)."""
        tokens, attn = {}, {}
        for modality, x in (("video", video), ("audio", audio)):
            out = self.teacher_encoder(modality).forward_tokens(x, return_attention=True)
            tokens[modality] = out["tokens"][:, 1:].float()  # [B, N, D] without CLS
            attn[modality] = out["attention"][:, :, 0, 1:].float()  # [B, H, N]: CLS row, no CLS column
        with autocast_off(video.device):  # the attention re-weighting in float32
            weights = cross_modal_attention(attn["video"], attn["audio"], self.cm_attn_mode)
            pooled = {m: refine_tokens(tokens[m], w).mean(dim=1) for m, w in zip(MODALITIES, weights)}
        return self.teachers["video"]["head"](pooled["video"]), self.teachers["audio"]["head"](pooled["audio"])

    def student_outputs(self, modality: str, global_latent: Tensor, local_views: Sequence[Tensor]) -> Tensor:
        """Student head outputs ``[global; local_1; …]`` (``(1+n)·B×head_out_dim``, §4.3 step 4)."""
        encoder: ViTEncoder = getattr(self, f"{modality}_encoder")
        pooled = [global_latent[:, 1:].mean(dim=1)]  # visible-token mean of the masked global view
        for group in _same_shape_runs(local_views):  # one forward per run of equal-shape views
            pooled.append(encoder.forward_tokens(torch.cat(group))["tokens"][:, 1:].mean(dim=1))
        return getattr(self, f"{modality}_head")(torch.cat(pooled))

    # -- contract ------------------------------------------------------------------------------

    def forward(self, batch: Mapping[str, object]) -> dict[str, Tensor]:
        video, audio = _views(batch, "video"), _views(batch, "audio")
        recon_v, latent_v = self.reconstruct("video", video[0])
        recon_a, latent_a = self.reconstruct("audio", audio[0])
        recon = (recon_v + recon_a) / 2

        view = 1 if self.teacher_view == "local" else 0
        t_v, t_a = self.teacher_outputs(video[view], audio[view])
        s_v = self.student_outputs("video", latent_v, video[1:])  # [(1+n_v)·B, K]
        s_a = self.student_outputs("audio", latent_a, audio[1:])

        align_students = alignment_distance(s_v, s_a, self.align_loss)
        align_teachers = alignment_distance(t_v, t_a, self.align_loss)
        align = (align_students + align_teachers) / 2

        temps = self.teacher_temperatures()
        kd_v2a = self.distill_v2a(s_a, t_v, self.student_temp, temps["video"], len(audio), 1)
        kd_a2v = self.distill_a2v(s_v, t_a, self.student_temp, temps["audio"], len(video), 1)
        cmkd = (kd_v2a + kd_a2v) / 2

        c = self.coeffs
        loss = (c["align"] * align + c["cmkd"] * cmkd + c["recon"] * recon) / sum(c.values())
        logs = {
            "loss/recon_video": recon_v, "loss/recon_audio": recon_a, "loss/recon": recon,
            "loss/align_students": align_students, "loss/align_teachers": align_teachers, "loss/align": align,
            "loss/kd_v2a": kd_v2a, "loss/kd_a2v": kd_a2v, "loss/kd": cmkd,
        }
        out = {"loss": loss, **{k: v.detach() for k, v in logs.items()}}
        out["teacher_temp/video"] = torch.tensor(temps["video"])
        out["teacher_temp/audio"] = torch.tensor(temps["audio"])
        out["ema_momentum"] = self.last_momentum.clone()
        return out

    def on_train_epoch_start(self, ctx) -> None:
        """Set the epoch of the teacher-temperature warm-up."""
        self.epoch = int(ctx.epoch)
        self.epoch_state.fill_(self.epoch)

    @torch.no_grad()
    def on_before_optimizer_step(self) -> None:
        """Per-tensor clip of the students' (encoders + heads, not decoders) gradients:
        ``g ← g · min(1, clip/(‖g‖ + 1e-6))`` (DINO's ``clip_gradients``). Call after unscaling.
        Shared blocks (MAS/MATS) are clipped once."""
        if self.clip_grad is None:
            return
        students = nn.ModuleList([self.video_encoder, self.video_head, self.audio_encoder, self.audio_head])
        grads = [p.grad for p in students.parameters() if p.grad is not None]
        if not grads:
            return
        norms = torch.stack(torch._foreach_norm(grads))
        scales = (self.clip_grad / (norms + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_(grads, list(scales.unbind()))

    def on_after_optimizer_step(self, step: int, max_steps: int) -> None:
        """EMA step of both teachers with ``m = cosine_momentum(step, max_steps)``; ``step`` is the
        0-based index of the optimiser step just taken."""
        momentum = cosine_momentum(step, max_steps, self.ema_momentum)
        once = self.shared_teacher_update == "single"
        self.teachers.update(self._student_groups(), momentum, update_shared_once=once)
        self.last_momentum.fill_(momentum)

    def param_groups(self) -> list[dict]:
        """One AdamW group of the trainable parameters (students and decoders; teachers and the
        frozen weight-norm gains have no gradient) with the engine's §4.4 split: no weight decay
        for ``*.bias`` and 1-D tensors, decay for everything else, including ``cls_token``, the
        position embeddings and ``mask_token``. Shared tensors appear once."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"name": "xkd", "params": params, "exclude_bias_and_norm": True}]


def _sync_epoch_after_load(module: XKD, incompatible_keys) -> None:
    module.epoch = int(module.epoch_state)


def _views(batch: Mapping[str, object], key: str) -> list[Tensor]:
    views = batch.get(key) if isinstance(batch, Mapping) else None
    if not isinstance(views, (list, tuple)) or len(views) < 2 or not all(isinstance(v, Tensor) for v in views):
        raise ValueError(
            f"XKD: batch[{key!r}] must be a list [global view, local view, ...] of at least two "
            f"tensors (view recipe 'xkd'), got {type(views).__name__}"
            + (f" of length {len(views)}" if isinstance(views, (list, tuple)) else "")
        )
    return list(views)


def _same_shape_runs(views: Sequence[Tensor]) -> list[list[Tensor]]:
    runs: list[list[Tensor]] = []
    for v in views:
        if runs and runs[-1][0].shape == v.shape:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


# -- registry ---------------------------------------------------------------------------------


@register_method("xkd")
def xkd(video_encoder: ViTEncoder, audio_encoder: ViTEncoder, **hparams) -> XKD:
    """XKD: masked reconstruction + cross-modal distillation + MMD domain alignment (spec §4)."""
    return XKD(video_encoder, audio_encoder, variant="xkd", **hparams)


@register_method("xkd_mas")
def xkd_mas(video_encoder: ViTEncoder, audio_encoder: ViTEncoder, **hparams) -> XKD:
    """XKD-MAS: XKD with one modality-agnostic student (shared blocks); MAS teacher temperatures."""
    defaults = dict(
        video_warmup_teacher_temp=0.09, video_teacher_temp=0.11,
        audio_warmup_teacher_temp=0.04, audio_teacher_temp=0.06,
    )
    return XKD(video_encoder, audio_encoder, variant="mas", **{**defaults, **hparams})


@register_method("xkd_mats")
def xkd_mats(video_encoder: ViTEncoder, audio_encoder: ViTEncoder, **hparams) -> XKD:
    """XKD-MATS: modality-agnostic student and teacher (shared blocks; released double EMA update)."""
    return XKD(video_encoder, audio_encoder, variant="mats", **hparams)
