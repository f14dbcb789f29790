"""The TRL adapters, called exactly as TRL 1.16's GRPOTrainer calls reward functions, then inside a real trainer.

GRPOTrainer._calculate_rewards builds reward_kwargs from every input column but prompt / completion /
completion_ids, adds trainer_state, log_extra and log_metric, and calls
f(prompts=..., completions=..., completion_ids=..., **reward_kwargs); `call_like_trl` does the same.
"""

import json
import pickle
from collections import defaultdict

import pytest
from trl.trainer.utils import get_callable_name

from rft.parsing import parse_episode
from rft.rewards.dt_grpo import DtGrpoCoefficients, dt_grpo_reward, st_grpo_reward
from rft.rewards.rft_fas import RftFasCoefficients, rft_fas_reward
from rft.rewards.trl import (
    completion_text,
    dt_grpo_trl_rewards,
    r_fast,
    rft_fas_trl_rewards,
    st_grpo_trl_rewards,
)
from rft.tools import TOOL_NAMES


class ExtraLog:
    """Stands in for GRPOTrainer._log_completion_extra."""

    def __init__(self):
        self.columns = defaultdict(list)

    def __call__(self, column, values):
        self.columns[column].extend(values)


def call_like_trl(func, inputs, completions, completion_ids, log_extra=None):
    """What GRPOTrainer._calculate_rewards does for one synchronous reward function."""
    keys = [key for key in inputs[0] if key not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {key: [example[key] for example in inputs] for key in keys}
    reward_kwargs["trainer_state"] = None
    reward_kwargs["log_extra"] = log_extra or ExtraLog()
    reward_kwargs["log_metric"] = lambda name, value: None
    prompts = [example["prompt"] for example in inputs]
    return func(prompts=prompts, completions=completions, completion_ids=completion_ids, **reward_kwargs)


def weighted_sum(funcs, weights, inputs, completions, completion_ids):
    columns = [call_like_trl(func, inputs, completions, completion_ids) for func in funcs]
    return [sum(w * r for w, r in zip(weights, row, strict=True)) for row in zip(*columns, strict=True)]


PROMPT = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Real or fake?"}]}]
RFT_TEXTS = [
    "<thinking>Paper edge.</thinking><answer>fake</answer>",
    "<thinking>Natural skin.</thinking><answer>real</answer>",
    "Well. <thinking>x</thinking><answer>fake</answer>",
    "no format at all",
]
# The dataset stores labels as ClassLabel indices (0 live, 1 spoof); strings must work as well.
RFT_INPUTS = [
    {"prompt": PROMPT, "image": None, "label": label, "spoof_type": "print"}
    for label in (1, 1, "spoof", "live")
]
RFT_IDS = [[7] * 600, [7] * 2400, [7] * 120, [7] * 30]


@pytest.mark.parametrize("conversational", [True, False])
def test_rft_fas_adapters_equal_the_pure_components(conversational):
    completions = [[{"role": "assistant", "content": t}] for t in RFT_TEXTS] if conversational else RFT_TEXTS
    funcs, weights = rft_fas_trl_rewards()
    r_format, r_cls, r_res = (call_like_trl(f, RFT_INPUTS, completions, RFT_IDS) for f in funcs)
    pure = [
        rft_fas_reward(text, example["label"], len(ids))
        for text, example, ids in zip(RFT_TEXTS, RFT_INPUTS, RFT_IDS, strict=True)
    ]
    assert r_format == [reward.format for reward in pure] == [1, 1, 0, 0]
    assert r_cls == [reward.cls for reward in pure] == [1, 0, 1, 0]
    # +600/1200, -min(1, 2400/1200), +120/1200, -30/1200
    assert r_res == pytest.approx([reward.res for reward in pure])
    assert r_res == pytest.approx([0.5, -1, 0.1, -0.025])
    assert weights == [1.0, 1.0, 1.0]
    total = weighted_sum(funcs, weights, RFT_INPUTS, completions, RFT_IDS)
    assert total == pytest.approx([reward.total for reward in pure])


def test_rft_fas_helper_binds_the_coefficients():
    coefficients = RftFasCoefficients(format_weight=0.5, cls_weight=2.0, res_weight=0.0, max_length=300)
    funcs, weights = rft_fas_trl_rewards(coefficients)
    assert weights == [0.5, 2.0, 0.0]
    r_res = call_like_trl(funcs[2], RFT_INPUTS, RFT_TEXTS, RFT_IDS)
    assert r_res == pytest.approx([1, -1, 120 / 300, -30 / 300])
    total = weighted_sum(funcs, weights, RFT_INPUTS, RFT_TEXTS, RFT_IDS)
    expected = [
        rft_fas_reward(t, e["label"], len(i), coefficients).total
        for t, e, i in zip(RFT_TEXTS, RFT_INPUTS, RFT_IDS, strict=True)
    ]
    assert total == pytest.approx(expected)


def test_format_adapter_logs_why_a_format_failed():
    log = ExtraLog()
    call_like_trl(rft_fas_trl_rewards()[0][0], RFT_INPUTS, RFT_TEXTS, RFT_IDS, log_extra=log)
    errors = log.columns["format_error"]
    assert errors[:2] == ["", ""]
    assert "outside the blocks" in errors[2]
    assert "no tags" in errors[3]


def call(name, arguments=None):
    payload = json.dumps({"name": name, "arguments": arguments or {}})
    return f"<think>Check with {name}.</think>\n<tool_call>\n{payload}\n</tool_call>"


ZOOM = call("ZoomInTool", {"bbox": [10, 10, 90, 90]})
EPISODES = [
    [
        "<Spoof><reason>Glare.</reason>",
        ZOOM,
        call("FFTTool"),
        "<think>Moire.</think><answer><Spoof></answer>",
    ],
    ["<Real><reason>Skin.</reason>", call("LBPTool", {"P": 99}), "<think>a</think><answer><Spoof></answer>"],
    ["bad fast", call("HOGTool"), call("HOGTool"), call("LBPTool")],
    ["<Real><reason>Skin.</reason>", "<think>Nothing.</think><answer><Real></answer>"],
    ["<Spoof><reason>Glare.</reason>", call("FFTTool"), "<think>a</think><answer><Real></answer>"],
]
EPISODE_INPUTS = [{"prompt": PROMPT, "label": label} for label in (1, 1, "spoof", 0, "spoof")]


def episode_inputs():
    """Inputs after GRPOTrainer merged the rollout function's `episode_turns` field into them."""
    return [
        example | {"episode_turns": turns} for example, turns in zip(EPISODE_INPUTS, EPISODES, strict=True)
    ]


def test_dt_grpo_adapters_sum_to_the_pure_total():
    inputs = episode_inputs()
    completions = ["".join(turns) for turns in EPISODES]  # unused by the adapters: the turns are the episode
    ids = [[1, 2, 3]] * len(EPISODES)
    funcs, weights = dt_grpo_trl_rewards()
    r_fast_, r_rsn, r_tool = (call_like_trl(f, inputs, completions, ids) for f in funcs)
    pure = [
        dt_grpo_reward(parse_episode(turns), example["label"])
        for turns, example in zip(EPISODES, inputs, strict=True)
    ]
    assert r_fast_ == [reward.fast for reward in pure] == [1, 0, -1, 1, 1]
    assert r_rsn == [reward.reasoning for reward in pure] == [1, -1, 0, 1, 0]
    assert r_tool == pytest.approx([reward.tool for reward in pure])
    assert r_tool == pytest.approx([0.4, 0, 0, 0, 0])
    assert weights == [0.1, 0.5, 0.4]
    total = weighted_sum(funcs, weights, inputs, completions, ids)
    # first episode: 0.1*1 + 0.5*1 + 0.4*0.4 = 0.76
    assert total == pytest.approx([reward.total for reward in pure])
    assert total[0] == pytest.approx(0.76)


def test_dt_grpo_helper_binds_coefficients_and_limit():
    gammas = dict.fromkeys(TOOL_NAMES, 0.1) | {"FFTTool": 0.7}
    coefficients = DtGrpoCoefficients(beta_fast=0.3, beta_rsn=0.3, beta_tool=0.4, tool_weights=gammas)
    funcs, weights = dt_grpo_trl_rewards(coefficients, max_tool_calls=1)
    inputs = episode_inputs()
    total = weighted_sum(funcs, weights, inputs, [""] * len(inputs), [[1]] * len(inputs))
    pure = [dt_grpo_reward(parse_episode(e["episode_turns"], 1), e["label"], coefficients) for e in inputs]
    assert total == pytest.approx([reward.total for reward in pure])
    # first episode: the FFT call is past the limit of 1; 0.3*1 + 0.3*(-1) + 0.4*0.1 = 0.04
    assert total[0] == pytest.approx(0.04)


def test_reasoning_adapter_logs_the_episode_errors():
    log = ExtraLog()
    call_like_trl(dt_grpo_trl_rewards()[0][1], episode_inputs(), [""] * 5, [[1]] * 5, log_extra=log)
    errors = log.columns["reasoning_errors"]
    assert errors[0] == ""
    assert errors[1].startswith("turn 2: invalid tool call: LBPTool")


def test_st_grpo_adapters_sum_to_the_pure_total():
    inputs = episode_inputs()
    funcs, weights = st_grpo_trl_rewards()
    total = weighted_sum(funcs, weights, inputs, [""] * len(inputs), [[1]] * len(inputs))
    pure = [st_grpo_reward(parse_episode(e["episode_turns"]), e["label"]).total for e in inputs]
    # first episode: FFTTool is not allowed; -1 + 1 + 1 (the ZoomIn call) = 1
    assert total == pytest.approx(pure)
    assert total[0] == 1


def test_logged_names_are_the_component_names():
    # GRPOTrainer logs rewards/<get_callable_name(f)>/mean; partials are unwrapped to the function's name.
    names = [
        get_callable_name(f)
        for helper in (rft_fas_trl_rewards, dt_grpo_trl_rewards, st_grpo_trl_rewards)
        for f in helper()[0]
    ]
    assert names == [
        "r_format",
        "r_cls",
        "r_res",
        "r_fast",
        "r_rsn",
        "r_tool",
        "r_st_format",
        "r_st_accuracy",
        "r_st_tool",
    ]


@pytest.mark.parametrize("helper", [rft_fas_trl_rewards, dt_grpo_trl_rewards, st_grpo_trl_rewards])
def test_reward_functions_pickle(helper):
    # Ray (the reward service) and multi-process data loading ship reward functions by pickling them.
    funcs, _ = helper()
    inputs = episode_inputs()
    completions, ids = [RFT_TEXTS[0]] * len(inputs), [[1]] * len(inputs)
    for func, copy in zip(funcs, pickle.loads(pickle.dumps(funcs)), strict=True):
        assert call_like_trl(copy, inputs, completions, ids) == call_like_trl(func, inputs, completions, ids)


def test_episode_adapters_need_the_rollout_field():
    with pytest.raises(TypeError, match="episode_turns"):
        call_like_trl(r_fast, EPISODE_INPUTS, [""] * 5, [[1]] * 5)


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "a"}], "a"),
        (
            [
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "image"},
                        {"type": "text", "text": "b"},
                    ],
                }
            ],
            "ab",
        ),
        ([{"role": "assistant", "content": None}], ""),
        ([], ""),
    ],
)
def test_completion_text(completion, text):
    assert completion_text(completion) == text


