"""The six visual tools of TAR-FAS (paper 003, section 3.1.1; Appendix A.2, Figure S8).

Each tool is a pure, deterministic function from an image and validated arguments to an RGB uint8 picture
that the policy model sees in the next turn: ZoomInTool (a crop, enlarged), FFTTool and
WaveletTransformTool (frequency), LBPTool (texture), EdgeDetectionTool and HOGTool (structure).

    from rft.tools import run_tool, tool_schemas
    picture = run_tool("ZoomInTool", face, {"bbox": [60, 80, 160, 140]})
    processor.apply_chat_template(messages, tools=tool_schemas())

Every error from a bad call is a ToolError (a ValueError) whose message is one line naming the tool.
"""

from rft.tools.errors import ToolArgumentError, ToolError, ToolInputError, UnknownToolError
from rft.tools.schemas import tool_schemas
from rft.tools.toolbox import TOOL_NAMES, TOOLS, ToolSpec, run_tool, validate_arguments

__all__ = [
    "TOOLS",
    "TOOL_NAMES",
    "ToolArgumentError",
    "ToolError",
    "ToolInputError",
    "ToolSpec",
    "UnknownToolError",
    "run_tool",
    "tool_schemas",
    "validate_arguments",
]
