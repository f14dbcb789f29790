"""A tiny model that has memorised one paper-003 trajectory, so that tests get real multi-turn episodes
(fast answer, a tool call, an answer) out of real vLLM sampling instead of random tokens.

It is trained with the same `ConversationTokenizer` the server and trainer use: compact ids built turn by
turn, images expanded by the processor, cross-entropy on the model's tokens only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, load_policy
from rft.prompts.episodes import (
    assistant_message,
    first_turn_messages,
    reexamine_message,
    tool_result_message,
)
from rft.tools import run_tool

FAST = "<Spoof><reason>flat print texture</reason>"
CALL = '<think>check the spectrum</think><tool_call>\n{"name": "FFTTool", "arguments": {}}\n</tool_call>'
ANSWER = "<think>periodic peaks</think><answer><Spoof></answer>"
# (model text, tool it calls or None): the default trajectory makes one FFTTool call.
ONE_TOOL = [(FAST, None), (CALL, "FFTTool"), (ANSWER, None)]
THREE_TOOLS = [
    (FAST, None),
    (CALL, "FFTTool"),
    (
        '<think>check the texture</think><tool_call>\n{"name": "LBPTool", "arguments": {}}\n</tool_call>',
        "LBPTool",
    ),
    (
        '<think>check the edges</think><tool_call>\n{"name": "EdgeDetectionTool", "arguments": {}}\n</tool_call>',
        "EdgeDetectionTool",
    ),
    (ANSWER, None),
]


def protocol_image(seed: int = 0, size: int = 224) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8"))


def trajectory_ids(
    tokenizer: ConversationTokenizer, image: Image.Image, turns: list = ONE_TOOL
) -> tuple[list[int], list[int], list]:
    """Compact ids, the model-token mask and the images of a trajectory (`turns`, tools run for real)."""
    messages = first_turn_messages()
    ids = tokenizer.prompt_ids(messages)
    mask = [0] * len(ids)
    images = [image]
    for index, (text, tool) in enumerate(turns):
        turn = [*tokenizer.encode(text), tokenizer.end_of_turn_id]
        ids += turn
        mask += [1] * len(turn)
        messages = [*messages, assistant_message(text)]
        if index == len(turns) - 1:
            break
        follow_up = [reexamine_message()] if index == 0 else [tool_result_message()]
        if tool is not None:
            images.append(Image.fromarray(run_tool(tool, image, {})))
        scripted = tokenizer.continuation_ids(messages, follow_up)
        ids += scripted
        mask += [0] * len(scripted)
        messages = messages + follow_up
    return ids, mask, images


def train_protocol_model(
    base_dir: Path, out_dir: Path, steps: int = 120, lr: float = 3e-3, turns: list = ONE_TOOL
) -> Path:
    """Copy `base_dir` to `out_dir` and overfit it on the trajectory (a few seconds per 10 steps)."""
    if (out_dir / "protocol_model.done").is_file():
        return out_dir
    model, processor = load_policy(base_dir)
    tokenizer = ConversationTokenizer(processor, detect_arch(base_dir))
    ids, mask, images = trajectory_ids(tokenizer, protocol_image(), turns)
    expanded = tokenizer.expand_images(ids, images)
    labels = expanded.input_ids.clone()
    labels[expanded.spread(torch.tensor(mask), fill=0) == 0] = -100
    inputs = expanded.model_inputs()
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    threads = torch.get_num_threads()
    # One thread: on a shared 2-core machine two threads made each step about 5x slower, not faster.
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            loss = model(**inputs, labels=labels[None]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(base_dir, out_dir)
    model.eval().save_pretrained(out_dir)
    (out_dir / "protocol_model.done").write_text(f"final loss {loss.item():.4f}\n")
    return out_dir
