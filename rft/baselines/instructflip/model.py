"""The InstructFLIP network (paper 000, Fig. 2) from transformers components, so that real checkpoints load
from local folders: `CLIPVisionModel` (E), two `Blip2QFormerModel` branches (content and style), a frozen
`T5ForConditionalGeneration` (FLAN-T5) answering the instructions, the fusion, the classifier C and the cue
generator G. `save_pretrained` writes each component in its transformers format plus the small heads.

Training: `forward` returns every loss term of Eq. 6. Evaluation: `predict` is the LLM-free path (the
classifier's P(spoof) and the cue map); no T5 forward runs there.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import (
    AutoTokenizer,
    Blip2QFormerConfig,
    Blip2QFormerModel,
    CLIPVisionModel,
    PreTrainedTokenizerBase,
    T5ForConditionalGeneration,
)

from rft.baselines.instructflip.losses import cue_loss, cue_target, style_feature
from rft.baselines.instructflip.questions import CONTENT, STYLE_QUESTIONS, Question

SETTINGS_FILE = "instructflip.json"
HEADS_FILE = "heads.safetensors"
COMPONENTS = ("vision", "qformer_content", "qformer_style", "t5")
IGNORE = -100  # no label: the sample adds nothing to that question's loss


@dataclass(frozen=True)
class Settings:
    """What the network's shape and losses depend on (saved next to the weights as instructflip.json)."""

    num_query_tokens: int = 32
    content_branch: bool = True
    style_branch: bool = True
    cue: bool = True
    llm: bool = True
    cue_size: int = 14
    cue_beta: float = 0.5
    vision_frozen_layers: int = 0


