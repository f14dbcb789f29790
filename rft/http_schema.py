"""The request bodies of both services' OpenAPI schemas.

Both services read their bodies themselves (their own size limits, pydantic-core's JSON parser), so FastAPI
cannot see what a route accepts and its schema would say "no body". `describe_request_bodies` writes each
route's body into the schema from the same pydantic model the route parses with, so the schema (and the
fuzzer that reads it, tests/fuzz) stays true to the code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

BINARY: Literal["binary"] = "binary"
_REF_TEMPLATE = "#/components/schemas/{model}"


def describe_request_bodies(
    schema: dict[str, Any],
    bodies: dict[str, type[BaseModel] | Literal["binary"]],
    examples: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """`schema` (FastAPI's OpenAPI dict) with the body of each POST path of `bodies`: a pydantic model (JSON)
    or BINARY (application/octet-stream); `examples` are valid bodies of a path, shown to readers and used
    first by a fuzzer."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, body in bodies.items():
        operation = schema["paths"][path]["post"]
        if body == BINARY:
            content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        else:
            content = {"application/json": {"schema": _component(body, components)}}
        media = next(iter(content.values()))
        if examples and path in examples:
            media["examples"] = {f"example{i}": {"value": v} for i, v in enumerate(examples[path])}
        operation["requestBody"] = {"required": True, "content": content}
    return schema


def _component(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    """A reference to `model`'s schema, added to `components` with every model it uses."""
    model_schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    components.update(model_schema.pop("$defs", {}))
    components[model.__name__] = model_schema
    return {"$ref": _REF_TEMPLATE.format(model=model.__name__)}
