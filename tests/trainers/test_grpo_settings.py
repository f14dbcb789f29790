"""The GRPOConfig allow-list (rft.trainers.grpo_settings): every setting the project's configs, recipes and
tests change is supported; anything else is refused in one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from trl import GRPOConfig

from rft.config import load_config
from rft.errors import RunSetupError
from rft.trainers.grpo_settings import (
    OVERRIDE_SETTINGS,
    TRAINER_SETTINGS,
    TRL_SETTINGS,
    UnsupportedSetting,
    changed_settings,
    check_arguments,
)
from rft.trainers.grpo_setup import class_balanced_order, training_arguments

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RUN_CONFIGS = sorted([*CONFIGS.glob("*.yaml"), *(CONFIGS / "experiments").rglob("*.yaml")])


def cpu_arguments(tmp_path: Path, **settings) -> GRPOConfig:
    return GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **settings)


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_run_config_is_supported(path: Path, tmp_path: Path) -> None:
    config = load_config(path)
    args = training_arguments(
        config.grpo, output_dir=tmp_path, seed=config.run.seed, gradient_accumulation_steps=1
    )
    check_arguments(args)


def test_only_changed_settings_are_checked(tmp_path: Path) -> None:
    changed = changed_settings(cpu_arguments(tmp_path, beta=0.04))
    assert changed["beta"] == 0.04 and "epsilon" not in changed and "top_k" not in changed


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"use_liger_kernel": True}, "use_liger_kernel=True is not a setting EpisodeGRPOTrainer supports"),
        ({"top_k": 5}, "top_k, min_p and repetition_penalty are not passed to the rollout server"),
        ({"vllm_mode": "server"}, "vllm_mode='server' is not a setting"),
        ({"remove_unused_columns": True}, "remove_unused_columns must be False"),
        ({"use_vllm": True}, "use_vllm must be False"),
    ],
)
def test_an_unsupported_setting_is_refused_by_name(tmp_path: Path, settings: dict, named: str) -> None:
    args = cpu_arguments(tmp_path, **settings)
    with pytest.raises(UnsupportedSetting, match=named) as refused:
        check_arguments(args)
    assert "\n" not in str(refused.value)


def test_several_refusals_make_one_line(tmp_path: Path) -> None:
    args = cpu_arguments(tmp_path, top_k=5, min_p=0.1, torch_compile=True)
    with pytest.raises(UnsupportedSetting) as refused:
        check_arguments(args)
    message = str(refused.value)
    assert "\n" not in message and "torch_compile=True" in message
    assert message.count("top_k, min_p and repetition_penalty") == 1


def test_each_setting_is_supported_for_one_reason() -> None:
    assert not TRAINER_SETTINGS & TRL_SETTINGS
    assert not TRAINER_SETTINGS & OVERRIDE_SETTINGS
    assert not TRL_SETTINGS & OVERRIDE_SETTINGS
    fields = set(GRPOConfig.__dataclass_fields__)
    assert fields >= TRAINER_SETTINGS | TRL_SETTINGS | OVERRIDE_SETTINGS


@pytest.mark.parametrize("images_per_batch", [2, 3, 4])
def test_balanced_order_gives_each_batch_both_classes_in_equal_numbers(images_per_batch: int) -> None:
    labels = ["live"] * 13 + ["spoof"] * 29
    order = class_balanced_order(labels, images_per_batch=images_per_batch, seed=0)
    assert sorted(order) == list(range(len(labels)))
    full_batches = 13 // (images_per_batch // 2 + images_per_batch % 2)
    lives = []
    for start in range(0, full_batches * images_per_batch, images_per_batch):
        batch = [labels[i] for i in order[start : start + images_per_batch]]
        lives.append(batch.count("live"))
        assert abs(batch.count("live") - batch.count("spoof")) <= images_per_batch % 2
    assert class_balanced_order(labels, images_per_batch=images_per_batch, seed=1) != order
    if images_per_batch % 2:  # the odd image alternates between the classes
        assert set(lives) == {images_per_batch // 2, images_per_batch // 2 + 1}


def test_balanced_order_refuses_a_label_it_cannot_balance() -> None:
    with pytest.raises(RunSetupError, match="'fake'"):
        class_balanced_order(["live", "fake"], images_per_batch=2, seed=0)


def test_balanced_classes_turn_trls_shuffle_off(tmp_path: Path) -> None:
    grpo = load_config("demo_cpu", ["grpo.balanced_classes=true"]).grpo
    args = training_arguments(grpo, output_dir=tmp_path, seed=0, gradient_accumulation_steps=2)
    assert args.shuffle_dataset is False
    assert training_arguments(
        load_config("demo_cpu", ["grpo.balanced_classes=false"]).grpo,
        output_dir=tmp_path,
        seed=0,
        gradient_accumulation_steps=2,
    ).shuffle_dataset
