"""The tiny-model factory: sizes, a loadable HF directory, the chat template, and transformers generation."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from rft.models.tiny import PRESETS, build_tiny_model, count_parameters, main
from rft.models.tokenizer import train_tokenizer
from rft.prompts import tar_fas
from rft.tools import tool_schemas


def image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((224, 224, 3)) * 255).astype("uint8"))


def first_turn() -> list[dict]:
    return [
        {"role": "system", "content": tar_fas.SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": tar_fas.FIRST_ROUND_QUERY}]},
    ]


def test_tiny_preset_is_under_two_million_parameters(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / "tiny_model.json").read_text())
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert count_parameters(model) == manifest["parameters"] < 2_000_000


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2_5_vl", "internvl3"])
def test_small_preset_is_50_to_150_million_parameters(arch):
    model, _ = build_tiny_model(arch, "small")
    assert 50_000_000 <= count_parameters(model) <= 150_000_000


def test_head_dim_suits_vllm_cpu_attention():
    assert all(p.hidden // p.heads >= 64 for p in PRESETS.values())


def test_special_tokens_are_single_tokens(tiny_model_dir):
    tokenizer = AutoProcessor.from_pretrained(tiny_model_dir).tokenizer
    for token in ["<|im_start|>", "<|im_end|>", "<|image_pad|>", "<tool_call>", "</tool_call>"]:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    assert tokenizer.decode(tokenizer.encode("<think>Moiré?</think>")) == "<think>Moiré?</think>"


def test_a_reasoning_turns_decision_is_one_token_and_text_round_trips(tiny_model_dir):
    # docs/EFFICACY.md section 1: the demo model learns paper 003's format only with these kept whole.
    tokenizer = AutoProcessor.from_pretrained(tiny_model_dir).tokenizer
    call = json.dumps({"name": "FFTTool", "arguments": {"expectation": "periodic peaks if recaptured"}})
    turns = {
        "call": f"<think>I will check the spectrum.</think>\n<tool_call>\n{call}\n</tool_call>",
        "answer": "<think>So the face is real.</think>\n<answer><Real></answer>",
    }
    pieces = {
        k: [tokenizer.decode([i]) for i in tokenizer.encode(t, add_special_tokens=False)]
        for k, t in turns.items()
    }
    assert '</think>\n<tool_call>\n{"name": "' in pieces["call"] and "FFTTool" in pieces["call"]
    assert pieces["call"][pieces["call"].index("FFTTool") + 1] == '", "arguments": {'
    assert pieces["answer"][-3:] == ["</think>\n<answer>", "<Real>", "</answer>"]
    for turn in turns.values():
        assert tokenizer.decode(tokenizer.encode(turn, add_special_tokens=False)) == turn


def test_each_tool_schema_in_the_system_turn_is_one_token_and_round_trips(tiny_model_dir):
    # The test models' system turn: the schemas were ~920 of its ~1,080 tokens (docs/PERFORMANCE.md).
    tokenizer = AutoProcessor.from_pretrained(tiny_model_dir).tokenizer
    arm = ["ZoomInTool", "FFTTool"]
    text = tokenizer.apply_chat_template(first_turn(), tools=tool_schemas(arm), tokenize=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    schema_ids = [i for i in ids if tokenizer.decode([i]).startswith('{"type": "function"')]
    assert [json.loads(tokenizer.decode([i]))["function"]["name"] for i in schema_ids] == arm
    assert len(ids) < 200
    assert tokenizer.decode(ids) == text


def test_the_demo_model_has_the_one_token_system_turn_too():
    # Its recipe was measured with it (docs/EFFICACY.md, "A one-token system turn").
    assert PRESETS["demo"].whole_schemas and not PRESETS["small"].whole_schemas


def test_without_whole_schemas_the_schemas_stay_text():
    # The `small` preset's (and a real checkpoint's) system turn: paper 003's prompt as plain text.
    tokenizer = train_tokenizer("qwen2_5_vl", vocab_size=2048)
    text = tokenizer.apply_chat_template(first_turn(), tools=tool_schemas(), tokenize=False)
    assert len(tokenizer.encode(text, add_special_tokens=False)) > 1000


def test_chat_template_renders_images_tool_calls_and_turns(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tools = [{"type": "function", "function": {"name": "FFT", "parameters": {"type": "object"}}}]
    conversation = [
        *first_turn(),
        {"role": "assistant", "content": "Real<reason>skin</reason>"},
        {"role": "user", "content": tar_fas.TOOL_GUIDANCE},
        {
            "role": "assistant",
            "content": "<think>check</think>",
            "tool_calls": [{"type": "function", "function": {"name": "FFT", "arguments": {}}}],
        },
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": "FFT result"}]},
        {"role": "assistant", "content": "<think>peaks</think> <answer><Spoof></answer>"},
    ]
    text = processor.apply_chat_template(conversation, tools=tools, tokenize=False)
    assert text.startswith("<|im_start|>system\n" + tar_fas.SYSTEM_PROMPT + "\n\n# Tools")
    assert text.count("<|im_start|>assistant\n") == 3
    assert '<tool_call>\n{"name": "FFT", "arguments": {}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>user\n<tool_response>\n" in text
    image_token = "<|image_pad|>" if "qwen" in tiny_model_dir.name else "<IMG_CONTEXT>"
    assert text.count(image_token) == 2
    # The processor expands every image, the tool's output included, into patch tokens.
    inputs = processor(text=[text], images=[image(0), image(1)], return_tensors="pt")
    assert inputs["input_ids"].shape[1] > 2 * 60


def test_generation_prompt_ends_with_assistant_turn(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    text = processor.apply_chat_template(first_turn(), add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_transformers_generates_from_an_image_prompt(tiny_model_dir):
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    text = processor.apply_chat_template(first_turn(), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text, text], images=[image(0), image(1)], return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = model.generate(**inputs, max_new_tokens=10, do_sample=True)
    new = out[:, inputs["input_ids"].shape[1] :]
    assert new.shape[0] == 2 and 1 <= new.shape[1] <= 10
    assert (new != processor.tokenizer.pad_token_id).any()


def test_cli_writes_a_loadable_directory(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["--arch", "qwen2_5_vl", "--out", str(out)]) == 0
    assert "parameters" in capsys.readouterr().out
    assert AutoModelForImageTextToText.from_pretrained(out).config.model_type == "qwen2_5_vl"
    assert not (tmp_path / "m.tmp").exists()


def test_cli_rejects_bad_image_size(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "m"), "--image-size", "100"])


def foreign_folder(path):
    """A folder the project did not make, with a file in it."""
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("keep me")
    return path


def test_cli_refuses_a_folder_it_did_not_make_and_leaves_it_untouched(tmp_path, capsys):
    foreign = foreign_folder(tmp_path / "mine")
    assert main(["--out", str(foreign)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rft tiny-model: error: --out {foreign}: folder exists and was not made by rft tiny-model; "
        "choose a new folder"
    )
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_cli_out_dot_dot_leaves_the_parent_folder_alone(tmp_path, monkeypatch, capsys):
    parent = foreign_folder(tmp_path / "parent")
    (parent / "here").mkdir()
    monkeypatch.chdir(parent / "here")
    assert main(["--out", ".."]) == 2
    assert "--out ..: folder exists and was not made by rft tiny-model" in capsys.readouterr().err
    assert sorted(p.name for p in parent.iterdir()) == ["here", "notes.txt"]


def test_cli_replaces_its_own_output_and_spares_a_sibling_it_did_not_make(tmp_path):
    out = tmp_path / "m"
    sibling = foreign_folder(tmp_path / "m.tmp")  # the old code used this name as its scratch folder
    assert main(["--out", str(out), "--seed", "1"]) == 0
    assert main(["--out", str(out), "--seed", "2"]) == 0
    assert json.loads((out / "tiny_model.json").read_text())["seed"] == 2
    assert [p.name for p in sibling.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "m.tmp"]


def test_a_foreign_folder_in_the_model_cache_is_a_config_error_naming_the_key(tmp_path):
    from rft.config import ConfigError
    from rft.models.loading import resolve_model_dir

    foreign_folder(tmp_path / "tiny-qwen2_5_vl-224")
    with pytest.raises(ConfigError, match=r"^model\.cache_dir: .*was not made by rft tiny-model"):
        resolve_model_dir(path=None, tiny_preset="tiny", arch="qwen2_5_vl", cache_dir=tmp_path)
    assert [p.name for p in (tmp_path / "tiny-qwen2_5_vl-224").iterdir()] == ["notes.txt"]
