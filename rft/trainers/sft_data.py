"""The SFT data path: stored conversations -> checked dataset -> batches with per-token Eq. 8 weights.

A batch is rendered with the project's chat template (tools listed in the system turn) and tokenised by
`ConversationTokenizer.conversation_ids`, the code the rollout server and the GRPO trainer share: the text of
the conversation stays text even where it spells `<|im_start|>` or `<|image_pad|>`, and each image
placeholder is expanded by the processor (`expand_images`). The template's `{% generation %}` tags give the
mask of the tokens the assistant wrote. Each contiguous run of that mask
is one assistant turn (the template always puts `\\n<|im_start|>...` between two assistant turns), so the
k-th run is round k of paper 003's Eq. 8: round 0 is the fast answer `<CLS><reason>..</reason>`, rounds
1..L the tool calls and the final answer. Tokens of system, user and tool turns (images included) are never
trained on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from transformers import ProcessorMixin

from rft.data.conversations import Conversation, conversation_from_row
from rft.errors import RftError
from rft.models.conversation import ConversationTokenizer, ExpandedConversation, concat_image_inputs
from rft.prompts.chat_template import template_arch
from rft.prompts.episodes import count_images, messages_from_json
from rft.tools import tool_schemas

# Which stored conversations each SFT stage trains on (rft.data.conversations.ConversationKind).
STAGE_KIND = {1: "knowledge_transfer", 2: "tool_trajectory"}
REQUIRED_COLUMNS = ("sample_id", "kind", "messages", "images")
NOT_ASSISTANT = -1
IGNORE_INDEX = -100


class SFTDataError(RftError):
    """Unusable SFT data, said in one line: what is wrong, which rows, and how to fix it."""


def load_sft_dataset(data_dir: Path | None, stage: int) -> datasets.Dataset:
    """The stored conversations for `stage` (`data_dir` is a saved dataset, or an `rft annotate` output folder
    whose `knowledge_transfer` / `tool_trajectory` subfolder is taken), checked before any model is loaded: the folder is a saved
    dataset with the conversation columns, every row is of the stage's kind, and every row has as many
    images as image placeholders."""
    if data_dir is None:
        raise SFTDataError("sft.data_dir is not set; point it at a dataset saved by the annotation pipeline")
    data_dir = Path(data_dir)
    if (data_dir / STAGE_KIND[stage]).is_dir():  # the annotation output folder: take the stage's dataset
        data_dir = data_dir / STAGE_KIND[stage]
    if not data_dir.is_dir():
        raise SFTDataError(f"sft.data_dir '{data_dir}' does not exist")
    try:
        dataset = datasets.load_from_disk(str(data_dir))
    except FileNotFoundError:
        raise SFTDataError(
            f"sft.data_dir '{data_dir}' is not a dataset saved with Dataset.save_to_disk"
        ) from None
    if isinstance(dataset, datasets.DatasetDict):
        if "train" not in dataset:
            raise SFTDataError(f"sft.data_dir '{data_dir}' holds splits {list(dataset)} but no 'train'")
        dataset = dataset["train"]
    check_columns(dataset, data_dir)
    if len(dataset) == 0:
        raise SFTDataError(f"sft.data_dir '{data_dir}' holds no conversations")
    check_kind(dataset, STAGE_KIND[stage], stage)
    check_image_counts(dataset)
    return dataset


def check_columns(dataset: datasets.Dataset, data_dir: Path) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in dataset.column_names]
    if missing:
        raise SFTDataError(
            f"sft.data_dir '{data_dir}' lacks columns {missing}; expected stored conversations "
            "(rft.data.conversations.conversations_to_dataset)"
        )


def check_kind(dataset: datasets.Dataset, expected: str, stage: int) -> None:
    kinds = Counter(dataset["kind"])
    wrong = {kind: n for kind, n in kinds.items() if kind != expected}
    if wrong:
        found = ", ".join(f"{n} '{kind}'" for kind, n in sorted(wrong.items()))
        raise SFTDataError(
            f"SFT stage {stage} trains on '{expected}' conversations, but the data holds {found} rows; "
            "filter them out, or train them in their own stage (1: knowledge_transfer, 2: tool_trajectory)"
        )


def check_image_counts(dataset: datasets.Dataset, batch_size: int = 1024) -> None:
    """Placeholders against images for every row, reading image list lengths from Arrow (nothing decoded)."""
    columns = dataset.select_columns(["sample_id", "messages", "images"]).with_format("arrow")
    for batch in columns.iter(batch_size=batch_size):
        n_images = pc.list_value_length(batch["images"]).to_pylist()
        for sample_id, text, n in zip(
            batch["sample_id"].to_pylist(), batch["messages"].to_pylist(), n_images, strict=True
        ):
            placeholders = count_images(messages_from_json(text))
            if placeholders != (n or 0):
                raise SFTDataError(
                    f"conversation '{sample_id}' has {placeholders} image placeholders but {n or 0} images; "
                    "rebuild it with rft.data.conversations"
                )


def assistant_turn_index(assistant_mask: torch.Tensor) -> torch.Tensor:
    """Per token: the index of the assistant turn it belongs to (0 = first round), NOT_ASSISTANT elsewhere.
    Turn k is the k-th contiguous run of the assistant mask."""
    mask = assistant_mask.bool()
    previous = F.pad(mask[:, :-1], (1, 0), value=False)
    starts = mask & ~previous
    return (starts.long().cumsum(dim=1) - 1).masked_fill(~mask, NOT_ASSISTANT)


def round_loss_weights(turn: torch.Tensor, first_round_weight: float) -> torch.Tensor:
    """Eq. 8's per-token weights: alpha on round 0, 1 - alpha on rounds 1..L, 0 outside assistant turns."""
    weights = torch.zeros(turn.shape, dtype=torch.float32)
    weights[turn == 0] = first_round_weight
    weights[turn > 0] = 1.0 - first_round_weight
    return weights


