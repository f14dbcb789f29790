"""The templated writer answers every request with text that passes the same verification as a teacher's,
for every attack type, deterministically, and its trajectories react to the experts."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rft.annotate.annotation import AnnotationSettings, annotate_task
from rft.annotate.samples import Sample, SampleContext
from rft.annotate.teacher import png_data_url
from rft.annotate.templated import TemplatedTeacher, tool_plan, zoom_box
from rft.data.schema import attack_category
from rft.parsing.tar_fas import parse_episode
from rft.tools.toolsets import resolve_tool_set

SPOOF_TYPES = [
    "live",
    "print",
    "replay",
    "mask_paper",
    "mask_rigid",
    "mask_silicone",
    "partial_eye",
    "partial_paperglasses",
    "partial_mouth",
    "makeup_cosmetic",
    "replay_phone",
]
IMAGE = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
IMAGE_URL = png_data_url(IMAGE)


class FixedExperts:
    """A stand-in ExpertBank whose every expert says `probability`."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.experts = {}

    def spoof_probability(self, tool, picture):
        return None if tool == "ZoomInTool" else self.probability


def sample(spoof_type: str, sample_id: str = "s-1", illumination: str | None = "dark") -> Sample:
    context = SampleContext(
        sample_id=sample_id,
        label="live" if spoof_type == "live" else "spoof",
        spoof_type=spoof_type,
        attack_category=attack_category(spoof_type),
        domain="studio",
        width=64,
        height=64,
        face_box=(14, 10, 50, 58),
        illumination=illumination,
    )
    return Sample(context=context, image=IMAGE)


def run_all_tasks(
    item: Sample, experts=None, annotation: AnnotationSettings | None = None, tools=None
) -> dict:
    annotation = annotation or AnnotationSettings()
    teacher = TemplatedTeacher(annotation.max_tool_calls, annotation.min_tool_calls, tools=tools)

    async def go():
        outcomes = {}
        for task in ("knowledge_transfer", "tool_trajectory", "caption_vanilla", "caption_reasoning"):
            fast = (
                outcomes["knowledge_transfer"].final.messages[-1]["content"]
                if task == "tool_trajectory"
                else None
            )
            outcomes[task] = await annotate_task(task, item, IMAGE_URL, teacher, experts, annotation, fast)
        return outcomes

    return asyncio.run(go())


@pytest.mark.parametrize("spoof_type", SPOOF_TYPES)
def test_every_task_passes_verification_for_every_attack_type(spoof_type):
    outcomes = run_all_tasks(sample(spoof_type))
    for task, outcome in outcomes.items():
        assert outcome.kept, (task, outcome.final.reason, outcome.final.teacher_turns)
        assert outcome.attempts == 1 and outcome.source == "templated"
    messages = outcomes["tool_trajectory"].final.messages
    texts = [m["content"] for m in messages if m["role"] == "assistant"]
    episode = parse_episode(texts)
    label = "live" if spoof_type == "live" else "spoof"
    assert not episode.errors and episode.final_answer == label and episode.fast.predicted == label
    assert 1 <= len(episode.tool_calls) <= 3


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample_id=st.text(min_size=1, max_size=30),
    spoof_type=st.sampled_from(SPOOF_TYPES),
    probability=st.floats(0, 1),
    illumination=st.sampled_from([None, "strong", "normal", "dark", "back", "odd"]),
    max_tool_calls=st.integers(0, 5),
)
def test_any_sample_and_any_expert_output_give_a_kept_trajectory(
    sample_id, spoof_type, probability, illumination, max_tool_calls
):
    annotation = AnnotationSettings(
        max_turns=6, max_tool_calls=max_tool_calls, min_tool_calls=min(1, max_tool_calls)
    )
    outcomes = run_all_tasks(
        sample(spoof_type, sample_id, illumination), FixedExperts(probability), annotation
    )
    for task, outcome in outcomes.items():
        assert outcome.kept, (task, outcome.final.reason, outcome.final.teacher_turns)
    assert len(outcomes["tool_trajectory"].final.tool_calls) <= max_tool_calls


