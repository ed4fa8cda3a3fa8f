"""XKD loss pieces against numbers computed with the released code (shared/parity/xkd, README "XKD").

Covers: Gaussian MMD and CORAL with gradients and the combined alignment loss; the teacher
refinement (``cross_modal_attn`` + ``align_feats``) in both modes; two consecutive distillation
steps with the centres; patchify order; random masking with the stored noise; the reconstruction
loss with ``norm_pix_loss`` on and off, with gradients.
"""

from __future__ import annotations

import pytest
import torch

from avssl.methods.masking import random_masking
from avssl.methods.xkd import cross_modal_attention, refine_tokens
from avssl.methods.xkd_losses import (
    MMD_GAMMAS,
    CrossModalDistillLoss,
    alignment_distance,
    masked_reconstruction_loss,
)
from avssl.models.patch_embed import patchify


def _load(parity_dir, name: str) -> dict:
    path = parity_dir / "xkd" / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"parity fixture {path} not found")
    return torch.load(path, weights_only=True)


def _close(actual, expected, atol, rtol=1e-4):
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol)


# -- alignment ------------------------------------------------------------------------------


def test_mmd_gammas_match_fixture(parity_dir):
    fx = _load(parity_dir, "align_loss")
    assert list(MMD_GAMMAS) == pytest.approx(fx["mmd_gammas"])


@pytest.mark.parametrize("case_index", range(4))
def test_alignment_distance_and_gradients(parity_dir, case_index):
    fx = _load(parity_dir, "align_loss")
    case = fx["mmd_cases"][case_index]
    inputs = fx["inputs"]
    names = {"student_vs_as": ("vid_student", "aud_student"), "teacher_vt_at": ("vid_teacher", "aud_teacher")}
    x_name, y_name = names[case["pair"]]
    x = inputs[x_name].clone().requires_grad_(True)
    y = inputs[y_name].clone().requires_grad_(True)
    kind = {"gaussian": "mmd", "mean_cov": "mean_cov"}[case["kernel_type"]]
    loss = alignment_distance(x, y, kind)
    loss.backward()
    _close(loss.detach(), case["loss"], atol=case["atol"])
    _close(x.grad, case["grad_x"], atol=case["grad_atol"])
    _close(y.grad, case["grad_y"], atol=case["grad_atol"])


def test_combined_alignment_loss(parity_dir):
    fx = _load(parity_dir, "align_loss")
    i = fx["inputs"]
    loss = (
        alignment_distance(i["vid_student"], i["aud_student"], "mmd")
        + alignment_distance(i["vid_teacher"], i["aud_teacher"], "mmd")
    ) / 2
    _close(loss, fx["expected_align_loss"], atol=fx["mmd_cases"][0]["atol"])


@pytest.mark.parametrize("mode", ["mean", "softmax"])
def test_teacher_refinement(parity_dir, mode):
    fx = _load(parity_dir, "align_loss")
    i, expected = fx["inputs"], fx["refinement"][mode]
    cvattn, caattn = cross_modal_attention(i["vattn"], i["aattn"], mode)
    _close(cvattn, expected["cvattn"], atol=fx["atol"], rtol=fx["rtol"])
    _close(caattn, expected["caattn"], atol=fx["atol"], rtol=fx["rtol"])
    video = refine_tokens(i["vid_teacher_tokens"], cvattn)
    audio = refine_tokens(i["aud_teacher_tokens"], caattn)
    _close(video, expected["video_feat_aligned"], atol=fx["atol"], rtol=fx["rtol"])
    _close(audio, expected["audio_feat_aligned"], atol=fx["atol"], rtol=fx["rtol"])
    _close(video.mean(dim=1), expected["video_patch_mean"], atol=fx["atol"], rtol=fx["rtol"])
    _close(audio.mean(dim=1), expected["audio_patch_mean"], atol=fx["atol"], rtol=fx["rtol"])


# -- distillation ---------------------------------------------------------------------------


def test_distillation_two_steps_with_centres(parity_dir):
    fx = _load(parity_dir, "distill_loss")
    hp = fx["hyperparams"]
    v2a = CrossModalDistillLoss(hp["out_dim"], hp["center_momentum"])
    a2v = CrossModalDistillLoss(hp["out_dim"], hp["center_momentum"])
    tol = dict(atol=fx["atol"], rtol=fx["rtol"])
    for step in fx["steps"]:
        _close(v2a.center, step["center_vt2as_before"], **tol)
        _close(a2v.center, step["center_at2vs_before"], **tol)
        aud_student = step["aud_student"].clone().requires_grad_(True)
        vid_student = step["vid_student"].clone().requires_grad_(True)
        # the released call passes the *audio* student temperature in both directions
        kd_v2a = v2a(aud_student, step["vid_teacher"], hp["student_temp"]["audio"],
                     hp["teacher_temp"]["video"], hp["num_student_views"], hp["num_teacher_views"])
        kd_a2v = a2v(vid_student, step["aud_teacher"], hp["student_temp"]["audio"],
                     hp["teacher_temp"]["audio"], hp["num_student_views"], hp["num_teacher_views"])
        cmkd = (kd_v2a + kd_a2v) / 2
        cmkd.backward()
        _close(kd_v2a.detach(), step["vt2as_kd_loss"], **tol)
        _close(kd_a2v.detach(), step["at2vs_kd_loss"], **tol)
        _close(cmkd.detach(), step["cmkd_loss"], **tol)
        _close(v2a.center, step["center_vt2as_after"], **tol)
        _close(a2v.center, step["center_at2vs_after"], **tol)
        _close(aud_student.grad, step["grad_aud_student"], **tol)
        _close(vid_student.grad, step["grad_vid_student"], **tol)


# -- reconstruction -------------------------------------------------------------------------


def test_patchify_order(parity_dir):
    fx = _load(parity_dir, "recon_loss")["patchify"]
    assert torch.equal(patchify(fx["video_in"], tuple(fx["video_patch"])), fx["video_patches"])
    assert torch.equal(patchify(fx["audio_in"], tuple(fx["audio_patch"])), fx["audio_patches"])


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_random_masking_with_stored_noise(parity_dir, modality):
    fx = _load(parity_dir, "recon_loss")["reconstruction"][modality]
    noise, tokens = fx["masking_noise"], fx["masking_tokens"]
    masks = random_masking(*noise.shape, fx["mask_ratio"], noise=noise)
    assert masks.keep_index.shape[1] == fx["len_keep"]
    index = masks.keep_index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
    assert torch.equal(torch.gather(tokens, 1, index), fx["x_masked"])
    assert torch.equal(masks.mask, fx["mask"])
    assert torch.equal(masks.ids_restore, fx["ids_restore"])


@pytest.mark.parametrize("modality", ["video", "audio"])
@pytest.mark.parametrize("norm_pix", [True, False])
def test_reconstruction_loss_and_gradient(parity_dir, modality, norm_pix):
    fx = _load(parity_dir, "recon_loss")
    rec = fx["reconstruction"][modality]
    expected = rec["cases"][f"norm_pix_loss={norm_pix}"]
    pred = rec["pred"].clone().requires_grad_(True)
    loss = masked_reconstruction_loss(pred, rec["target"], rec["mask"], norm_pix=norm_pix)
    loss.backward()
    _close(loss.detach(), expected["loss"], atol=fx["atol"], rtol=fx["rtol"])
    _close(pred.grad, expected["grad_pred"], atol=fx["atol"], rtol=fx["rtol"])
