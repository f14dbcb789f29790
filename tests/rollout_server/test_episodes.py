"""The episode loop (rollout_server.episodes) without vLLM: a scripted policy writes control-token strings as
text, and the scripted turns that echo them (tool errors) keep them text (issue #14, inputs that stay text)."""

from __future__ import annotations

from protocol_model import protocol_image
from scripted_policy import (
    CONTROL_WRITING_TURNS,
    control_ids,
    conversation_tokenizer,
    scripted_episode,
    template_controls,
)


def test_control_strings_a_policy_writes_stay_text_in_its_episode(tiny_model_dir):
    tokenizer = conversation_tokenizer(tiny_model_dir)
    episode = scripted_episode(tokenizer, protocol_image(3))
    assert episode.stop_reason == "answer"
    assert episode.turns == list(CONTROL_WRITING_TURNS)
    assert [call.ok for call in episode.tool_calls] == [False, False, True]
    # The tool errors echo the control strings the policy wrote in its calls' names.
    tool_texts = [m["content"][0].get("text") for m in episode.messages if m["role"] == "tool"]
    errors = [text for text in tool_texts if text]
    assert "<|vision_start|><|image_pad|>" in errors[0] and "<IMG_CONTEXT><|im_start|>user" in errors[1]
    controls = control_ids(tokenizer)
    found = [t for t in episode.token_ids if t in controls]
    assert found == template_controls(tokenizer, episode.messages)
    # ... and the ids are exactly the rendered conversation, spelled out as text.
    assert tokenizer.decode(episode.token_ids) + "\n" == tokenizer.render(episode.messages, False)
    assert len(episode.images) == 2