# The adapters inside TRL's GRPOTrainer on the tiny model (CPU, a few seconds per step).


@pytest.fixture(scope="module")
def tiny_qwen(model_cache):
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny")


class Spy:
    """A zero-weight reward function recording what TRL passed, so the pure functions can be re-applied."""

    __name__ = "spy"

    def __init__(self):
        self.calls = []

    def __call__(self, completions, completion_ids, **kwargs):
        self.calls.append({"completions": completions, "completion_ids": completion_ids, **kwargs})
        return [0.0] * len(completions)


def grpo_trainer(model_dir, tmp_path, reward_funcs, reward_weights, dataset, **kwargs):
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        num_generations=2,
        per_device_train_batch_size=4,
        max_completion_length=12,
        max_steps=2,
        learning_rate=1e-3,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        seed=0,
        reward_weights=reward_weights,
    )
    return GRPOTrainer(
        model=AutoModelForImageTextToText.from_pretrained(model_dir),
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=dataset,
        processing_class=AutoProcessor.from_pretrained(model_dir),
        **kwargs,
    )


def logged_steps(trainer):
    return [entry for entry in trainer.state.log_history if "rewards/spy/mean" in entry]


def mean(values):
    return sum(values) / len(values)


def text_dataset(n):
    from datasets import ClassLabel, Dataset, Features, Value

    prompt = [{"role": "user", "content": "Is this photo of a real person?"}]
    features = Features(
        {
            "prompt": [{"role": Value("string"), "content": Value("string")}],
            "label": ClassLabel(names=["live", "spoof"]),
        }
    )
    return Dataset.from_dict({"prompt": [prompt] * n, "label": [i % 2 for i in range(n)]}, features=features)