@dataclass
class MultiTurnSFTCollator:
    """Rows of stored conversations -> model inputs plus `labels` (assistant tokens), `assistant_turn`
    and `loss_weights` (Eq. 8 with `first_round_weight` = alpha).

    Rendering and image processing happen here, per batch, as in TRL's vision collator: turning every
    image of the dataset into pixels up front would cost more disk than the images themselves. The
    processor must carry the project's chat template (rft.models.loading.install_chat_template).
    """

    processor: ProcessorMixin
    first_round_weight: float
    max_length: int | None = None
    tools: list[dict[str, Any]] = field(default_factory=tool_schemas)

    def __post_init__(self) -> None:
        arch = template_arch(self.processor.chat_template)
        self.conversation = ConversationTokenizer(self.processor, arch, tools=self.tools)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        conversations = [conversation_from_row(row) for row in rows]
        expanded, masks = zip(*(self._expand(c) for c in conversations), strict=True)
        self._refuse_overlong([len(e.input_ids) for e in expanded], [c.sample_id for c in conversations])
        batch = self._padded(expanded)
        turn = assistant_turn_index(pad_sequence(list(masks), batch_first=True, padding_value=0))
        self._refuse_without_answer(turn, [c.sample_id for c in conversations])
        batch["labels"] = batch["input_ids"].masked_fill(turn == NOT_ASSISTANT, IGNORE_INDEX)
        batch["assistant_turn"] = turn
        batch["loss_weights"] = round_loss_weights(turn, self.first_round_weight)
        return batch

    def _expand(self, conversation: Conversation) -> tuple[ExpandedConversation, torch.Tensor]:
        """The conversation's expanded ids and image inputs, and its assistant mask on the expanded ids."""
        ids, assistant = self.conversation.conversation_ids(conversation.messages)
        expanded = self.conversation.expand_images(ids, conversation.images)
        return expanded, expanded.spread(torch.tensor(assistant, dtype=torch.long), fill=0)

    def _padded(self, expanded: tuple[ExpandedConversation, ...]) -> dict[str, torch.Tensor]:
        """The model inputs of the batch, right-padded as the processor pads them."""
        pad_id = self.conversation.tokenizer.pad_token_id
        batch = {
            "input_ids": pad_sequence(
                [e.input_ids for e in expanded], batch_first=True, padding_value=pad_id
            ),
            "attention_mask": pad_sequence(
                [torch.ones_like(e.input_ids) for e in expanded], batch_first=True, padding_value=0
            ),
        }
        for key in expanded[0].token_inputs:
            batch[key] = pad_sequence(
                [e.token_inputs[key] for e in expanded], batch_first=True, padding_value=0
            )
        batch.update(concat_image_inputs([e.image_inputs for e in expanded if e.image_inputs]))
        return batch

    def _refuse_overlong(self, lengths: list[int], sample_ids: list[str]) -> None:
        # Truncating would cut image tokens of later turns (the model then refuses the batch) or the final
        # answer, so an over-long conversation is a data problem to fix, not to hide.
        if self.max_length is None:
            return
        for sample_id, length in zip(sample_ids, lengths, strict=True):
            if length > self.max_length:
                raise SFTDataError(
                    f"conversation '{sample_id}' renders to {length} tokens, more than sft.max_length "
                    f"({self.max_length}); raise sft.max_length or drop the conversation"
                )

    @staticmethod
    def _refuse_without_answer(turn: torch.Tensor, sample_ids: list[str]) -> None:
        for sample_id, row in zip(sample_ids, turn, strict=True):
            if not bool((row == 0).any()):
                raise SFTDataError(f"conversation '{sample_id}' has no assistant turn to train on")