def test_output_is_deterministic():
    first = run_all_tasks(sample("replay", "synthetic-studio-000042"))
    second = run_all_tasks(sample("replay", "synthetic-studio-000042"))
    for task in first:
        assert first[task].record() == second[task].record()


def test_trajectory_goes_on_while_the_experts_disagree_and_stops_when_they_agree():
    agreeing = run_all_tasks(sample("print", "a"), FixedExperts(0.95))["tool_trajectory"].final
    disagreeing = run_all_tasks(sample("print", "a"), FixedExperts(0.05))["tool_trajectory"].final
    assert len(agreeing.tool_calls) < len(disagreeing.tool_calls) == 3
    assert (
        "not conclusive" in " ".join(disagreeing.teacher_turns)
        or "ambiguous" in " ".join(disagreeing.teacher_turns)
        or "decisive" in " ".join(disagreeing.teacher_turns)
    )


def test_plan_starts_with_the_tool_whose_expert_agrees_most():
    context = sample("replay").context
    assert tool_plan(context)[0] == "FFTTool"
    context.evidence = {"FFTTool": 0.2, "LBPTool": 0.99, "WaveletTransformTool": 0.9, "HOGTool": 0.6}
    assert tool_plan(context)[0] == "WaveletTransformTool"  # LBPTool is not in the replay plan


def test_zoom_box_targets_the_attacked_region_inside_the_image():
    eyes = zoom_box(sample("partial_eye").context)
    mouth = zoom_box(sample("partial_mouth").context)
    assert eyes[1] < mouth[1] and eyes[3] < mouth[3]
    for box in (eyes, mouth):
        assert 0 <= box[0] < box[2] <= 64 and 0 <= box[1] < box[3] <= 64


# A tiny demo model learns turns it can write whole: with the tokenizer's merges for the protocol's strings
# (rft.models.tokenizer.protocol_texts, FAS_WORDS), each templated turn stays short (docs/EFFICACY.md).
MAX_TURN_TOKENS = 64


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from rft.models.tokenizer import train_tokenizer

    return train_tokenizer("qwen2_5_vl", vocab_size=2048)


@pytest.mark.parametrize("spoof_type", SPOOF_TYPES)
def test_templated_turns_are_short_in_the_tiny_tokenizer(spoof_type, tiny_tokenizer):
    messages = run_all_tasks(sample(spoof_type))["tool_trajectory"].final.messages
    for text in (m["content"] for m in messages if m["role"] == "assistant"):
        tokens = len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
        assert tokens <= MAX_TURN_TOKENS, (tokens, text)


def test_the_first_tool_tests_the_cue_the_fast_answer_states():
    for spoof_type in SPOOF_TYPES:
        messages = run_all_tasks(sample(spoof_type))["tool_trajectory"].final.messages
        fast, first_call = [m["content"] for m in messages if m["role"] == "assistant"][:2]
        cue = first_call.removeprefix("<think>").split(" I will ")[0]
        assert cue in fast, (spoof_type, cue, fast)


@pytest.mark.parametrize("tool_set", ["zoom_in", "zoom_in+texture", "zoom_in+structure"])
@pytest.mark.parametrize("spoof_type", SPOOF_TYPES)
def test_trajectories_call_only_the_tools_of_the_set_and_stage1_is_the_same(tool_set, spoof_type):
    allowed = resolve_tool_set(tool_set)
    limited = run_all_tasks(sample(spoof_type), FixedExperts(0.5), tools=allowed)
    trajectory = limited["tool_trajectory"]
    assert trajectory.kept, (trajectory.final.reason, trajectory.final.teacher_turns)
    texts = [m["content"] for m in trajectory.final.messages if m["role"] == "assistant"]
    called = [call.name for call in parse_episode(texts).tool_calls]
    assert called and set(called) <= set(allowed)
    every = run_all_tasks(sample(spoof_type), FixedExperts(0.5))
    assert limited["knowledge_transfer"].record() == every["knowledge_transfer"].record()
