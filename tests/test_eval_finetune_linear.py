"""Fine-tuning, linear probes, few-shot and seen/unseen runs (spec §2.7, §3A.7, §3B.7, §4.6).

Part 1 checks the pieces on tensors (optimiser groups, schedules, heads, Mixup/CutMix, few-shot
draws, BatchNorm modes). Part 2 runs every protocol kind end to end on real media from
shared/data laid out as a UCF101-format benchmark, with the small CPU encoders.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from avssl.evaluate.classifier_loop import LoopSettings, fit_classifier, predict_clips, score_predictions
from avssl.evaluate.fewshot import few_shot_rows, ratio_key
from avssl.evaluate.heads import AVID_LAYER_PROBES, ClassifierHead, EncoderClassifier, ProbeSpec
from avssl.evaluate.mixup import MixupCutmix, smoothed_one_hot, soft_target_cross_entropy
from avssl.evaluate.optim import OptimConfig, build_optimizer, build_scheduler, lr_schedule, parameter_groups
from avssl.models.registry import create_encoder

# -- part 1: pieces --------------------------------------------------------------------------------


def test_layer_wise_lr_decay_and_weight_decay_exclusions():
    encoder = create_encoder("vit_small_video")  # depth 3
    head = nn.Linear(encoder.out_dim, 5)
    config = OptimConfig("adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    groups = parameter_groups(encoder, head.parameters(), config)
    where = {id(p): g for g in groups for p in g["params"]}
    params = dict(encoder.named_parameters())
    depth = len(encoder.blocks)
    # scale = decay ** (depth + 1 - layer): embeddings layer 0, block i layer i + 1, the rest depth + 1
    expected_scale = {
        "cls_token": 0.5 ** (depth + 1), "pos_embed": 0.5 ** (depth + 1), "patch_embed.proj.weight": 0.5 ** (depth + 1),
        "blocks.0.attn.qkv.weight": 0.5**depth, "blocks.2.mlp.fc1.weight": 0.5**1, "norm.weight": 1.0,
    }
    for name, scale in expected_scale.items():
        group = where[id(params[name])]
        assert group["lr"] == pytest.approx(1e-3 * scale), name
    for name in ("cls_token", "pos_embed", "norm.weight", "blocks.1.attn.proj.bias", "patch_embed.proj.bias"):
        assert where[id(params[name])]["weight_decay"] == 0.0, name
    for name in ("blocks.0.attn.qkv.weight", "patch_embed.proj.weight"):
        assert where[id(params[name])]["weight_decay"] == 0.05, name
    assert where[id(head.weight)]["lr"] == pytest.approx(1e-3) and where[id(head.weight)]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == len(params) + 2


def test_cnn_groups_have_no_layer_decay():
    encoder = create_encoder("r2plus1d_small")
    groups = parameter_groups(encoder, [], OptimConfig("sgd", lr=0.1, layer_decay=0.5))
    assert {g["lr"] for g in groups} == {0.1}


def test_multistep_schedule_steps_per_epoch():
    config = OptimConfig("adam", lr=1e-4, schedule="multistep", gamma=0.3, milestones=(6, 10, 14))
    steps_per_epoch = 4
    factor = lr_schedule(config, steps_per_epoch, 16)
    for epoch in range(16):
        expected = 0.3 ** sum(epoch >= m for m in (6, 10, 14))
        for within in range(steps_per_epoch):
            assert factor(epoch * steps_per_epoch + within) == pytest.approx(expected)


def test_warmup_cosine_schedule_drives_the_optimizer():
    config = OptimConfig("adamw", lr=5e-4, schedule="cosine", warmup_epochs=2, min_lr=1e-6)
    steps_per_epoch, epochs = 5, 10
    weight = nn.Parameter(torch.zeros(3))
    optimizer = build_optimizer([{"params": [weight], "lr": config.lr, "weight_decay": 0.0}], config)
    scheduler = build_scheduler(optimizer, steps_per_epoch, epochs, config)
    warmup, total = 2 * steps_per_epoch, epochs * steps_per_epoch
    for step in range(total):
        if step < warmup:
            expected = 5e-4 * step / warmup
        else:
            progress = (step - warmup) / (total - warmup)
            expected = 1e-6 + (5e-4 - 1e-6) * 0.5 * (1 + math.cos(math.pi * progress))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-9, abs=1e-15), step
        optimizer.step()
        scheduler.step()


def test_optim_config_rejects_bad_fields():
    with pytest.raises(ValueError, match="unknown field"):
        OptimConfig.from_mapping({"optimizer": "adam", "learning_rate": 0.1}, "preset.yaml: params.optim")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        OptimConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="milestones must be increasing"):
        OptimConfig(milestones=(10, 5))


def test_classifier_head_initialisations():
    torch.manual_seed(0)
    head = ClassifierHead(512, 101, dropout=0.5, init="orthogonal")
    w = head.fc.weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(101), atol=1e-5, rtol=0)  # orthonormal rows
    assert torch.count_nonzero(head.fc.bias) == 0 and isinstance(head.dropout, nn.Dropout)
    normal = ClassifierHead(768, 400, init="normal").fc.weight.detach()
    assert normal.std().item() == pytest.approx(0.01, rel=0.02) and abs(normal.mean().item()) < 1e-3
    with pytest.raises(ValueError, match="init must be"):
        ClassifierHead(4, 2, init="xavier")


def test_avid_layer_probe_widths():
    encoder = create_encoder("r2plus1d_small")
    model = EncoderClassifier(encoder, AVID_LAYER_PROBES, num_classes=7, example_input=torch.zeros(2, 3, 8, 64, 64))
    channels = {"conv2x": 16, "conv3x": 32, "conv4x": 64, "conv5x": 128}  # r2plus1d_small stage widths
    for name, probe in model.probes.items():
        pool = AVID_LAYER_PROBES[name].pool_size
        assert probe.head.fc.in_features == channels[name] * math.prod(pool), name
        assert isinstance(probe.norm, nn.BatchNorm1d)
    out = model(torch.randn(3, 3, 8, 64, 64))
    assert set(out) == set(AVID_LAYER_PROBES) and all(v.shape == (3, 7) for v in out.values())


def test_mixup_and_cutmix_targets_match_the_mixed_inputs():
    x = torch.stack([torch.full((3, 2, 8, 8), float(i)) for i in range(4)])  # clip i is constant i
    labels = torch.tensor([0, 1, 2, 3])
    generator = torch.Generator().manual_seed(0)
    mixup = MixupCutmix(num_classes=4, mixup_alpha=0.6, cutmix_alpha=0.0, label_smoothing=0.1)
    mixed, targets = mixup(x, labels, generator)
    # clip 0 = lam·0 + (1 − lam)·3 → lam from the pixels; targets must carry the same lam
    lam = 1 - mixed[0, 0, 0, 0, 0].item() / 3
    smooth = smoothed_one_hot(labels, 4, 0.1)
    torch.testing.assert_close(targets, lam * smooth + (1 - lam) * smooth.flip(0))
    torch.testing.assert_close(targets.sum(1), torch.ones(4))

    cutmix = MixupCutmix(num_classes=4, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    for seed in range(5):
        mixed, targets = cutmix(x, labels, torch.Generator().manual_seed(seed))
        pasted = (mixed[0] == 3).float().mean().item()  # fraction of clip 0 taken from clip 3
        assert targets[0, 3].item() == pytest.approx(pasted, abs=1e-6)
        assert targets[0, 0].item() == pytest.approx(1 - pasted, abs=1e-6)
    loss = soft_target_cross_entropy(torch.zeros(4, 4), targets)
    assert loss.item() == pytest.approx(math.log(4))


def test_few_shot_rows_keeps_max_floor_or_one_per_class():
    rows = list(range(100, 160))
    labels = [0] * 30 + [1] * 20 + [2] * 7 + [3] * 3
    counts = {0: 30, 1: 20, 2: 7, 3: 3}
    for ratio in (0.05, 0.1, 0.2, 0.5):
        kept = few_shot_rows(rows, labels, ratio)
        assert kept == sorted(kept) and set(kept) <= set(rows)
        per_class = np.bincount([labels[rows.index(r)] for r in kept], minlength=4)
        assert per_class.tolist() == [max(math.floor(ratio * counts[c]), 1) for c in range(4)], ratio
        assert few_shot_rows(rows, labels, ratio) == kept  # seed 42: reproducible
    assert few_shot_rows(rows, labels, 1.0) == rows
    assert few_shot_rows(rows, labels, 0.5, seed=1) != few_shot_rows(rows, labels, 0.5, seed=42)
    assert [ratio_key(r) for r in (0.05, 0.1, 0.2, 0.5, 1.0)] == ["r5", "r10", "r20", "r50", "r100"]
    with pytest.raises(ValueError, match="ratio must lie"):
        few_shot_rows(rows, labels, 0.0)


TOY_EXAMPLE = torch.zeros(2, 3, 4, 16, 16)


def _toy_batches(num_batches: int = 2, batch: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    # Two classes a frozen random encoder separates easily: bright clips vs dark clips.
    g = torch.Generator().manual_seed(seed)
    out = []
    for b in range(num_batches):
        labels = torch.arange(batch) % 2
        clips = torch.randn(batch, 3, 4, 16, 16, generator=g) * 0.1 + (labels.float() * 2 - 1).view(-1, 1, 1, 1, 1)
        out.append({"video": clips, "label": labels, "video_index": torch.arange(batch) + b * batch})
    return out


def _parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def _running_stats(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_buffers() if "running_" in k}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("train_encoder", "bn_train_mode", "weights_change", "bn_stats_change"),
    [(False, False, False, False), (False, True, False, True), (True, False, True, True)],
)
def test_batchnorm_and_weight_behaviour(train_encoder, bn_train_mode, weights_change, bn_stats_change):
    torch.manual_seed(0)
    encoder = create_encoder("r2plus1d_small")
    model = EncoderClassifier(encoder, {"head": ProbeSpec("pool")}, 2, TOY_EXAMPLE)
    weights, stats = _parameters(encoder), _running_stats(encoder)
    fit_classifier(model, _toy_batches(), OptimConfig("adam", lr=1e-3), 1, LoopSettings("video"),
                   train_encoder=train_encoder, bn_train_mode=bn_train_mode)
    assert _changed(weights, _parameters(encoder)) == weights_change  # convolutions and BN affine
    assert _changed(stats, _running_stats(encoder)) == bn_stats_change
    assert all(p.requires_grad == train_encoder for p in encoder.parameters())


def test_head_warmup_trains_only_the_head_first():
    torch.manual_seed(0)
    encoder = create_encoder("r2plus1d_small")
    model = EncoderClassifier(encoder, {"head": ProbeSpec("pool", dropout=0.5)}, 2, TOY_EXAMPLE)
    weights = _parameters(encoder)
    history = fit_classifier(model, _toy_batches(), OptimConfig("adam", lr=1e-3), 1, LoopSettings("video"),
                             train_encoder=True, warmup_head_epochs=2)
    assert len(history.warmup_losses) == 2 and len(history.losses) == 1
    assert _changed(weights, _parameters(encoder))  # the main phase fine-tunes


def test_linear_probe_learns_a_separable_task():
    torch.manual_seed(0)
    encoder = create_encoder("r2plus1d_small")
    model = EncoderClassifier(encoder, {"head": ProbeSpec("pool")}, 2, TOY_EXAMPLE)
    history = fit_classifier(model, _toy_batches(), OptimConfig("adam", lr=1e-2), 4, LoopSettings("video"),
                             train_encoder=False)
    assert history.losses[-1] < history.losses[0]
    scores = score_predictions(predict_clips(model, _toy_batches(seed=1), LoopSettings("video")), False)
    assert scores["clip_top1"] == 100.0 and scores["video_top1"] == 100.0


def test_bf16_autocast_runs_on_cpu():
    torch.manual_seed(0)
    encoder = create_encoder("r2plus1d_small")
    model = EncoderClassifier(encoder, {"head": ProbeSpec("pool")}, 2, TOY_EXAMPLE)
    history = fit_classifier(model, _toy_batches(1, batch=2), OptimConfig("adam", lr=1e-3), 1,
                             LoopSettings("video", precision="bf16"), train_encoder=True)
    assert math.isfinite(history.losses[0])
    predictions = predict_clips(model, _toy_batches(1, batch=2), LoopSettings("video", precision="bf16"))
    assert predictions.logits["head"].dtype == np.float32


# -- part 2: protocols end to end on real media ----------------------------------------------------

# VAS clips (real YouTube video with sound) as a UCF101-format benchmark: 7 training entries (dog and
# drum twice, the second a link to the same file under another name), one test video for three classes.
VAS_TRAIN = {
    "baby": ["baby/video_01951.mp4"],
    "cough": ["cough/video_00331.mp4"],
    "dog": ["dog/video_02677.mp4"] * 2,
    "drum": ["drum/video_02480.mp4"] * 2,
    "fireworks": ["fireworks/video_02997.mp4"],
}
VAS_TEST = {"dog": "dog/video_02754.mp4", "drum": "drum/video_02542.mp4", "fireworks": "fireworks/video_03051.mp4"}
CLASSES = list(VAS_TRAIN)


@pytest.fixture(scope="module")
def ucf_layout(shared_data, tmp_path_factory):
    """``ROOT/UCF-101/<class>/<file>`` links + ``ROOT/ucfTrainTestlist`` with split 1."""
    root = tmp_path_factory.mktemp("ucf_vas")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CLASSES, 1)))
    train_lines, test_lines = [], []
    for c, files in VAS_TRAIN.items():
        for k, source in enumerate(files):
            name = f"{c}/v_{c}_g{k + 1:02d}_c01.mp4"
            (root / "UCF-101" / c).mkdir(parents=True, exist_ok=True)
            (root / "UCF-101" / name).symlink_to(shared_data / "vas" / source)
            train_lines.append(f"{name} {CLASSES.index(c) + 1}\n")
    for c, source in VAS_TEST.items():
        name = f"{c}/v_{c}_g09_c01.mp4"
        (root / "UCF-101" / name).symlink_to(shared_data / "vas" / source)
        test_lines.append(f"{name}\n")
    (lists / "trainlist01.txt").write_text("".join(train_lines))
    (lists / "testlist01.txt").write_text("".join(test_lines))
    return root


def _context(root, encoder: str):
    from avssl.evaluate.protocols import EncoderChoice, EvaluationContext

    return EvaluationContext([EncoderChoice(encoder)], data_root=root, folds=[1], batch_size=32, progress=False)


# Small clips for the CPU: 8 frames at 16 fps decoded at short side 73 and cropped to 64².
SMALL_VIDEO = {
    "clip.decode_short_side": 73, "train.transform_overrides": {"size": 64}, "test.transform_overrides": {"size": 64},
    "repeats": 1, "batch_size": 5, "epochs": 1,
}


def _is_multiple(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


def test_every_preset_of_these_kinds_parses_and_builds_its_transforms():
    from avssl.evaluate.classifier_run import CONCEPT_PARAMS, SWEEP_PARAMS, ClassifierParams
    from avssl.evaluate.protocols import list_protocols, load_protocol
    from avssl.media.augment import get_audio_augment, get_video_augment

    kinds = {"finetune": 0, "linear": 0, "fewshot": 0, "concepts": 0}
    for name in list_protocols():
        preset = load_protocol(name)
        if preset.kind not in kinds:
            continue
        kinds[preset.kind] += 1
        extra = {"fewshot": SWEEP_PARAMS, "concepts": CONCEPT_PARAMS}.get(preset.kind, ())
        params = ClassifierParams.from_params(preset.params, name, extra)
        for mode in (params.train, params.test):
            transform = mode.get("transform")
            if transform and params.modality == "video":
                get_video_augment(transform, **mode.get("transform_overrides", {}))
            elif transform:
                get_audio_augment(transform, **mode.get("transform_overrides", {}))
    assert all(count >= 2 for count in kinds.values()), kinds
    with pytest.raises(ValueError, match="unknown params"):  # a linear preset takes no few-shot ratios
        ClassifierParams.from_params({**load_protocol("ucf101/avssrl_linear").params, "few_shot_ratios": [0.5]}, "x")


def test_avid_finetune_protocol_end_to_end(ucf_layout, tmp_path):
    from avssl.evaluate.protocols import load_protocol, run_protocol
    from avssl.evaluate.report import write_report

    preset = load_protocol("ucf101/avid_finetune_8f").with_overrides(
        {**SMALL_VIDEO, "test.clips": 2, "clip_level_clips": 3, "warmup_head_epochs": 1}
    )
    result = run_protocol(preset, _context(ucf_layout, "r2plus1d_small"))
    (fold,) = result.folds
    m = fold.metrics
    assert set(m) == {"clip_top1", "clip_top5", "video_top1", "video_top5"}
    assert _is_multiple(m["video_top1"], 100 / 3)  # 3 test videos
    assert _is_multiple(m["clip_top1"], 100 / 9)  # the clip-level pass: 3 videos × 3 clips
    assert m["video_top5"] == 100.0  # 5 classes
    assert fold.extras["num_train_files"] == 7 and fold.extras["num_classes"] == 5
    assert len(fold.extras["warmup_loss"]) == 1 and len(fold.extras["train_loss"]) == 1
    assert fold.extras["failed_files"] == {}
    json_path, md_path = write_report(result, tmp_path)
    assert "ucf101/avid_finetune_8f" in md_path.read_text() and json_path.is_file()


def test_xkd_finetune_vit_with_mixup_and_three_crops(ucf_layout):
    from avssl.evaluate.protocols import load_protocol, run_protocol

    preset = load_protocol("ucf101/xkd_finetune").with_overrides({
        "clip.frames": 8, "clip.decode_short_side": 73, "train.transform_overrides.size": 64,
        "test.clips": 2, "test.transform_overrides": {"size": 64, "resize": 64},
        "batch_size": 5, "epochs": 1, "optim.warmup_epochs": 0.5,
    })
    (fold,) = run_protocol(preset, _context(ucf_layout, "vit_small_video")).folds
    assert _is_multiple(fold.metrics["clip_top1"], 100 / 18)  # 3 videos × 2 clips × 3 crops, each scored
    assert _is_multiple(fold.metrics["video_top1"], 100 / 3)
    assert all(math.isfinite(v) for v in fold.extras["train_loss"])


def test_linear_layer_probes_with_batchnorm_in_train_mode(ucf_layout):
    from avssl.data.benchmarks import load_benchmark
    from avssl.evaluate.classifier_run import ClassifierParams, RunSettings
    from avssl.evaluate.linear import linear_probe

    data = load_benchmark("ucf101", ucf_layout)
    params = ClassifierParams.from_params({
        "modality": "video", "clip": {"decode_short_side": 73},
        "train": {"transform": "avid_pretrain_video", "transform_overrides": {"jitter": [0, 0, 0, 0]}},
        "test": {"clips": 2, "transform": "eval_video"},
        "probes": {name: {"feature": s.feature, "pool_size": list(s.pool_size), "batch_norm": True}
                   for name, s in AVID_LAYER_PROBES.items()},
        "bn_train_mode": True, "batch_size": 5, "epochs": 1,
        "optim": {"optimizer": "adam", "lr": 1e-4, "schedule": "multistep", "gamma": 0.1, "milestones": [6, 9]},
    }, "test")
    torch.manual_seed(0)
    encoder = create_encoder("r2plus1d_small")
    weights, stats = _parameters(encoder), _running_stats(encoder)
    metrics, extras = linear_probe(encoder, data, 1, params, RunSettings(seed=3))
    assert set(metrics) == {f"{layer}/{m}" for layer in AVID_LAYER_PROBES
                            for m in ("clip_top1", "clip_top5", "video_top1", "video_top5")}
    assert not _changed(weights, _parameters(encoder))  # frozen weights ...
    assert _changed(stats, _running_stats(encoder))  # ... but BN statistics re-estimated (AVID quirk)


def test_audio_finetune_on_real_soundtracks(ucf_layout):
    from avssl.data.benchmarks import load_benchmark
    from avssl.evaluate.classifier_run import ClassifierParams
    from avssl.evaluate.finetune import finetune

    data = load_benchmark("ucf101", ucf_layout)
    params = ClassifierParams.from_params({
        "modality": "audio", "clip": {"seconds": 1.0, "sample_rate": 16000, "spectrogram": "crisscross"},
        "train": {"transform": "crisscross_pretrain_audio"}, "test": {"clips": 2},
        "probes": {"head": {"feature": "pool", "init": "normal"}}, "batch_size": 5, "epochs": 1,
        "optim": {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.005, "schedule": "constant"},
    }, "test")
    encoder = create_encoder("audio_resnet_small")
    weights = _parameters(encoder)
    metrics, extras = finetune(encoder, data, 1, params)
    assert _is_multiple(metrics["clip_top1"], 100 / 6) and _is_multiple(metrics["video_top1"], 100 / 3)
    assert _changed(weights, _parameters(encoder))


def test_fewshot_protocol_subsamples_training_videos(ucf_layout):
    from avssl.evaluate.protocols import load_protocol, run_protocol

    preset = load_protocol("ucf101/avssl-v1_fewshot").with_overrides(
        {**SMALL_VIDEO, "test.clips": 2, "few_shot_ratios": [0.5, 1.0]}
    )
    (fold,) = run_protocol(preset, _context(ucf_layout, "r2plus1d_small")).folds
    assert {k.split("/")[0] for k in fold.metrics} == {"r50", "r100"}
    # max(⌊0.5 · n⌋, 1) = 1 training video of each of the 5 classes (n = 1 or 2)
    assert fold.extras["r50"]["train_files"] == 5 and fold.extras["r100"]["train_files"] == 7


def test_concepts_protocol_trains_seen_and_unseen_heads(ucf_layout, tmp_path):
    from avssl.evaluate.protocols import load_protocol, run_protocol

    split = tmp_path / "split"
    split.mkdir()
    (split / "seen.txt").write_text("dog\ndrum\n")
    (split / "unseen.txt").write_text("baby\ncough\nfireworks\n")
    preset = load_protocol("ucf101/avssrl_concepts").with_overrides(
        {**SMALL_VIDEO, "test.clips": 2, "clip_level_clips": 2, "few_shot_ratios": [1.0],
         "concepts.split_dir": str(split)}
    )
    (fold,) = run_protocol(preset, _context(ucf_layout, "r2plus1d_small")).folds
    assert {k.rsplit("/", 1)[0] for k in fold.metrics} == {"seen/r100", "unseen/r100"}
    assert fold.extras["seen"] == ["dog", "drum"] and fold.extras["unseen"] == ["baby", "cough", "fireworks"]
    assert fold.extras["seen_runs"]["seen/r100"]["train_files"] == 4  # dog ×2, drum ×2
    assert fold.extras["unseen_runs"]["unseen/r100"]["train_files"] == 3
    # seen test videos: dog and drum (2 classes, top-5 is certain); unseen: fireworks only
    assert fold.metrics["seen/r100/video_top5"] == 100.0
    assert _is_multiple(fold.metrics["seen/r100/video_top1"], 50.0)
    assert fold.metrics["unseen/r100/video_top1"] in (0.0, 100.0)
