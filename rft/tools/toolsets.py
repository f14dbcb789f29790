"""Tool sets: which of the six tools a run may use (paper 003, Table 2's ablation arms).

A tool set is either a name from TOOL_SETS or an explicit list of tool names. Table 2 groups the tools as
frequency (FFT, Wavelet), texture (LBP) and structure (HOG, EdgeDetection); ZoomIn is in every arm. The
resolved set is a tuple in TOOL_NAMES order, so that two spellings of one set give the same prompt and key.

    resolve_tool_set("zoom_in+frequency")  -> ("ZoomInTool", "FFTTool", "WaveletTransformTool")
    resolve_tool_set(["HOGTool", "ZoomInTool"])  -> ("ZoomInTool", "HOGTool")
"""

from __future__ import annotations

from collections.abc import Iterable

from rft.tools.errors import UnknownToolError, short_repr
from rft.tools.toolbox import TOOL_NAMES

ALL_TOOLS = "all"
FREQUENCY_TOOLS = ("FFTTool", "WaveletTransformTool")
TEXTURE_TOOLS = ("LBPTool",)
STRUCTURE_TOOLS = ("EdgeDetectionTool", "HOGTool")  # in TOOL_NAMES order, as every resolved set is

TOOL_SETS: dict[str, tuple[str, ...]] = {
    "zoom_in": ("ZoomInTool",),
    "zoom_in+frequency": ("ZoomInTool", *FREQUENCY_TOOLS),
    "zoom_in+texture": ("ZoomInTool", *TEXTURE_TOOLS),
    "zoom_in+structure": ("ZoomInTool", *STRUCTURE_TOOLS),
    ALL_TOOLS: TOOL_NAMES,
}

ToolSet = str | list[str] | tuple[str, ...]


class ToolSetError(ValueError):
    """A tool set that names no known set or an unknown tool, said in one line with the known ones."""


def resolve_tool_set(tools: ToolSet) -> tuple[str, ...]:
    """The tool names of `tools` (a set name or a list of tool names), in TOOL_NAMES order."""
    if isinstance(tools, str):
        if tools not in TOOL_SETS:
            raise ToolSetError(
                f"unknown tool set {short_repr(tools)}; known sets: {', '.join(TOOL_SETS)} "
                "(or give a list of tool names)"
            )
        return TOOL_SETS[tools]
    return _checked_names(tools)


def _checked_names(names: Iterable[str]) -> tuple[str, ...]:
    names = list(names)
    for name in names:
        if name not in TOOL_NAMES:
            raise ToolSetError(f"unknown tool {short_repr(name)}; known tools: {', '.join(TOOL_NAMES)}")
    if not names:
        raise ToolSetError(f"the tool list is empty; name at least one of {', '.join(TOOL_NAMES)}")
    return tuple(name for name in TOOL_NAMES if name in names)


def tool_set_label(tools: ToolSet) -> str:
    """A short, folder-safe name of the set: its TOOL_SETS name when it is one, else its tools joined."""
    names = resolve_tool_set(tools)
    for label, members in TOOL_SETS.items():
        if members == names:
            return label
    return "+".join(name.removesuffix("Tool") for name in names)


def unavailable_tool_error(name: str, allowed: Iterable[str]) -> UnknownToolError:
    """What a call to a tool outside the run's set gets: the same error as a call to an unknown tool,
    naming the tools this run offers (the ones its prompt lists)."""
    return UnknownToolError(short_repr(name), f"unknown tool; expected one of {', '.join(allowed)}")


def tool_set_from_text(text: str) -> tuple[str, ...]:
    """A command line's tool set: a set name, or comma-separated tool names (`--tools HOGTool,ZoomInTool`)."""
    if "," in text or text in TOOL_NAMES:
        return resolve_tool_set([name.strip() for name in text.split(",")])
    return resolve_tool_set(text)
