"""The dual-objective model of paper 002 (section "Training strategy", Eq. 1):

    L = alpha * L_cls + beta * L_cap,    alpha = 0.7, beta = 0.3

L_cls is the cross-entropy of a linear live/spoof head (`vision_cls_head`) on the pooled visual features, L_cap
the language-model cross-entropy of the caption tokens (the mean over the batch's caption tokens). The visual
features are the multimodal projector's output for the image (Qwen2.5-VL's `visual.merger`, InternVL3's
`multi_modal_projector`), mean-pooled over the image's tokens: the vision encoder's features as the language
model receives them. They are taken by a forward hook during the one forward pass that also computes the
caption loss, so the vision tower runs once per step.

What trains (paper 002, "LoRA-based adaptation"): LoRA on q/k/v of the language model (rft.models.lora), and
whole copies of lm_head, the projector and the head; the vision tower and every other weight stay frozen.

A saved model is a plain Hugging Face folder (LoRA merged, as `rft.models.loading.load_policy` reads it) plus
`vision_cls_head.safetensors` and `vision_cls_head.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from rft.models.loading import detect_arch, load_policy

# 1 = spoof, as everywhere in the project (rft.eval.metrics).
CLASS_NAMES = ("live", "spoof")
IGNORE_INDEX = -100
HEAD_WEIGHTS = "vision_cls_head.safetensors"
HEAD_CONFIG = "vision_cls_head.json"
# The projector's module name (a suffix of its path) and the modules trained whole, per architecture.
PROJECTOR = {"qwen2_5_vl": "visual.merger", "internvl3": "multi_modal_projector"}
TRAINED_WHOLE = {"qwen2_5_vl": ["lm_head", "merger"], "internvl3": ["lm_head", "multi_modal_projector"]}


class CaptionModelError(ValueError):
    """A caption model folder or batch that cannot be used, said in one line."""


def dual_objective_loss(
    cls_loss: torch.Tensor, caption_loss: torch.Tensor, cls_weight: float = 0.7, caption_weight: float = 0.3
) -> torch.Tensor:
    """Eq. 1 of paper 002: alpha x L_cls + beta x L_cap (alpha 0.7, beta 0.3 in the paper)."""
    return cls_weight * cls_loss + caption_weight * caption_loss


def caption_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_cap: the mean next-token cross-entropy over the caption tokens (labels != -100), logits (B, T, V)."""
    shifted = labels[:, 1:]
    if not bool((shifted != IGNORE_INDEX).any()):
        raise CaptionModelError("the batch has no caption token to train on (every label is -100)")
    flat = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(flat, shifted.reshape(-1), ignore_index=IGNORE_INDEX)


def pool_image_features(
    features: torch.Tensor, arch: str, image_grid_thw: torch.Tensor | None, merge_size: int
) -> torch.Tensor:
    """(n_images, hidden): the mean of each image's projected tokens. Qwen2.5-VL's merger returns the tokens
    of all images in one (N, hidden) block (image i has prod(grid_thw[i]) / merge^2 of them); InternVL3's
    projector returns (n_images, tokens, hidden)."""
    if arch == "internvl3":
        return features.mean(dim=1)
    if image_grid_thw is None:
        raise CaptionModelError("a Qwen2.5-VL batch without image_grid_thw: every caption needs its image")
    counts = (image_grid_thw.prod(dim=-1) // merge_size**2).tolist()
    return torch.stack([chunk.mean(dim=0) for chunk in features.split(counts)])


@dataclass
class CaptionOutput:
    loss: torch.Tensor | None
    cls_logits: torch.Tensor
    cls_loss: torch.Tensor | None = None
    caption_loss: torch.Tensor | None = None


class CaptionFASModel(nn.Module):
    """A VLM (PEFT-wrapped while training, merged after export) and a linear live/spoof head on its pooled
    projected image features. `forward` returns Eq. 1's loss when given `labels` (caption tokens, -100
    elsewhere) and `class_labels` (0 live, 1 spoof)."""

    # Trainer divides the loss by the accumulation steps itself (forward takes no num_items_in_batch).
    accepts_loss_kwargs = False

    def __init__(
        self,
        vlm: nn.Module,
        arch: str,
        *,
        cls_weight: float = 0.7,
        caption_weight: float = 0.3,
        head: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        self.vlm = vlm
        self.arch = arch
        self.cls_weight = cls_weight
        self.caption_weight = caption_weight
        config = vlm.config
        self.merge_size = getattr(getattr(config, "vision_config", None), "spatial_merge_size", 1)
        hidden = config.text_config.hidden_size
        self.vision_cls_head = head if head is not None else nn.Linear(hidden, len(CLASS_NAMES))
        self._captured: list[torch.Tensor] = []
        projector_module(vlm, arch).register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: Any, output: Any) -> None:
        # Gradient checkpointing may run the projector again in the backward pass: keep the newest output.
        self._captured = [output if isinstance(output, torch.Tensor) else output[0]]

    @property
    def config(self) -> Any:
        return self.vlm.config

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        """Trainer's call, passed on to the VLM."""
        self.vlm.gradient_checkpointing_enable(**kwargs)
        self.vlm.enable_input_require_grads()  # LoRA under checkpointing needs grads at the embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        class_labels: torch.Tensor | None = None,
        **image_inputs: torch.Tensor,
    ) -> CaptionOutput:
        self._captured = []
        outputs = self.vlm(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **image_inputs
        )
        if not self._captured:
            raise CaptionModelError("the batch has no image; the live/spoof head reads the image's features")
        pooled = pool_image_features(
            self._captured[0], self.arch, image_inputs.get("image_grid_thw"), self.merge_size
        )
        cls_logits = self.vision_cls_head(pooled.to(self.vision_cls_head.weight.dtype))
        if labels is None or class_labels is None:
            return CaptionOutput(loss=None, cls_logits=cls_logits)
        cls_loss = F.cross_entropy(cls_logits.float(), class_labels.to(cls_logits.device))
        caption_loss = caption_nll(outputs.logits, labels)
        loss = dual_objective_loss(cls_loss, caption_loss, self.cls_weight, self.caption_weight)
        return CaptionOutput(loss=loss, cls_logits=cls_logits, cls_loss=cls_loss, caption_loss=caption_loss)


