"""The `instructflip` section of an experiment config (docs/BASELINES.md, "InstructFLIP (paper 000)").

Defaults are paper 000's Sec. 4.1 (AdamW + OneCycleLR from 1e-6 to a 5e-6 peak, weight decay 1e-6, batch 24,
20 epochs, loss weights 0.4 / 0.4 / 0.15 / 0.05); the choices the paper leaves open are marked "(our
choice)". This module imports pydantic only, so `rft.config` can hold the section without loading torch.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class InstructFlipConfig(BaseModel):
    """Components (local directories, or tiny random ones built for CPU tests), the ablation switches of
    Tables 3-4, the loss weights of Eq. 6, the cue loss's beta of Eq. 7 and the recipe."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # Components: real checkpoints from local folders, or the tiny preset (rft.baselines.instructflip.tiny).
    tiny: bool = Field(
        False, description="Build tiny random CLIP / Q-Former / T5 folders instead of loading paths."
    )
    clip_path: Path | None = Field(
        None, description="Local CLIP ViT-B/16 folder (CLIPModel or CLIPVisionModel)."
    )
    t5_path: Path | None = Field(
        None,
        description="Local FLAN-T5 folder (T5ForConditionalGeneration + tokenizer); its tokenizer and "
        "embeddings also encode the instructions when llm is false.",
    )
    qformer_path: Path | None = Field(
        None, description="Local Blip2QFormerModel folder to start both branches from; null: random init."
    )
    cache_dir: Path = Field(Path(".cache/models"), description="Where the tiny components are kept.")
    num_query_tokens: int = Field(
        32, ge=2, description="Learnable queries k per branch (our choice, as InstructBLIP)."
    )
    qformer_layers: int = Field(12, ge=1, description="Q-Former depth when qformer_path is null.")
    qformer_hidden: int = Field(768, ge=8, description="Q-Former width when qformer_path is null.")
    qformer_heads: int = Field(12, ge=1)
    vision_frozen_layers: int = Field(
        0, ge=0, description="Bottom CLIP layers kept frozen (the patch/position embeddings always are)."
    )
    # Ablations (Table 3: CB / SB / Cue; Table 4: classification heads instead of the LLM).
    content_branch: bool = Field(True, description="Content branch and its loss L_c (Table 3, CB).")
    style_branch: bool = Field(True, description="Style branch and its loss L_s (Table 3, SB).")
    cue: bool = Field(True, description="Cue generator and its loss L_cue (Table 3, Cue).")
    llm: bool = Field(
        True, description="Answer through frozen FLAN-T5; false: linear classification heads (Table 4)."
    )
    # Eq. 6 and Eq. 7.
    lambda_content: float = Field(0.4, ge=0, description="lambda_1 of Eq. 6 (L_c).")
    lambda_style: float = Field(0.4, ge=0, description="lambda_2 of Eq. 6 (L_s).")
    lambda_cls: float = Field(0.15, ge=0, description="lambda_3 of Eq. 6 (L_cls).")
    lambda_cue: float = Field(0.05, ge=0, description="lambda_4 of Eq. 6 (L_cue).")
    cue_beta: float = Field(0.5, gt=0, description="beta of Eq. 7, where L2 turns into L1 (our choice).")
    cue_size: int = Field(14, ge=2, description="Side of the cue map (our choice: the ViT-B/16 patch grid).")
    # Recipe (Sec. 4.1).
    initial_lr: float = Field(1e-6, gt=0, description="OneCycleLR's starting learning rate.")
    peak_lr: float = Field(5e-6, gt=0, description="OneCycleLR's peak learning rate.")
    weight_decay: float = Field(1e-6, ge=0)
    batch_size: int = Field(24, ge=1)
    epochs: int = Field(20, ge=1)
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps; null trains `epochs` epochs.")
    save_steps: int = Field(500, ge=1, description="A resumable checkpoint every N steps (and at the end).")
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(10, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")

    @model_validator(mode="after")
    def _components_given(self) -> InstructFlipConfig:
        if not self.tiny and (self.clip_path is None or self.t5_path is None):
            raise ValueError(
                "set instructflip.clip_path and instructflip.t5_path (local folders of CLIP ViT-B/16 and "
                "FLAN-T5), or instructflip.tiny: true for tiny random components"
            )
        if self.peak_lr < self.initial_lr:
            raise ValueError(
                f"peak_lr ({self.peak_lr}) is below initial_lr ({self.initial_lr}); OneCycleLR rises to the peak"
            )
        return self
