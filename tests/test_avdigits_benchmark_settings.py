"""The video settings `benchmarks/avdigits.py` gives every method (crop scale, augmentation, pooling)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

from avssl.data.recipe_overrides import build_recipe
from avssl.demo.run import pretraining_config
from avssl.media.augment.presets import get_audio_augment, get_video_augment
from avssl.train.runner import build_method

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "avdigits.py"


@pytest.fixture(scope="module")
def avdigits_script():
    spec = importlib.util.spec_from_file_location("avdigits_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(avdigits_script, method: str, tmp_path: Path, augment: str, pool: str):
    cfg = pretraining_config(method, tmp_path / "train.csv", tmp_path / "run", progress=False)
    args = argparse.Namespace(crop_scale=0.4, video_augment=augment, video_pool=pool)
    avdigits_script.apply_benchmark_video_settings(cfg, args)
    return cfg


def _augmented_grey_clips(name: str, overrides) -> torch.Tensor:
    """Four uniform grey clips through a recipe's video pipeline: crops and flips keep them uniform."""
    pipeline = get_video_augment(name, **dict(overrides))
    return pipeline(torch.full((4, 3, 8, 72, 72), 0.5), torch.Generator().manual_seed(0))


def _spread_per_channel(clips: torch.Tensor) -> float:
    per_channel = clips.transpose(0, 1).flatten(1)  # [3, everything else]
    return float((per_channel.amax(dim=1) - per_channel.amin(dim=1)).max())


@pytest.mark.parametrize("method", ["xid", "xkd"])
def test_crops_setting_leaves_only_crops_and_flips(avdigits_script, tmp_path, method):
    recipe = build_recipe(_config(avdigits_script, method, tmp_path, "crops", "avg").data)
    assert dict(recipe.video_augment_overrides)["scale"] == (0.4, 1.0)
    pipelines = [(recipe.video_augment, recipe.video_augment_overrides)]
    if recipe.local_video_augment is not None:
        pipelines.append((recipe.local_video_augment, recipe.local_video_augment_overrides))
    for name, overrides in pipelines:
        clips = _augmented_grey_clips(name, overrides)
        assert clips.shape[:3] == (4, 3, 8)
        assert _spread_per_channel(clips) < 1e-5, f"{name}: a uniform clip changed colour"


def test_method_setting_keeps_the_colour_augmentation(avdigits_script, tmp_path):
    recipe = build_recipe(_config(avdigits_script, "xid", tmp_path, "method", "method").data)
    clips = _augmented_grey_clips(recipe.video_augment, recipe.video_augment_overrides)
    assert _spread_per_channel(clips) > 0.05  # brightness/contrast jitter differ between the clips


@pytest.mark.parametrize(
    ("pool", "expected"), [("avg", torch.nn.AdaptiveAvgPool3d), ("max", torch.nn.AdaptiveMaxPool3d)]
)
def test_video_pool_setting_reaches_the_small_encoder(avdigits_script, tmp_path, pool, expected):
    cfg = _config(avdigits_script, "xid", tmp_path, "crops", pool)
    method = build_method(cfg.method, num_items=2500)  # the AV-Digits training split
    pools = [module for name, module in method.named_modules() if name.endswith("video_encoder.pool")]
    assert len(pools) == 1 and isinstance(pools[0], expected)


def test_learning_rate_overrides_parse_and_bad_ones_are_refused(avdigits_script):
    assert avdigits_script.parse_learning_rates("xid=3e-3, vicreg=0.001") == {"xid": 0.003, "vicreg": 0.001}
    assert avdigits_script.parse_learning_rates("") == {}
    for bad in ("xid", "xid=", "xid=-1", "=1e-3", "xid=fast"):
        with pytest.raises(argparse.ArgumentTypeError, match="method=positive_number"):
            avdigits_script.parse_learning_rates(bad)


def test_rerun_command_repeats_flags_and_overrides(avdigits_script):
    args = argparse.Namespace(out=Path("o"), mnist=Path("m"), fsdd=Path("f"), methods="xid", minutes=3.0,
                              lr={"xid": 0.003}, no_supervised=True, video_pool="avg")
    assert avdigits_script.rerun_command(args) == (
        "python benchmarks/avdigits.py --methods xid --minutes 3.0 --lr xid=0.003 --no-supervised --video-pool avg")
    args.no_supervised, args.lr = False, {}
    assert "--no-supervised" not in avdigits_script.rerun_command(args)
    assert "--lr" not in avdigits_script.rerun_command(args)


