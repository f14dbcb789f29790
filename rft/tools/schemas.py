"""The tools as JSON Schema function descriptions, the form paper 003 shows them to the model (Appendix B.1:
"the tool description follows Json Schema and adopt the Hermes template used in Qwen2.5-VL").

The result is what `processor.apply_chat_template(..., tools=tool_schemas())` takes:
rft/prompts/chat_template.py prints each entry as one JSON line inside <tools></tools> in the system turn.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from rft.tools.toolbox import TOOL_NAMES, tool_spec


def tool_schemas(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI-style function schemas, {"type": "function", "function": {"name", "description", "parameters"}},
    of the tools `names` in that order (duplicates dropped), or of all six in TOOL_NAMES order.

    Raises UnknownToolError for a name that is not a tool. Each call returns fresh dicts.
    """
    if isinstance(names, str):
        raise TypeError(f"names must be an iterable of tool names, not the string {names!r}")
    selected = TOOL_NAMES if names is None else tuple(dict.fromkeys(names))
    return [copy.deepcopy(_function_schema(name)) for name in selected]


@functools.cache
def _function_schema(name: str) -> dict[str, Any]:
    spec = tool_spec(name)
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": parameters_schema(spec.arguments),
        },
    }


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of an argument model without pydantic's generated titles, which would only add
    prompt tokens that say nothing the property names do not."""
    return _without_titles(model.model_json_schema())


def _without_titles(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: (
            {name: _without_titles(sub) for name, sub in value.items()}
            if key == "properties"
            else _without_titles(value)
        )
        for key, value in node.items()
        if key != "title"
    }