def test_grpo_trainer_logs_the_pure_rft_fas_components(tiny_qwen, tmp_path):
    spy = Spy()
    funcs, weights = rft_fas_trl_rewards(RftFasCoefficients(max_length=10))  # small L: R_res varies
    trainer = grpo_trainer(tiny_qwen, tmp_path, [*funcs, spy], [*weights, 0.0], text_dataset(8))
    trainer.train()
    steps = logged_steps(trainer)
    assert len(steps) == len(spy.calls) == 2
    for entry, batch in zip(steps, spy.calls, strict=True):
        pure = [
            rft_fas_reward(completion_text(c), label, len(ids), RftFasCoefficients(max_length=10))
            for c, ids, label in zip(
                batch["completions"], batch["completion_ids"], batch["label"], strict=True
            )
        ]
        assert entry["rewards/r_format/mean"] == pytest.approx(mean([r.format for r in pure]))
        assert entry["rewards/r_cls/mean"] == pytest.approx(mean([r.cls for r in pure]))
        assert entry["rewards/r_res/mean"] == pytest.approx(mean([r.res for r in pure]), abs=1e-6)
        assert entry["reward"] == pytest.approx(mean([r.total for r in pure]), abs=1e-6)
        # Every completion has tokens, so R_res is never 0 and the comparison above is not vacuous.
        assert all(r.res != 0 for r in pure)


