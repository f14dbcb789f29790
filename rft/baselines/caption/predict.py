"""The caption model's two predictions on an evaluated set, written as per-sample score files
(rft.eval.score_files) and reported with the common metrics (rft.eval.report):

- head: P(spoof) = softmax of the live/spoof head on the image's pooled features, a continuous score, so
  AUC, EER and TPR@FPR exist (the paper reports none: its explanations give discrete decisions only);
- explanation: a greedy explanation generated under the training prompt, mapped to live/spoof by the judge
  (rft.baselines.caption.judge): a decision-only set (HTER from decisions, as in the paper's tables). An
  explanation the judge cannot read is counted as wrong (its decision is the other class) and counted in
  `undecided_fraction`.

One image per forward: the sets of the CPU runs are small, and a batch of one needs no padding rules for
generation. On a GPU this is correct but slower than batched generation would be.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from PIL import Image

from rft.annotate.prompts import REASONING_TRAINING_PROMPT, VANILLA_TRAINING_PROMPT
from rft.baselines.caption.judge import Judge
from rft.baselines.caption.model import CaptionFASModel
from rft.eval.report import compute_report
from rft.eval.score_files import DEV_SET, write_scores_csv
from rft.eval.target import report_rows, subsample
from rft.models.conversation import ConversationTokenizer
from rft.outputs import write_text_atomically
from rft.prompts.episodes import IMAGE_PART
from rft.prompts.episodes import text_part as stored_text_part

PROMPTS = {"vanilla": VANILLA_TRAINING_PROMPT, "reasoning": REASONING_TRAINING_PROMPT}
HEAD_SCORES = "head"  # score folder of the head's P(spoof)
EXPLANATION_SCORES = "explanation"  # score folder of the judged explanations (decisions)


def prompt_messages(prompt: str) -> list[dict[str, Any]]:
    """The user turn the captions were trained under: the image, then the caption prompt."""
    return [{"role": "user", "content": [IMAGE_PART, stored_text_part(PROMPTS[prompt])]}]


@dataclass
class CaptionPredictor:
    model: CaptionFASModel
    tokenizer: ConversationTokenizer
    prompt: str = "reasoning"
    max_new_tokens: int = 256

    def _inputs(self, image: Image.Image) -> dict[str, torch.Tensor]:
        ids = self.tokenizer.prompt_ids(prompt_messages(self.prompt))
        inputs = self.tokenizer.expand_images(ids, [image.convert("RGB")]).model_inputs()
        device = next(self.model.parameters()).device
        return {key: value.to(device) for key, value in inputs.items()}

    @torch.no_grad()
    def spoof_probability(self, image: Image.Image) -> float:
        logits = self.model(**self._inputs(image)).cls_logits.float()
        return float(torch.softmax(logits, dim=-1)[0, 1])

    @torch.no_grad()
    def explanation(self, image: Image.Image) -> str:
        inputs = self._inputs(image)
        prompt_length = inputs["input_ids"].shape[1]
        tokenizer = self.tokenizer.processor.tokenizer
        output = self.model.vlm.generate(
            **inputs,
            attention_mask=torch.ones_like(inputs["input_ids"]),
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
        return tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True).strip()


def evaluate_sets(
    predictor: CaptionPredictor,
    sets: Mapping[str, datasets.Dataset],
    *,
    out_dir: Path,
    judge: Judge | None,
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score every set (`dev` and the target domains), write out_dir/head/<set>.csv, out_dir/explanation/
    <set>.csv (with a judge) and out_dir/explanations.jsonl, and return the common reports of the targets."""
    was_training = predictor.model.training
    predictor.model.eval()
    head_rows: dict[str, list[dict]] = {}
    explained: dict[str, list[dict]] = {}
    records = []
    try:
        for name, dataset in sets.items():
            chosen = subsample(dataset, max_samples, seed)
            rows = report_rows(chosen, name)
            images = list(chosen["image"])
            head_rows[name] = [
                {**row, "score": predictor.spoof_probability(image)}
                for row, image in zip(rows, images, strict=True)
            ]
            write_scores_csv(out_dir / HEAD_SCORES / f"{name}.csv", head_rows[name])
            if judge is not None and name != DEV_SET:
                explained[name] = judged_rows(predictor, judge, rows, images, records)
                write_scores_csv(out_dir / EXPLANATION_SCORES / f"{name}.csv", explained[name])
    finally:
        predictor.model.train(was_training)
    result = reports(head_rows, explained)
    if records:
        write_text_atomically(out_dir / "explanations.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        result["explanation_undecided_fraction"] = sum(r["judged"] is None for r in records) / len(records)
    return result


def judged_rows(
    predictor: CaptionPredictor,
    judge: Judge,
    rows: Sequence[dict],
    images: Sequence[Image.Image],
    records: list,
) -> list[dict]:
    """Decision rows from the judged explanations; an unreadable one is counted as wrong."""
    out = []
    for row, image in zip(rows, images, strict=True):
        text = predictor.explanation(image)
        decision = judge.decide(text)
        wrong = "live" if row["label"] == "spoof" else "spoof"
        out.append({**row, "decision": decision or wrong})
        records.append(
            {
                "id": row["id"],
                "domain": row["domain"],
                "label": row["label"],
                "explanation": text,
                "judged": decision,
            }
        )
    return out


def reports(head_rows: Mapping[str, list[dict]], explained: Mapping[str, list[dict]]) -> dict[str, Any]:
    """The common report of the pooled targets: head (at the dev threshold when a dev set was scored, its
    own EER threshold otherwise) and explanation (decisions)."""
    targets = [row for name, rows in head_rows.items() if name != DEV_SET for row in rows]
    dev = head_rows.get(DEV_SET)
    result: dict[str, Any] = {
        "head": compute_report(targets, threshold_mode="dev", dev_rows=dev)
        if dev
        else compute_report(targets)
    }
    if explained:
        decided = [row for rows in explained.values() for row in rows]
        result["explanation"] = compute_report(decided)
    return result
