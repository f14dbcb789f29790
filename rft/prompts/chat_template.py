"""The chat template shared by the rollout server and the trainer.

It follows Qwen2.5's ChatML layout with Hermes-style tool calls (the format paper 003 adopts, Appendix B.1):
tool schemas go into the system turn inside <tools></tools>, an assistant's calls are rendered as
<tool_call>{"name": ..., "arguments": ...}</tool_call>, and tool results come back as a user turn wrapped in
<tool_response></tool_response>, images included. Only the image placeholder differs between architectures.
"""

from __future__ import annotations

# Qwen2.5-VL's processor expands one <|image_pad|> per image into the right number of patch tokens;
# InternVL's processor expands one <IMG_CONTEXT> into <img><IMG_CONTEXT>...</img>.
IMAGE_PLACEHOLDER = {
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "internvl3": "<IMG_CONTEXT>",
}

DEFAULT_SYSTEM = "You are a helpful assistant."

_TEMPLATE = r"""
{%- macro render_content(content) -%}
{%- if content is string -%}{{- content -}}
{%- elif content is not none -%}
{%- for part in content -%}
{%- if part.type == 'image' or part.type == 'image_url' or 'image' in part -%}{{- '@@IMAGE@@' -}}
{%- elif part.type == 'text' -%}{{- part.text -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- macro render_tool_call(call) -%}
{%- set fn = call.function if call.function is defined else call -%}
{{- '<tool_call>\n{"name": "' + fn.name + '", "arguments": ' -}}
{{- fn.arguments if fn.arguments is string else fn.arguments | tojson -}}
{{- '}\n</tool_call>' -}}
{%- endmacro -%}
{%- if messages[0].role == 'system' -%}
{%- set system_text = render_content(messages[0].content) -%}
{%- set rest = messages[1:] -%}
{%- else -%}
{%- set system_text = '@@DEFAULT_SYSTEM@@' -%}
{%- set rest = messages -%}
{%- endif -%}
{{- '<|im_start|>system\n' + system_text -}}
{%- if tools -%}
{{- '\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n' -}}
{{- 'You are provided with function signatures within <tools></tools> XML tags:\n<tools>' -}}
{%- for tool in tools -%}{{- '\n' + tool | tojson -}}{%- endfor -%}
{{- '\n</tools>\n\nFor each function call, return a json object with function name and arguments within ' -}}
{{- '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": ' -}}
{{- '<args-json-object>}\n</tool_call>' -}}
{%- endif -%}
{{- '<|im_end|>\n' -}}
{%- for message in rest -%}
{%- if message.role == 'user' -%}
{{- '<|im_start|>user\n' + render_content(message.content) + '<|im_end|>\n' -}}
{%- elif message.role == 'assistant' -%}
{{- '<|im_start|>assistant\n' -}}
{%- generation -%}
{{- render_content(message.content) -}}
{%- for call in message.tool_calls or [] -%}
{%- if not loop.first or message.content -%}{{- '\n' -}}{%- endif -%}
{{- render_tool_call(call) -}}
{%- endfor -%}
{{- '<|im_end|>' -}}
{%- endgeneration -%}
{{- '\n' -}}
{%- elif message.role == 'tool' -%}
{%- if loop.first or rest[loop.index0 - 1].role != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + render_content(message.content) + '\n</tool_response>' -}}
{%- if loop.last or rest[loop.index0 + 1].role != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""


def chat_template(arch: str) -> str:
    """The Jinja chat template for `arch` ('qwen2_5_vl' or 'internvl3')."""
    if arch not in IMAGE_PLACEHOLDER:
        raise ValueError(f"unknown architecture '{arch}'; expected one of {sorted(IMAGE_PLACEHOLDER)}")
    return (
        _TEMPLATE.strip()
        .replace("@@IMAGE@@", IMAGE_PLACEHOLDER[arch])
        .replace("@@DEFAULT_SYSTEM@@", DEFAULT_SYSTEM)
    )


def template_arch(template: str | None) -> str:
    """The architecture whose project template `template` is (a processor's, after
    rft.models.loading.install_chat_template)."""
    for arch in IMAGE_PLACEHOLDER:
        if template == chat_template(arch):
            return arch
    raise ValueError(
        "the processor does not carry the project's chat template; "
        "install it with rft.models.loading.install_chat_template"
    )