class CueGenerator(nn.Module):
    """G (Sec. 3.4): the cue tokens -> a map in [0, 1]. Each token is projected to a size x size map and the
    maps are averaged; in training, normalised noise (zero mean, unit deviation per map) scaled by a learned
    gain is added (the one-class "guided, normalised noise", our reading), then a 3x3 convolution."""

    def __init__(self, hidden: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.to_map = nn.Linear(hidden, size * size)
        self.noise_gain = nn.Parameter(torch.tensor(0.1))
        self.conv = nn.Conv2d(1, 1, kernel_size=3, padding=1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        base = self.to_map(tokens).mean(dim=1).view(-1, 1, self.size, self.size)
        if self.training:
            noise = torch.randn_like(base)
            noise = (noise - noise.mean(dim=(2, 3), keepdim=True)) / noise.std(dim=(2, 3), keepdim=True)
            base = base + self.noise_gain * noise
        return torch.sigmoid(self.conv(base))


class InstructFlip(nn.Module):
    def __init__(
        self,
        vision: CLIPVisionModel,
        qformer_content: Blip2QFormerModel,
        qformer_style: Blip2QFormerModel,
        t5: T5ForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        settings: Settings,
    ) -> None:
        super().__init__()
        check_widths(vision, qformer_content, qformer_style)
        self.vision, self.qformer_content, self.qformer_style, self.t5 = (
            vision,
            qformer_content,
            qformer_style,
            t5,
        )
        self.tokenizer, self.settings = tokenizer, settings
        hidden, k, t5_width = qformer_content.config.hidden_size, settings.num_query_tokens, t5.config.d_model
        self.content_queries = nn.Parameter(torch.randn(k, hidden) * 0.02)  # Q_c
        self.style_queries = nn.Parameter(torch.randn(k, hidden) * 0.02)  # Q_s
        self.fusion_queries = nn.Parameter(torch.randn(k, hidden) * 0.02)  # only when both branches are off
        self.instruction_proj = nn.Linear(t5_width, hidden)  # T5 word embeddings -> T_c / T_s
        self.language_proj = nn.Linear(hidden, t5_width)  # queries -> T5's soft prompt
        self.answer_heads = nn.ModuleDict(
            {q.name: nn.Linear(hidden, len(q.options)) for q in (CONTENT, *STYLE_QUESTIONS)}
        )  # Table 4's InstructFLIP-dagger: classification heads instead of the LLM
        self.classifier = nn.Linear(hidden, 2)  # C, on t_cls
        self.cue_generator = CueGenerator(hidden, settings.cue_size)  # G, on t_cue
        self._tokenize_questions()
        freeze(self)

    # ----------------------------------------------------------------------------------------- encoding
    def _tokenize_questions(self) -> None:
        """Instruction ids of every question and the answer ids of every option (-100 padded), as buffers."""
        for question in (CONTENT, *STYLE_QUESTIONS):
            ids = self.tokenizer(question.instruction(), return_tensors="pt").input_ids
            answers = self.tokenizer(list(question.options), padding=True, return_tensors="pt")
            labels = answers.input_ids.masked_fill(answers.attention_mask == 0, IGNORE)
            self.register_buffer(f"instruction_{question.name}", ids, persistent=False)
            self.register_buffer(f"answers_{question.name}", labels, persistent=False)

    def encode_image(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_c (the last layer's tokens, class token included) and f_s (Eq. 1 over every layer)."""
        out = self.vision(pixel_values=pixel_values, output_hidden_states=True)
        layers = out.hidden_states[1:]  # [0] is the patch embedding, before any layer
        return out.last_hidden_state, style_feature(layers)

    def instruction_tokens(self, question: Question) -> torch.Tensor:
        """(1, j, t5_width): the instruction through FLAN-T5's frozen word embeddings."""
        return self.t5.get_input_embeddings()(getattr(self, f"instruction_{question.name}"))

    def branch(
        self, qformer: Blip2QFormerModel, queries: torch.Tensor, question: Question, features: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 2-3: h = Q (+) T; self-attention over h, cross-attention of the queries to `features`.
        Returns the k query outputs (batch, k, hidden)."""
        batch, k = features.shape[0], queries.shape[0]
        instruction = self.instruction_proj(self.instruction_tokens(question)).expand(batch, -1, -1)
        h = torch.cat([queries.unsqueeze(0).expand(batch, -1, -1), instruction], dim=1)
        out = qformer(query_embeds=h, query_length=k, encoder_hidden_states=features)
        return out.last_hidden_state[:, :k]

    def fuse(self, queries: list[torch.Tensor], content_feature: torch.Tensor) -> torch.Tensor:
        """Eq. 5: O = Q_c (+) Q_s through the content branch's self- and cross-attention (reused, Sec. 3.4)
        with f_c only; f_s stays out of the fusion."""
        o = torch.cat(queries, dim=1)
        return self.qformer_content(
            query_embeds=o, query_length=o.shape[1], encoder_hidden_states=content_feature
        ).last_hidden_state

    def branch_queries(
        self, content_feature: torch.Tensor, style_feature_: torch.Tensor
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        """The content branch's query outputs and the style branch's, one per style question."""
        s = self.settings
        content = (
            self.branch(self.qformer_content, self.content_queries, CONTENT, content_feature)
            if s.content_branch
            else None
        )
        style = {
            q.name: self.branch(self.qformer_style, self.style_queries, q, style_feature_)
            for q in STYLE_QUESTIONS
            if s.style_branch
        }
        return content, style

    def fused(
        self, content: torch.Tensor | None, style: dict[str, torch.Tensor], content_feature: torch.Tensor
    ) -> torch.Tensor:
        """The fusion's input is the content queries and the mean of the style queries over the three
        questions (our choice); with neither branch, learnable queries over f_c (Table 3's first row)."""
        parts = [content] if content is not None else []
        if style:
            parts.append(torch.stack(list(style.values())).mean(dim=0))
        if not parts:
            parts = [self.fusion_queries.unsqueeze(0).expand(content_feature.shape[0], -1, -1)]
        return self.fuse(parts, content_feature)

    # ----------------------------------------------------------------------------------------- outputs
    def predict(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The LLM-free inference path: P(spoof) from C on t_cls, and G's cue map (None without the cue)."""
        content_feature, style_feature_ = self.encode_image(pixel_values)
        o = self.fused(*self.branch_queries(content_feature, style_feature_), content_feature)
        p_spoof = self.classifier(o[:, 0]).softmax(dim=-1)[:, 1]
        cue = self.cue_generator(o[:, 1:]) if self.settings.cue else None
        return p_spoof, cue

    def forward(
        self, pixel_values: torch.Tensor, is_spoof: torch.Tensor, answers: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The loss terms of Eq. 6 present in this configuration: content (Eq. 4), style (the mean over the
        style questions with a label in the batch), cls (cross-entropy of C) and cue (Eq. 7). `answers`
        maps a question name to option indices (-100: not annotated)."""
        content_feature, style_feature_ = self.encode_image(pixel_values)
        content, style = self.branch_queries(content_feature, style_feature_)
        terms: dict[str, torch.Tensor] = {}
        if content is not None:
            loss = self.answer_loss(CONTENT, content, answers[CONTENT.name])
            if loss is not None:
                terms["content"] = loss
        style_losses = [self.answer_loss(q, style[q.name], answers[q.name]) for q in STYLE_QUESTIONS if style]
        style_losses = [loss for loss in style_losses if loss is not None]
        if style_losses:
            terms["style"] = torch.stack(style_losses).mean()
        o = self.fused(content, style, content_feature)
        terms["cls"] = nn.functional.cross_entropy(self.classifier(o[:, 0]), is_spoof.long())
        if self.settings.cue:
            cue = self.cue_generator(o[:, 1:])
            terms["cue"] = cue_loss(cue, cue_target(is_spoof, self.settings.cue_size), self.settings.cue_beta)
        return terms

    def answer_loss(
        self, question: Question, queries: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor | None:
        """Eq. 4 for one question over the labelled samples (None when none is): FLAN-T5's cross-entropy of
        the option's text given the soft prompt (queries, then the instruction), or a linear head's."""
        keep = labels != IGNORE
        if not bool(keep.any()):
            return None
        queries, labels = queries[keep], labels[keep]
        if not self.settings.llm:
            return nn.functional.cross_entropy(self.answer_heads[question.name](queries.mean(dim=1)), labels)
        prompt = torch.cat(
            [self.language_proj(queries), self.instruction_tokens(question).expand(len(queries), -1, -1)],
            dim=1,
        )
        targets = getattr(self, f"answers_{question.name}")[labels]
        return self.t5(inputs_embeds=prompt, labels=targets).loss

    def train(self, mode: bool = True) -> InstructFlip:
        super().train(mode)
        self.t5.eval()  # frozen: no dropout in the LLM
        return self

    # ----------------------------------------------------------------------------------------- files
    def save_pretrained(self, out_dir: Path) -> Path:
        """Each component in its transformers format (vision/, qformer_content/, qformer_style/, t5/ with the
        tokenizer), the heads as heads.safetensors and the settings as instructflip.json."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in COMPONENTS:
            getattr(self, name).save_pretrained(out_dir / name)
        self.tokenizer.save_pretrained(out_dir / "t5")
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in head_state(self).items()}, out_dir / HEADS_FILE
        )
        (out_dir / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2))
        return out_dir

    @classmethod
    def from_pretrained(cls, model_dir: Path) -> InstructFlip:
        """A folder written by `save_pretrained`."""
        model_dir = Path(model_dir)
        settings = Settings(**json.loads((model_dir / SETTINGS_FILE).read_text()))
        model = cls(
            CLIPVisionModel.from_pretrained(model_dir / "vision", local_files_only=True),
            Blip2QFormerModel.from_pretrained(model_dir / "qformer_content", local_files_only=True),
            Blip2QFormerModel.from_pretrained(model_dir / "qformer_style", local_files_only=True),
            T5ForConditionalGeneration.from_pretrained(model_dir / "t5", local_files_only=True),
            AutoTokenizer.from_pretrained(model_dir / "t5", local_files_only=True),
            settings,
        )
        result = model.load_state_dict(load_file(model_dir / HEADS_FILE), strict=False)
        missing = [key for key in result.missing_keys if key.split(".")[0] not in COMPONENTS]
        if missing or result.unexpected_keys:
            raise ValueError(
                f"{model_dir / HEADS_FILE} does not match this InstructFLIP (missing {missing[:3]}, unexpected "
                f"{result.unexpected_keys[:3]}); save the model again with save_pretrained"
            )
        return model


def head_state(model: InstructFlip) -> dict[str, torch.Tensor]:
    """The parameters outside the four transformers components."""
    return {k: v for k, v in model.state_dict().items() if k.split(".")[0] not in COMPONENTS}


def freeze(model: InstructFlip) -> None:
    """FLAN-T5 is frozen whole (Sec. 4.1); of CLIP, the patch/position embeddings, the pre-layer norm and the
    bottom `vision_frozen_layers` layers, and the unused post-layer norm. Everything else trains."""
    model.t5.requires_grad_(False)
    vision = getattr(model.vision, "vision_model", model.vision)  # transformers 5 flattened CLIPVisionModel
    for module in (vision.embeddings, vision.pre_layrnorm, vision.post_layernorm):
        module.requires_grad_(False)
    for layer in vision.encoder.layers[: model.settings.vision_frozen_layers]:
        layer.requires_grad_(False)


def check_widths(vision: CLIPVisionModel, *qformers: Blip2QFormerModel) -> None:
    width = vision.config.hidden_size
    for qformer in qformers:
        if not qformer.config.use_qformer_text_input:
            raise ValueError(
                "the Q-Former has no text feed-forward for the instruction tokens; give a Q-Former saved with "
                "use_qformer_text_input: true in its config.json"
            )
        if qformer.config.encoder_hidden_size != width:
            raise ValueError(
                f"the Q-Former attends to {qformer.config.encoder_hidden_size}-wide features but CLIP's tokens "
                f"are {width} wide; give a Q-Former with encoder_hidden_size {width}"
            )


def qformer_config(*, hidden: int, layers: int, heads: int, encoder_width: int) -> Blip2QFormerConfig:
    """A Q-Former for CLIP tokens of `encoder_width` (BLIP-2's layout: cross-attention every other layer)."""
    return Blip2QFormerConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        encoder_hidden_size=encoder_width,
        cross_attention_frequency=2 if layers > 1 else 1,
        use_qformer_text_input=True,  # the instruction tokens get the text feed-forward (InstructBLIP's layout)
    )


def build_model(
    *,
    clip_dir: Path,
    t5_dir: Path,
    qformer_dir: Path | None,
    qformer_hidden: int,
    qformer_layers: int,
    qformer_heads: int,
    settings: Settings,
) -> InstructFlip:
    """InstructFLIP from local component folders: both branches start from `qformer_dir` when given, from
    one random Q-Former (copied) otherwise."""
    vision = CLIPVisionModel.from_pretrained(clip_dir, local_files_only=True)
    if qformer_dir is not None:
        content = Blip2QFormerModel.from_pretrained(qformer_dir, local_files_only=True)
    else:
        width = vision.config.hidden_size
        content = Blip2QFormerModel(
            qformer_config(
                hidden=qformer_hidden, layers=qformer_layers, heads=qformer_heads, encoder_width=width
            )
        )
    style = Blip2QFormerModel(content.config)
    style.load_state_dict(content.state_dict())
    t5 = T5ForConditionalGeneration.from_pretrained(t5_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(t5_dir, local_files_only=True)
    return InstructFlip(vision, content, style, t5, tokenizer, settings)
