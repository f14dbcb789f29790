"""Where LoRA goes, for every stage (SFT and GRPO): the language model's attention and MLP projections of
both architectures (Qwen2.5-VL and InternVL3 name them alike under `language_model.layers.N`); the vision
tower stays frozen. A regex over module names, as PEFT's `target_modules` takes it."""

LANGUAGE_MODEL_LORA_TARGETS = (
    r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
)

# Paper 002 (caption supervision): LoRA on the attention projections q/k/v only, of the language model, where
# the image tokens and the text fuse (its "language model and multimodal fusion/decoder modules"); the vision
# tower stays frozen. The lm_head and the projector are trained whole (CAPTION_TRAINED_MODULES).
CAPTION_LORA_TARGETS = r".*language_model\.layers\.\d+\.self_attn\.(q|k|v)_proj"