def test_corpus_changes_parse_literals_reach_the_config_and_rerun(avdigits_script):
    changes = [avdigits_script.parse_corpus_field("background_colour=(0.0, 0.35)"),
               avdigits_script.parse_corpus_field(" digit_colour = [0.65, 1.0] ")]
    args = argparse.Namespace(seed=3, test_speakers="george,jackson", corpus=changes)
    config = avdigits_script.corpus_config(args)
    assert (config.seed, config.test_speakers) == (3, ("george", "jackson"))
    assert (config.background_colour, config.digit_colour) == ((0.0, 0.35), (0.65, 1.0))
    assert config.snr_db == avdigits_script.AVDigitsConfig().snr_db  # the rest stays at the defaults
    for bad in ("digit_colour", "digit_colour=light", "=(0, 1)"):
        with pytest.raises(argparse.ArgumentTypeError):
            avdigits_script.parse_corpus_field(bad)
    args.corpus = [("colour", 1)]
    with pytest.raises(SystemExit, match=r"--corpus: .*unknown fields \['colour'\]"):
        avdigits_script.corpus_config(args)
    rerun = argparse.Namespace(methods="xid", corpus=changes)
    assert avdigits_script.rerun_command(rerun) == (
        'python benchmarks/avdigits.py --methods xid --corpus "background_colour=(0.0, 0.35)" '
        '--corpus "digit_colour=[0.65, 1.0]"')


def test_shared_signal_is_nan_without_audio_and_scored_with_both(avdigits_script):
    import numpy as np

    from avssl.evaluate.frozen_suite import FrozenFeatures

    labels = np.repeat(np.arange(4), 40)
    video = torch.nn.functional.one_hot(torch.from_numpy(labels), 4).float() + 0.1 * torch.randn(160, 4)
    train = np.arange(160) % 4 != 0
    video_only = FrozenFeatures({"video": video}, {}, labels, train, np.arange(160))
    scores = avdigits_script.shared_signal(video_only)
    assert set(scores) == set(avdigits_script.SHARED_KEYS) and all(v != v for v in scores.values())
    both = FrozenFeatures({"video": video, "audio": video.flip(1) + 0.1 * torch.randn(160, 4)}, {}, labels, train,
                          np.arange(160))
    scores = avdigits_script.shared_signal(both)
    assert set(avdigits_script.SHARED_KEYS) <= set(scores) and scores["av_cc1"] > 0.9 > scores["av_cc1_null"]


def test_probe_gains_are_measured_against_the_methods_own_random_init(avdigits_script):
    trained = {"video_probe": 20.0, "audio_probe": 46.0}
    own_random = {"video_probe": 13.8, "audio_probe": 39.2}
    gains = avdigits_script.probe_gains(trained, own_random)
    assert gains == pytest.approx({"video_gain": 6.2, "audio_gain": 6.8})
    video_only = avdigits_script.probe_gains({"video_probe": 12.0, "audio_probe": float("nan")},
                                             {"video_probe": 10.0, "audio_probe": float("nan")})
    assert video_only["video_gain"] == pytest.approx(2.0) and video_only["audio_gain"] != video_only["audio_gain"]


def test_method_kwargs_parse_literals_and_strings_and_refuse_bad_items(avdigits_script):
    parsed = avdigits_script.parse_method_kwargs("xid.loss=infonce, xdc.num_clusters_audio=20,xid.temperature=0.1")
    assert parsed == {"xid": {"loss": "infonce", "temperature": 0.1}, "xdc": {"num_clusters_audio": 20}}
    for bad in ("xid=infonce", "loss=infonce", "xid.loss=", ".loss=1", "xid.=1"):
        with pytest.raises(argparse.ArgumentTypeError, match="method.key=value"):
            avdigits_script.parse_method_kwargs(bad)
    args = argparse.Namespace(methods="xid", method_kwargs=parsed, lr={})
    assert avdigits_script.rerun_command(args) == (
        "python benchmarks/avdigits.py --methods xid "
        "--method-kwargs xid.loss=infonce,xid.temperature=0.1,xdc.num_clusters_audio=20")


def test_contrastive_check_loss_is_ln_batch_without_pairing_and_falls_with_it():
    spec = importlib.util.spec_from_file_location("avdigits_contrastive_check", SCRIPT.with_name("avdigits_contrastive_check.py"))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    batch = 8
    same = torch.nn.functional.normalize(torch.ones(batch, 4), dim=1)  # every clip alike: nothing to pair by
    assert float(check.symmetric_infonce(same, same, 0.1)) == pytest.approx(torch.log(torch.tensor(8.0)).item())
    paired = torch.eye(batch)  # each clip's two sides equal and unlike the others
    assert float(check.symmetric_infonce(paired, paired, 0.1)) < 0.01
    assert check.pairing_r1(paired, paired) == 1.0
    assert check.pairing_r1(paired, paired.roll(1, dims=0)) == 0.0
    assert set(check.PAIRINGS) == {"av", "vv", "aa"}


