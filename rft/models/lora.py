"""Where LoRA goes, for every stage (SFT and GRPO): the language model's attention and MLP projections of
both architectures (Qwen2.5-VL and InternVL3 name them alike under `language_model.layers.N`); the vision
tower stays frozen. A regex over module names, as PEFT's `target_modules` takes it."""

LANGUAGE_MODEL_LORA_TARGETS = (
    r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
)
