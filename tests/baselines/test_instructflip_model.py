"""The InstructFLIP network on tiny random components of the real classes: what is frozen, what trains, that
each component saves and reloads in its transformers format, the ablation switches and the LLM-free path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, Blip2QFormerModel, CLIPVisionModel, T5ForConditionalGeneration

from rft.baselines.instructflip.losses import total_loss
from rft.baselines.instructflip.model import InstructFlip, Settings, build_model
from rft.baselines.instructflip.tiny import IMAGE_SIZE, build_tiny_components

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WEIGHTS = {"content": 0.4, "style": 0.4, "cls": 0.15, "cue": 0.05}


@pytest.fixture(scope="module")
def components(tmp_path_factory) -> Path:
    return build_tiny_components(tmp_path_factory.mktemp("instructflip_components"))


def tiny_model(components: Path, **switches) -> InstructFlip:
    torch.manual_seed(0)
    settings = Settings(num_query_tokens=3, cue_size=4, vision_frozen_layers=1, **switches)
    return build_model(
        clip_dir=components / "clip",
        t5_dir=components / "t5",
        qformer_dir=None,
        qformer_hidden=32,
        qformer_layers=2,
        qformer_heads=2,
        settings=settings,
    )


def batch() -> dict:
    torch.manual_seed(1)
    return {
        "pixel_values": torch.randn(3, 3, IMAGE_SIZE, IMAGE_SIZE),
        "is_spoof": torch.tensor([0, 1, 1]),
        "answers": {
            "content": torch.tensor([0, 7, -100]),
            "illumination": torch.tensor([0, 3, 1]),
            "environment": torch.tensor([-100, 1, 0]),
            "camera_quality": torch.tensor([-100, -100, -100]),  # nobody annotated: the question adds nothing
        },
    }


def t5_calls(model: InstructFlip) -> list[int]:
    calls: list[int] = []
    model.t5.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_flan_t5_and_clips_frozen_parts_get_no_gradient(components):
    model = tiny_model(components)
    terms = model(**batch())
    assert set(terms) == {"content", "style", "cls", "cue"}
    total_loss(terms, WEIGHTS).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    frozen = [
        n
        for n in grads
        if n.startswith(("t5.", "vision.embeddings", "vision.pre_layrnorm", "vision.encoder.layers.0."))
    ]
    assert frozen and all(grads[n] is None for n in frozen), "a frozen parameter received a gradient"
    assert not any(p.requires_grad for p in model.t5.parameters())
    trained = [
        "vision.encoder.layers.1.",
        "qformer_content.",
        "qformer_style.",
        "content_queries",
        "style_queries",
        "language_proj",
        "instruction_proj",
        "classifier",
        "cue_generator",
    ]
    for prefix in trained:
        reached = [grads[n] for n in grads if n.startswith(prefix) and grads[n] is not None]
        assert reached and any(g.abs().sum() > 0 for g in reached), f"{prefix} got no gradient"


def test_t5_stays_in_eval_mode_while_the_rest_trains(components):
    model = tiny_model(components).train()
    assert model.qformer_content.training and not model.t5.training


def test_save_and_reload_from_local_folders_in_transformers_formats(components, tmp_path):
    model = tiny_model(components).eval()
    with torch.no_grad():
        model.classifier.bias.add_(0.3)  # a trained head, not the initial one
    model.save_pretrained(tmp_path / "model")
    # Each component is an ordinary transformers folder, loadable by its own class.
    assert isinstance(CLIPVisionModel.from_pretrained(tmp_path / "model" / "vision"), CLIPVisionModel)
    assert isinstance(
        Blip2QFormerModel.from_pretrained(tmp_path / "model" / "qformer_style"), Blip2QFormerModel
    )
    assert isinstance(
        T5ForConditionalGeneration.from_pretrained(tmp_path / "model" / "t5"), T5ForConditionalGeneration
    )
    assert AutoTokenizer.from_pretrained(tmp_path / "model" / "t5")("Photo").input_ids[-1] == 1  # </s>
    reloaded = InstructFlip.from_pretrained(tmp_path / "model").eval()
    pixels = batch()["pixel_values"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded.predict(pixels)[0], model.predict(pixels)[0])
        torch.testing.assert_close(reloaded.predict(pixels)[1], model.predict(pixels)[1])


def test_reload_refuses_heads_of_another_configuration(components, tmp_path):
    tiny_model(components).save_pretrained(tmp_path / "model")
    settings = tmp_path / "model" / "instructflip.json"
    settings.write_text(settings.read_text().replace('"num_query_tokens": 3', '"num_query_tokens": 5'))
    with pytest.raises(RuntimeError, match="size mismatch"):
        InstructFlip.from_pretrained(tmp_path / "model")


@pytest.mark.parametrize(
    ("switches", "terms"),
    [
        ({"content_branch": False}, {"style", "cls", "cue"}),
        ({"style_branch": False}, {"content", "cls", "cue"}),
        ({"cue": False}, {"content", "style", "cls"}),
        ({"content_branch": False, "style_branch": False, "cue": False}, {"cls"}),  # Table 3's baseline row
    ],
)
def test_ablation_switches_remove_their_terms(components, switches, terms):
    model = tiny_model(components, **switches)
    assert set(model(**batch())) == terms


def test_classification_heads_replace_the_llm(components):
    model = tiny_model(components, llm=False)
    calls = t5_calls(model)
    terms = model(**batch())
    assert set(terms) == {"content", "style", "cls", "cue"} and not calls
    total_loss(terms, WEIGHTS).backward()
    assert model.answer_heads["content"].weight.grad.abs().sum() > 0


def test_the_llm_answers_in_training_and_inference_runs_without_it(components):
    model = tiny_model(components)
    calls = t5_calls(model)
    model(**batch())
    assert len(calls) == 3  # the content question and the two style questions with a label in the batch
    calls.clear()
    p_spoof, cue = model.eval().predict(batch()["pixel_values"])
    assert not calls
    assert p_spoof.shape == (3,) and ((p_spoof >= 0) & (p_spoof <= 1)).all()
    assert cue.shape == (3, 1, 4, 4)
