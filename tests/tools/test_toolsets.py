"""Tool sets (paper 003, Table 2) and the run.tools config field."""

from __future__ import annotations

import pytest

from rft.config import ConfigError, load_config
from rft.tools import TOOL_NAMES
from rft.tools.toolsets import TOOL_SETS, ToolSetError, resolve_tool_set, tool_set_label


def test_table2_sets_all_contain_zoom_in_and_group_the_tools_as_the_paper():
    assert resolve_tool_set("zoom_in") == ("ZoomInTool",)
    assert resolve_tool_set("zoom_in+frequency") == ("ZoomInTool", "FFTTool", "WaveletTransformTool")
    assert resolve_tool_set("zoom_in+texture") == ("ZoomInTool", "LBPTool")
    assert resolve_tool_set("zoom_in+structure") == ("ZoomInTool", "EdgeDetectionTool", "HOGTool")
    assert resolve_tool_set("all") == TOOL_NAMES
    assert all("ZoomInTool" in tools for tools in TOOL_SETS.values())


def test_an_explicit_list_is_put_in_tool_order_and_labelled_by_its_set_name():
    assert resolve_tool_set(["LBPTool", "ZoomInTool", "LBPTool"]) == ("ZoomInTool", "LBPTool")
    assert tool_set_label(["LBPTool", "ZoomInTool"]) == "zoom_in+texture"
    assert tool_set_label(["HOGTool", "FFTTool"]) == "FFT+HOG"


@pytest.mark.parametrize(
    ("tools", "named"),
    [
        ("zoom", "'zoom'; known sets: zoom_in"),
        (["ZoomInTool", "Foo"], "'Foo'; known tools: ZoomInTool"),
        ([], "empty"),
    ],
)
def test_a_bad_set_is_one_line_naming_it_and_the_known_ones(tools, named):
    with pytest.raises(ToolSetError, match=named) as caught:
        resolve_tool_set(tools)
    assert "\n" not in str(caught.value)


def test_run_tools_defaults_to_all_six_and_a_bad_value_names_the_key():
    assert load_config("demo_cpu").run.tool_names == TOOL_NAMES
    assert load_config("demo_cpu", ["run.tools=zoom_in"]).run.tool_names == ("ZoomInTool",)
    with pytest.raises(
        ConfigError, match=r"invalid 'run.tools': unknown tool set 'zoom'; known sets: zoom_in"
    ):
        load_config("demo_cpu", ["run.tools=zoom"])