def projector_module(vlm: nn.Module, arch: str) -> nn.Module:
    """The projector (the outermost module whose path ends with PROJECTOR[arch]: under PEFT, the wrapper
    whose output is the trained copy's)."""
    suffix = PROJECTOR[arch]
    found = [(name, module) for name, module in vlm.named_modules() if name.endswith(suffix)]
    if not found:
        raise CaptionModelError(f"no module named *{suffix} in the {arch} model; is it a {arch} checkpoint?")
    return min(found, key=lambda item: len(item[0]))[1]


def lora_config(
    arch: str, *, rank: int, alpha: int, dropout: float, target_modules: str | list[str]
) -> LoraConfig:
    """LoRA on `target_modules`; lm_head and the projector trained whole (PEFT's modules_to_save)."""
    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        modules_to_save=TRAINED_WHOLE[arch],
        task_type="CAUSAL_LM",
    )


def build_caption_model(
    vlm: PreTrainedModel, arch: str, lora: LoraConfig, *, cls_weight: float, caption_weight: float
) -> CaptionFASModel:
    """The trainable model: `vlm` with LoRA (and whole trained copies of lm_head and the projector) plus a
    fresh head. Everything else is frozen."""
    return CaptionFASModel(
        get_peft_model(vlm, lora), arch, cls_weight=cls_weight, caption_weight=caption_weight
    )


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def save_head(head: nn.Linear, out_dir: Path) -> None:
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, out_dir / HEAD_WEIGHTS
    )
    config = {"in_features": head.in_features, "classes": list(CLASS_NAMES)}
    (out_dir / HEAD_CONFIG).write_text(json.dumps(config, indent=2))


def load_head(model_dir: Path) -> nn.Linear:
    weights, config = Path(model_dir) / HEAD_WEIGHTS, Path(model_dir) / HEAD_CONFIG
    if not weights.is_file() or not config.is_file():
        raise CaptionModelError(
            f"{model_dir} has no {HEAD_WEIGHTS} / {HEAD_CONFIG}: not a caption model folder "
            "(launch/caption.py exports one under <run>/caption/model)"
        )
    head = nn.Linear(json.loads(config.read_text())["in_features"], len(CLASS_NAMES))
    head.load_state_dict(load_file(str(weights)))
    return head


def load_caption_model(model_dir: Path, dtype: str = "float32") -> tuple[CaptionFASModel, Any]:
    """An exported caption model (merged VLM folder + head) and its processor, from a local folder."""
    head = load_head(model_dir)
    vlm, processor = load_policy(Path(model_dir), dtype)
    model = CaptionFASModel(vlm, detect_arch(Path(model_dir)), head=head.to(vlm.dtype))
    return model.eval(), processor
