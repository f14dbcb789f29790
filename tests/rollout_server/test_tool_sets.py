"""A run's tool set (run.tools) in the episode loop without vLLM: the prompt lists only the set's tools, and a
call to a tool outside it is not run but answered like a call to an unknown tool."""

from __future__ import annotations

from protocol_model import protocol_image
from scripted_policy import FAST, FFT_CALL, conversation_tokenizer, scripted_episode

from rft.models.conversation import ConversationTokenizer
from rft.tools.schemas import tool_schemas
from rft.tools.toolsets import resolve_tool_set

ZOOM_CALL = '<think>closer</think><tool_call>\n{"name": "ZoomInTool", "arguments": {"bbox": [8, 8, 40, 40]}}\n</tool_call>'
ANSWER = "<think>done</think><answer><Spoof></answer>"


def tokenizer_with(model_dir, tool_set: str) -> ConversationTokenizer:
    base = conversation_tokenizer(model_dir)
    return ConversationTokenizer(base.processor, base.arch, tools=tool_schemas(resolve_tool_set(tool_set)))


def test_the_prompt_lists_only_the_tools_of_the_set(tiny_model_dir):
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    texture = tokenizer_with(tiny_model_dir, "zoom_in+texture").render(messages, True)
    assert '"name": "ZoomInTool"' in texture and '"name": "LBPTool"' in texture
    assert '"name": "FFTTool"' not in texture and '"name": "HOGTool"' not in texture
    every = conversation_tokenizer(tiny_model_dir).render(messages, True)
    assert all(f'"name": "{name}"' in every for name in ("FFTTool", "HOGTool", "EdgeDetectionTool"))


def test_a_call_outside_the_set_is_answered_as_an_unknown_tool_and_not_run(tiny_model_dir):
    tokenizer = tokenizer_with(tiny_model_dir, "zoom_in")
    episode = scripted_episode(tokenizer, protocol_image(3), turns=(FAST, FFT_CALL, ZOOM_CALL, ANSWER))
    assert episode.stop_reason == "answer"
    fft, zoom = episode.tool_calls
    assert (fft.name, fft.ok, zoom.name, zoom.ok) == ("FFTTool", False, "ZoomInTool", True)
    assert fft.error == "'FFTTool': unknown tool; expected one of ZoomInTool"
    assert len(episode.images) == 2  # the face and the zoom: FFTTool's picture never came back
    tool_texts = [m["content"][0].get("text") for m in episode.messages if m["role"] == "tool"]
    assert tool_texts[0] == "Error: 'FFTTool': unknown tool; expected one of ZoomInTool"


def test_every_tool_runs_with_the_default_set(tiny_model_dir):
    episode = scripted_episode(
        conversation_tokenizer(tiny_model_dir), protocol_image(3), turns=(FAST, FFT_CALL, ANSWER)
    )
    assert [call.ok for call in episode.tool_calls] == [True]


def test_a_server_offers_its_tools_set_and_a_trainer_refuses_one_that_differs(tmp_path, capsys):
    import pytest

    from rft.errors import RunSetupError
    from rft.jobs.connect import check_tool_set
    from rft.tools import TOOL_NAMES
    from rollout_server.cli import parse_args, worker_argv

    (tmp_path / "config.json").write_text("{}")
    args = parse_args(["--model", str(tmp_path), "--tools", "zoom_in+texture"])
    assert args.tool_names == ("ZoomInTool", "LBPTool")
    argv = worker_argv(args, 8201)
    assert argv[argv.index("--tools") + 1] == "zoom_in+texture"
    assert parse_args(["--model", str(tmp_path), "--tools", "HOGTool,ZoomInTool"]).tool_names == (
        "ZoomInTool",
        "HOGTool",
    )
    with pytest.raises(SystemExit):
        parse_args(["--model", str(tmp_path), "--tools", "zoom"])
    assert "--tools: unknown tool set 'zoom'" in capsys.readouterr().err

    served = {"http://a": {"max_tool_calls": 3, "tools": ["ZoomInTool", "LBPTool"]}}
    check_tool_set(served, ("ZoomInTool", "LBPTool"))
    with pytest.raises(
        RunSetupError, match=r"offers the tools ZoomInTool, LBPTool but run.tools is ZoomInTool;"
    ):
        check_tool_set(served, ("ZoomInTool",))
    # A server that does not say (an older one) offers all six.
    check_tool_set({"http://old": {"max_tool_calls": 3}}, TOOL_NAMES)
    with pytest.raises(RunSetupError, match="restart it with --tools ZoomInTool"):
        check_tool_set({"http://old": {"max_tool_calls": 3}}, ("ZoomInTool",))
