"""Paper 002's objective and data with hand-worked numbers: Eq. 1's 0.7/0.3 weighting, the caption loss, the
head's cross-entropy, the per-image pooling, the 50/50 mix, and the judges (rules; an OpenAI-compatible stub
on 127.0.0.1, since no real judge model runs here)."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image

from rft.annotate.annotation import caption_messages
from rft.baselines.caption.data import CaptionCollator, CaptionDataError, load_caption_dataset
from rft.baselines.caption.judge import JudgeError, OpenAIJudge, RuleJudge, decision_from_answer
from rft.baselines.caption.model import (
    CaptionFASModel,
    caption_nll,
    dual_objective_loss,
    pool_image_features,
)
from rft.data.conversations import Conversation, conversations_to_dataset
from rft.models.loading import detect_arch, load_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REASONING = (
    "1. Initial observation: a face, evenly lit.\n2. Artifact detection: a fine moire pattern.\n"
    "3. Feature analysis: flat skin.\n4. Examine lighting and shadows: flat shading.\n"
    "5. Consider context: a screen edge.\n6. Final judgment: the image is a spoof, a replayed video."
)


def test_eq1_weights_classification_07_and_caption_03():
    # 0.7 x 0.5 + 0.3 x 2.0 = 0.35 + 0.6 = 0.95
    assert dual_objective_loss(torch.tensor(0.5), torch.tensor(2.0)).item() == pytest.approx(0.95)
    assert dual_objective_loss(torch.tensor(1.0), torch.tensor(1.0), 0.0, 1.0).item() == pytest.approx(1.0)


def test_caption_loss_is_the_mean_nll_of_the_caption_tokens_only():
    # Vocabulary of 3; position 0 predicts token 1 from uniform logits (nll ln 3), position 1 predicts token 2
    # from logits (ln 2, 0, 0): p = 1 / (2 + 1 + 1), nll ln 4. The prompt token (label -100) is not trained.
    logits = torch.tensor([[[0.0, 0.0, 0.0], [math.log(2), 0.0, 0.0], [9.0, 0.0, 0.0]]])
    labels = torch.tensor([[-100, 1, 2]])
    assert caption_nll(logits, labels).item() == pytest.approx((math.log(3) + math.log(4)) / 2, abs=1e-6)


def test_pooling_takes_each_images_own_tokens():
    features = torch.arange(6.0).view(3, 2)  # image 0: 1 merged token, image 1: 2
    grid = torch.tensor([[1, 2, 2], [1, 4, 2]])  # 4 and 8 patches, merge 2x2 -> 1 and 2 tokens
    pooled = pool_image_features(features, "qwen2_5_vl", grid, merge_size=2)
    assert pooled.tolist() == [[0.0, 1.0], [3.0, 4.0]]
    assert pool_image_features(torch.ones(2, 5, 3), "internvl3", None, 1).shape == (2, 3)


def face(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (56, 56, 3), dtype=np.uint8))


def caption_conversation(seed: int, reasoning: bool) -> Conversation:
    label = "spoof" if seed % 2 else "live"
    text = REASONING if reasoning else f"These characteristics indicate that the image is {label}."
    kind = "caption_reasoning" if reasoning else "caption_vanilla"
    messages = caption_messages(reasoning, text)
    return Conversation(
        f"img{seed}", label, "replay" if seed % 2 else "live", "d", kind, "templated", messages, [face(seed)]
    )


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    root = tmp_path_factory.mktemp("captions")
    for reasoning, kind in ((False, "caption_vanilla"), (True, "caption_reasoning")):
        dataset = conversations_to_dataset([caption_conversation(seed, reasoning) for seed in range(6)])
        dataset.save_to_disk(str(root / kind))
    return root


def test_mix_keeps_the_sample_count_with_half_reasoning(annotated):
    mixed = load_caption_dataset(annotated, "mix", seed=0)
    assert len(mixed) == 6
    assert sorted(mixed["sample_id"]) == [f"img{i}" for i in range(6)]
    assert sorted(mixed["kind"]) == ["caption_reasoning"] * 3 + ["caption_vanilla"] * 3
    assert set(load_caption_dataset(annotated, "reasoning")["kind"]) == {"caption_reasoning"}
    other_seed = load_caption_dataset(annotated, "mix", seed=1)
    assert dict(zip(mixed["sample_id"], mixed["kind"], strict=True)) != dict(
        zip(other_seed["sample_id"], other_seed["kind"], strict=True)
    )


def test_missing_caption_kind_is_refused_in_one_line(tmp_path, annotated):
    (tmp_path / "caption_vanilla").symlink_to(annotated / "caption_vanilla")
    with pytest.raises(CaptionDataError, match="no caption_reasoning/ dataset; run `rft annotate`"):
        load_caption_dataset(tmp_path, "mix")


def test_model_loss_is_07_head_ce_plus_03_caption_nll(tiny_model_dir, annotated):
    vlm, processor = load_policy(tiny_model_dir)
    model = CaptionFASModel(vlm, detect_arch(tiny_model_dir))
    # Head hand-set: P(spoof) = e^ln3 / (1 + e^ln3) = 0.75 for every image. Batch (live, spoof):
    # L_cls = (-ln 0.25 - ln 0.75) / 2 = (1.386294 + 0.287682) / 2 = 0.836988.
    with torch.no_grad():
        model.vision_cls_head.weight.zero_()
        model.vision_cls_head.bias.copy_(torch.tensor([0.0, math.log(3)]))
    rows = [load_caption_dataset(annotated, "vanilla")[i] for i in (0, 1)]
    batch = CaptionCollator(processor)(rows)
    assert batch["class_labels"].tolist() == [0, 1]
    out = model(**batch)
    assert out.cls_loss.item() == pytest.approx(0.836988, abs=1e-5)
    assert torch.softmax(out.cls_logits, -1)[:, 1].tolist() == pytest.approx([0.75, 0.75])
    expected_caption = caption_nll(
        vlm(**{k: v for k, v in batch.items() if k not in ("labels", "class_labels")}).logits, batch["labels"]
    )
    assert out.caption_loss.item() == pytest.approx(expected_caption.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(0.7 * 0.836988 + 0.3 * expected_caption.item(), rel=1e-5)


def test_rule_judge_reads_the_stated_verdict():
    judge = RuleJudge()
    assert judge.decide(REASONING) == "spoof"
    assert judge.decide(REASONING.replace("is a spoof, a replayed video", "is a real, live face")) == "live"
    assert judge.decide("The skin shows no signs of spoofing. The face appears to be real.") == "live"
    assert judge.decide("ererererer") is None


def test_judge_answer_words():
    assert decision_from_answer("Spoof.") == "spoof"
    assert decision_from_answer(" live") == "live"
    assert decision_from_answer("live or spoof") is None


class StubJudge(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that answers spoof when the explanation mentions moire."""

    seen: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StubJudge.seen.append((self.path, self.headers.get("Authorization"), body))
        if "fail" in body["messages"][-1]["content"]:
            self.send_response(500)
            self.end_headers()
            return
        answer = "spoof" if "moire" in body["messages"][-1]["content"] else "live"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_openai_judge_against_a_local_stub(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), StubJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("JUDGE_KEY", "secret")
    try:
        judge = OpenAIJudge(
            f"http://127.0.0.1:{server.server_port}/v1", "gpt-4o-mini", api_key_env="JUDGE_KEY"
        )
        assert judge.decide("I see a moire pattern.") == "spoof"
        assert judge.decide("Natural skin texture.") == "live"
        path, auth, body = StubJudge.seen[0]
        assert path == "/v1/chat/completions" and auth == "Bearer secret"
        assert body["model"] == "gpt-4o-mini" and body["messages"][-1]["content"] == "I see a moire pattern."
        with pytest.raises(JudgeError, match=r"check caption\.judge_url"):
            judge.decide("fail")
    finally:
        server.shutdown()


def test_several_annotation_folders_are_concatenated(annotated):
    both = load_caption_dataset([annotated, annotated], "vanilla")
    assert len(both) == 2 * len(load_caption_dataset(annotated, "vanilla"))
