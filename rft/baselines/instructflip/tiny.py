"""Tiny random components of the real classes (CLIPVisionModel, T5ForConditionalGeneration with a tokenizer
built here, no hub) for CPU tests and the CPU config, saved as ordinary transformers folders; the Q-Former is
built from `instructflip.qformer_*` as for real runs without a Q-Former checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from rft.baselines.instructflip.questions import CONTENT, STYLE_QUESTIONS
from rft.outputs import replace_output_dir

COMMAND = "rft.baselines.instructflip.tiny"
TINY_VERSION = 1
IMAGE_SIZE = 32
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # CLIP's normalisation (its released preprocessor config)
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # T5's ids 0, 1, 2


def tiny_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / f"tiny-instructflip-v{TINY_VERSION}"


def build_tiny_components(cache_dir: Path, seed: int = 0) -> Path:
    """The folder with clip/ and t5/ (built once, then reused); returns it."""
    out = tiny_dir(cache_dir)
    if (out / "t5" / "config.json").is_file():
        return out

    def write(staging: Path) -> None:
        torch.manual_seed(seed)
        save_tiny_clip(staging / "clip")
        save_tiny_t5(staging / "t5")

    replace_output_dir(out, COMMAND, write)
    return out


def save_tiny_clip(out: Path) -> None:
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=8,
        projection_dim=32,
    )
    CLIPVisionModel(config).save_pretrained(out)
    CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    ).save_pretrained(out)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the instructions' and answers' words, with T5's special tokens and its
    post-processing (every sequence ends in </s>)."""
    texts = [q.instruction() for q in (CONTENT, *STYLE_QUESTIONS)] + [
        o for q in (CONTENT, *STYLE_QUESTIONS) for o in q.options
    ]
    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text)})
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def save_tiny_t5(out: Path) -> None:
    tokenizer = tiny_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",  # FLAN-T5's
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        tie_word_embeddings=False,
    )
    T5ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