def test_random_features_views_take_the_colour_out_and_keep_the_ink():
    spec = importlib.util.spec_from_file_location("avdigits_random_features",
                                                  SCRIPT.with_name("avdigits_random_features.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    encoder = script.random_video_encoder(64, "avg", "ink", seed=0)
    mean, std = encoder.mean, encoder.std
    # Two clips [3, T, H, W]: the same ink stroke on backgrounds and in colours of their own.
    stroke = torch.zeros(1, 1, 4, 16, 16)
    stroke[..., 4:12, 7:9] = 1.0
    background = torch.tensor([[0.2, 0.5, 0.8], [0.7, 0.3, 0.4]]).view(2, 3, 1, 1, 1)
    ink_colour = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.2]]).view(2, 3, 1, 1, 1)
    rgb = background + stroke * (ink_colour - background)
    ink = encoder.single_channel((rgb - mean) / std)
    assert ink.shape == (2, 1, 4, 16, 16)
    assert torch.all(ink[..., 4:12, 7:9] > 0.5) and torch.all(ink[stroke.expand(2, 1, 4, 16, 16) == 0] < 1e-6)
    grey = script.random_video_encoder(64, "avg", "grey", seed=0).single_channel((rgb - mean) / std)
    assert torch.allclose(grey[:, 0], rgb.mean(1), atol=1e-6)
    assert encoder((rgb - mean) / std).shape == (2, 64)
    # The same seed and width give the same random trunk whatever the view.
    colour = script.random_video_encoder(64, "avg", "colour", seed=0)
    assert all(torch.equal(a, b) for a, b in zip(colour.encoder.parameters(), encoder.encoder.parameters()))
    with pytest.raises(ValueError, match="view must be one of"):
        script.InputView(colour.encoder, "sepia")


def test_audio_augment_changes_parse_reach_every_audio_view_and_rerun(avdigits_script, tmp_path):
    parsed = avdigits_script.parse_audio_augment("freq_masks=2, resize_crop=True, resize_crop_scale=(0.8, 1.2)")
    assert parsed == {"freq_masks": 2, "resize_crop": True, "resize_crop_scale": (0.8, 1.2)}
    for bad in ("freq_masks", "=2", "freq_masks="):
        with pytest.raises(argparse.ArgumentTypeError, match="key=value"):
            avdigits_script.parse_audio_augment(bad)
    args = argparse.Namespace(audio_augment=parsed)
    for method in ("xdc", "vicreg_video"):
        cfg = pretraining_config(method, tmp_path / "train.csv", tmp_path / method, progress=False)
        avdigits_script.apply_benchmark_audio_settings(cfg, args)
        recipe = build_recipe(cfg.data)
        if recipe.audio is None:  # VICReg-V has no sound: nothing to change, and no error
            assert cfg.data.audio_augment_overrides == {}
            continue
        overrides = dict(recipe.audio.augment_overrides)
        assert overrides["freq_masks"] == 2 and overrides["resize_crop_scale"] == (0.8, 1.2)
        pipeline = get_audio_augment(recipe.audio.augment, **overrides)
        steps = [type(step).__name__ for step in pipeline.spectrogram.transforms]
        assert steps == ["FrequencyMask", "SpectrogramRandomResizeCrop"]
    rerun = argparse.Namespace(methods="xdc", audio_augment=parsed)
    assert avdigits_script.rerun_command(rerun) == (
        'python benchmarks/avdigits.py --methods xdc '
        '--audio-augment "freq_masks=2,resize_crop=True,resize_crop_scale=(0.8, 1.2)"')


def test_random_initialisation_leaves_out_the_weights_a_method_starts_from(avdigits_script, tmp_path):
    xid_cfg = pretraining_config("xid", tmp_path / "train.csv", tmp_path / "xid", progress=False)
    torch.manual_seed(3)
    xid = build_method(xid_cfg.method, 300)
    torch.save(xid.state_dict(), tmp_path / "xid.pt")
    cma_cfg = pretraining_config("avid_cma", tmp_path / "train.csv", tmp_path / "cma", progress=False)
    cma_cfg.method.kwargs["init_from"] = str(tmp_path / "xid.pt")

    def first_video_weight(model) -> torch.Tensor:
        return next(model.video_encoder.parameters())

    started = build_method(cma_cfg.method, 300)
    assert torch.equal(first_video_weight(started), first_video_weight(xid))
    untrained = avdigits_script.random_initialisation(cma_cfg.method, 300, seed=1)
    assert not torch.allclose(first_video_weight(untrained), first_video_weight(xid))
    assert cma_cfg.method.kwargs["init_from"] == str(tmp_path / "xid.pt")  # the run's own config is untouched
    again = avdigits_script.random_initialisation(cma_cfg.method, 300, seed=1)
    assert torch.equal(first_video_weight(again), first_video_weight(untrained))