def scripted_rollout(episodes):
    """A rollout function returning scripted episodes, as the multi-turn rollout server will (issue #5)."""

    def rollout(prompts, trainer):
        tokenizer = trainer.processing_class.tokenizer
        chosen = [episodes[i % len(episodes)] for i in range(len(prompts))]
        prompt_ids = [
            tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=False)
            for p in prompts
        ]
        completion_ids = [
            [*tokenizer.encode("\n".join(turns), add_special_tokens=False), tokenizer.eos_token_id]
            for turns in chosen
        ]
        logprobs = [[0.0] * len(ids) for ids in completion_ids]
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": logprobs,
            "episode_turns": chosen,
        }

    return rollout


def test_grpo_trainer_passes_the_rollout_episode_turns_to_the_dt_grpo_adapters(
    tiny_qwen, tmp_path, monkeypatch
):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    spy = Spy()
    funcs, weights = dt_grpo_trl_rewards()
    trainer = grpo_trainer(
        tiny_qwen,
        tmp_path,
        [*funcs, spy],
        [*weights, 0.0],
        text_dataset(8),
        rollout_func=scripted_rollout(EPISODES[:4]),
    )
    trainer.train()
    steps = logged_steps(trainer)
    assert len(steps) == 2
    for entry, batch in zip(steps, spy.calls, strict=True):
        assert batch["episode_turns"] == EPISODES[:4]
        pure = [
            dt_grpo_reward(parse_episode(turns), label)
            for turns, label in zip(batch["episode_turns"], batch["label"], strict=True)
        ]
        assert entry["rewards/r_fast/mean"] == pytest.approx(mean([r.fast for r in pure]))
        assert entry["rewards/r_rsn/mean"] == pytest.approx(mean([r.reasoning for r in pure]))
        assert entry["rewards/r_tool/mean"] == pytest.approx(mean([r.tool for r in pure]))
        assert entry["reward"] == pytest.approx(mean([r.total for r in pure]))
