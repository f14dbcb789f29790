"""The caption model trains for real on a tiny VLM of each architecture: a few Trainer steps with a finite
loss that is Eq. 1 of its logged terms, the trained parameters change and the frozen ones do not, the model
exports to a Hugging Face folder plus its head and reloads from it, and its evaluation writes per-sample
score files that the common report and the comparison read."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rft.baselines.caption.data import CaptionCollator, load_caption_dataset
from rft.baselines.caption.judge import RuleJudge
from rft.baselines.caption.model import (
    HEAD_WEIGHTS,
    build_caption_model,
    load_caption_model,
    lora_config,
)
from rft.baselines.caption.predict import CaptionPredictor, evaluate_sets
from rft.baselines.caption.trainer import build_caption_trainer, export_caption_model
from rft.config import CaptionConfig
from rft.eval.compare import evaluate_run
from rft.eval.score_files import read_score_folder
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, load_policy

from .test_caption_objective import annotated, face  # noqa: F401  (module fixture)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tiny_model_dir, annotated, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("caption_run")
    arch = detect_arch(tiny_model_dir)
    vlm, processor = load_policy(tiny_model_dir)
    caption = CaptionConfig(
        max_steps=3,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        learning_rate=1e-2,
        logging_steps=1,
        save_steps=3,
        lora_rank=4,
        precision="fp32",
    )
    lora = lora_config(arch, rank=4, alpha=8, dropout=0.0, target_modules=caption.lora_target_modules)
    model = build_caption_model(vlm, arch, lora, cls_weight=0.7, caption_weight=0.3)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    dataset = load_caption_dataset(annotated, "mix")
    trainer = build_caption_trainer(
        model=model,
        processor=processor,
        dataset=dataset,
        caption=caption,
        output_dir=out / "checkpoints",
        seed=0,
    )
    trainer.train()
    return {
        "trainer": trainer,
        "model": model,
        "before": before,
        "out": out,
        "processor": processor,
        "arch": arch,
    }


def test_every_loss_term_is_logged_finite_and_the_loss_is_eq1_of_them(trained):
    steps = [entry for entry in trained["trainer"].state.log_history if "loss" in entry]
    assert len(steps) == 3
    for entry in steps:
        assert all(math.isfinite(entry[key]) for key in ("loss", "loss_cls", "loss_caption"))
        assert entry["loss"] == pytest.approx(0.7 * entry["loss_cls"] + 0.3 * entry["loss_caption"], rel=1e-4)
    events = EventAccumulator(str(trained["out"] / "checkpoints" / "tensorboard")).Reload()
    assert {"train/loss", "train/loss_cls", "train/loss_caption"} <= set(events.Tags()["scalars"])


def test_trained_parameters_change_and_frozen_ones_do_not(trained):
    model, before = trained["model"], trained["before"]
    changed = {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert changed <= trainable
    projector = "merger" if trained["arch"] == "qwen2_5_vl" else "multi_modal_projector"
    for part in (
        "vision_cls_head.weight",
        "lora_B",
        "lm_head.modules_to_save",
        f"{projector}.modules_to_save",
    ):
        assert any(part in name for name in changed), f"no trained parameter {part} changed"
    frozen = [
        name
        for name in trainable
        if "visual.blocks" in name or "vision_tower" in name or "embed_tokens" in name
    ]
    assert not frozen, f"the vision tower and embeddings must stay frozen: {frozen[:3]}"
    assert not any("original_module" in name for name in changed)


def test_export_reloads_from_a_local_hugging_face_folder(trained, annotated, tiny_model_dir):  # noqa: F811
    model, processor = trained["model"], trained["processor"]
    folder = export_caption_model(
        model, processor, base_model_dir=tiny_model_dir, out_dir=trained["out"] / "model", dtype="float32"
    )
    assert (folder / "config.json").is_file() and (folder / HEAD_WEIGHTS).is_file()
    reloaded, _ = load_caption_model(folder)
    batch = CaptionCollator(processor)([load_caption_dataset(annotated, "vanilla")[i] for i in (0, 1)])
    model.eval()
    with torch.no_grad():
        expected, got = model(**batch), reloaded(**batch)
    torch.testing.assert_close(got.cls_logits, expected.cls_logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got.loss, expected.loss, rtol=1e-4, atol=1e-5)
    trained["exported"] = folder


def test_evaluation_writes_score_files_the_common_report_and_comparison_read(trained):
    model, processor = load_caption_model(trained["exported"])
    tokenizer = ConversationTokenizer(processor, model.arch, tools=[])
    predictor = CaptionPredictor(model, tokenizer, "reasoning", max_new_tokens=6)

    def split(seeds):
        rows = {
            "id": [f"f{s}" for s in seeds],
            "image": [face(s) for s in seeds],
            "label": [s % 2 for s in seeds],
            "spoof_type": ["replay" if s % 2 else "live" for s in seeds],
        }
        return datasets.Dataset.from_dict(rows)

    out = trained["out"] / "eval"
    result = evaluate_sets(
        predictor, {"dev": split(range(4)), "street": split(range(10, 16))}, out_dir=out, judge=RuleJudge()
    )
    head = result["head"]
    assert head["settings"]["threshold_mode"] == "dev" and head["overall"]["n_samples"] == 6
    assert 0 <= head["overall"]["auc"] <= 1
    assert result["explanation"]["settings"]["input"] == "decision"
    assert len((out / "explanations.jsonl").read_text().splitlines()) == 6
    row = evaluate_run("caption head", read_score_folder(out / "head"))
    assert row.at_dev["hter"] == pytest.approx(head["overall"]["hter"]) and row.roc is not None
    assert evaluate_run("caption explanation", read_score_folder(out / "explanation")).roc is None
