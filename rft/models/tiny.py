"""Random-initialised Qwen2.5-VL and InternVL3 models at test and benchmark scale, built locally.

The result is an ordinary Hugging Face directory (config, safetensors, tokenizer, processor, chat template)
that transformers, TRL and vLLM load exactly as they load the released checkpoints; nothing is downloaded.

    rft tiny-model --arch qwen2_5_vl --preset tiny --out .cache/models/tiny-qwen2_5_vl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch
from transformers import (
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from rft.models.tokenizer import train_tokenizer
from rft.outputs import OutputDirError, replace_output_dir

ARCHS = ("qwen2_5_vl", "internvl3")


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of one preset. head_dim is hidden/heads; vLLM's CPU attention needs it to be 64 or more."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_intermediate: int
    vocab: int
    whole_schemas: bool = False  # each tool schema one token (rft.models.tokenizer.train_tokenizer)


PRESETS = {
    # Tests: about 1-2 M parameters; loads in vLLM's CPU build. A one-token-per-schema system turn keeps the
    # suite's sequences ~3x shorter.
    "tiny": Preset(128, 2, 2, 1, 256, 64, 2, 1, 128, 2048, whole_schemas=True),
    # The CPU demo: about 2 M parameters, deep and wide enough to learn paper 003's episode format from a few
    # hundred templated trajectories in minutes on 2 cores (docs/EFFICACY.md). One token per tool schema: its
    # training sequences a third as long, the demo within its 20 minutes (docs/EFFICACY.md, "A one-token system turn").
    "demo": Preset(128, 4, 2, 1, 384, 64, 2, 1, 128, 2048, whole_schemas=True),
    # Benchmarks: about 100 M parameters.
    "small": Preset(768, 12, 12, 2, 2048, 384, 8, 6, 1536, 8192),
}


COMMAND = "rft tiny-model"  # named in the marker of the folders it writes (rft.outputs)
MANIFEST = "tiny_model.json"

# Bumped whenever the tokenizer corpus or the architecture changes, so cached tiny models are rebuilt.
TINY_MODEL_VERSION = 6


def _round_up(value: int, multiple: int = 64) -> int:
    return (value + multiple - 1) // multiple * multiple


def text_config(preset: Preset, tokenizer: PreTrainedTokenizerFast) -> dict:
    """The Qwen2-family language model both architectures use (InternVL3's LLM is Qwen2.5)."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "vocab_size": _round_up(len(tokenizer)),
        "hidden_size": preset.hidden,
        "intermediate_size": preset.intermediate,
        "num_hidden_layers": preset.layers,
        "num_attention_heads": preset.heads,
        "num_key_value_heads": preset.kv_heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
    }


def qwen2_5_vl_config(preset: Preset, tokenizer: PreTrainedTokenizerFast) -> Qwen2_5_VLConfig:
    head_dim = preset.hidden // preset.heads
    # Qwen2.5-VL splits each rotary half into temporal/height/width sections in the ratio 16:24:24.
    quarter = head_dim // 2 // 8
    mrope = [2 * quarter, 3 * quarter, 3 * quarter]
    ids = tokenizer.convert_tokens_to_ids
    text = text_config(preset, tokenizer)
    text["rope_parameters"]["mrope_section"] = mrope
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config={
            "depth": preset.vision_layers,
            "hidden_size": preset.vision_hidden,
            "intermediate_size": preset.vision_intermediate,
            "num_heads": preset.vision_heads,
            "out_hidden_size": preset.hidden,
            "fullatt_block_indexes": [preset.vision_layers - 1],
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )


def internvl3_config(preset: Preset, tokenizer: PreTrainedTokenizerFast, image_size: int) -> InternVLConfig:
    ids = tokenizer.convert_tokens_to_ids
    patch = 14
    return InternVLConfig(
        vision_config={
            "hidden_size": preset.vision_hidden,
            "num_hidden_layers": preset.vision_layers,
            "num_attention_heads": preset.vision_heads,
            "intermediate_size": preset.vision_intermediate,
            "image_size": [image_size, image_size],
            "patch_size": [patch, patch],
        },
        text_config={"model_type": "qwen2", **text_config(preset, tokenizer)},
        image_token_id=ids("<IMG_CONTEXT>"),
        image_seq_length=internvl_image_seq_length(image_size, patch),
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )


def internvl_image_seq_length(image_size: int, patch: int = 14, downsample_ratio: float = 0.5) -> int:
    """Tokens per image tile after InternVL's pixel shuffle (e.g. 224 px, patch 14, ratio 0.5 -> 64)."""
    return int((image_size // patch) ** 2 * downsample_ratio**2)


def qwen2_5_vl_processor(tokenizer: PreTrainedTokenizerFast, image_size: int) -> Qwen2_5_VLProcessor:
    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessor(min_pixels=pixels, max_pixels=pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=pixels, max_pixels=pixels)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


def internvl3_processor(tokenizer: PreTrainedTokenizerFast, image_size: int) -> InternVLProcessor:
    size = {"height": image_size, "width": image_size}
    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=False),
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(size=size),
        image_seq_length=internvl_image_seq_length(image_size),
        chat_template=tokenizer.chat_template,
    )


def build_tiny_model(
    arch: str, preset: str = "tiny", image_size: int = 224, seed: int = 0
) -> tuple[PreTrainedModel, Qwen2_5_VLProcessor | InternVLProcessor]:
    """A random-initialised model of `arch` at `preset` size, with its processor (tokenizer included)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch '{arch}'; choose one of {', '.join(ARCHS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    sizes = PRESETS[preset]
    tokenizer = train_tokenizer(arch, vocab_size=sizes.vocab, whole_schemas=sizes.whole_schemas)
    torch.manual_seed(seed)
    if arch == "qwen2_5_vl":
        model = Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_config(sizes, tokenizer))
        processor = qwen2_5_vl_processor(tokenizer, image_size)
    else:
        model = InternVLForConditionalGeneration(internvl3_config(sizes, tokenizer, image_size))
        processor = internvl3_processor(tokenizer, image_size)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), processor


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_tiny_model(
    out_dir: Path, arch: str, preset: str = "tiny", image_size: int = 224, seed: int = 0
) -> Path:
    """Build and save to `out_dir`, atomically (rft.outputs.replace_output_dir). Returns `out_dir`. Raises
    OutputDirError, before building anything, when `out_dir` exists and was not made by this command."""
    out_dir = Path(out_dir)

    def write(staging: Path) -> None:
        model, processor = build_tiny_model(arch, preset, image_size, seed)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        manifest = {"arch": arch, "preset": preset, "image_size": image_size, "seed": seed}
        manifest["version"] = TINY_MODEL_VERSION
        manifest["sizes"] = dataclasses.asdict(PRESETS[preset])
        manifest["parameters"] = count_parameters(model)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))

    replace_output_dir(out_dir, COMMAND, write, legacy=_has_manifest)
    return out_dir


def ensure_tiny_model(cache_dir: Path, arch: str, preset: str = "tiny", image_size: int = 224) -> Path:
    """The cached model directory for (arch, preset, image_size), built on first use."""
    target = Path(cache_dir) / f"{preset}-{arch}-{image_size}"
    if _built_manifest(target) != (TINY_MODEL_VERSION, dataclasses.asdict(PRESETS[preset])):
        save_tiny_model(target, arch, preset, image_size)
    return target


def _has_manifest(model_dir: Path) -> bool:
    """A tiny model saved before output folders were marked."""
    return (model_dir / MANIFEST).is_file()


def _built_manifest(model_dir: Path) -> tuple[int | None, dict | None]:
    """The version and preset sizes a cached model was built with: a preset whose sizes changed is rebuilt."""
    manifest = model_dir / MANIFEST
    built = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return built.get("version"), built.get("sizes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rft tiny-model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=ARCHS, default="qwen2_5_vl")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--image-size", type=int, default=224, help="side of the input images (pixels)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder: new, or replaced if an earlier tiny model"
    )
    args = parser.parse_args(argv)
    if args.image_size % 28:
        parser.error(f"--image-size {args.image_size} must be a multiple of 28 (patch 14 x merge 2)")
    try:
        out = save_tiny_model(args.out, args.arch, args.preset, args.image_size, args.seed)
    except OutputDirError as error:
        print(f"{parser.prog}: error: --out {error}", file=sys.stderr)
        return 2
    manifest = json.loads((out / MANIFEST).read_text())
    print(f"saved {args.arch} ({args.preset}, {manifest['parameters']:,} parameters) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
