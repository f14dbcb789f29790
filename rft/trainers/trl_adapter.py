"""TRL (and transformers' Trainer) behind one module: every private name of TRL's `GRPOTrainer` and
`SFTTrainer` and of transformers' `Trainer` that the project overrides, calls or reads is spelled here and
nowhere else in `rft`, and listed in `PRIVATE_NAMES` with the reason. TRL's helpers that live in modules its
top level does not export are imported here too (`INTERNAL_HELPERS`).

Private names change between TRL releases without notice, so:

- importing this module refuses a TRL outside `SUPPORTED_TRL`, the range every name below was checked on;
- tests/trainers/test_trl_adapter.py checks each name against the installed TRL and transformers (it exists,
  its parameters are the ones listed, TRL still calls the hooks and reads the buffers the project fills),
  and that the batch `GRPOTrainerHooks.generate_and_score` returns has the keys of TRL's own
  `_generate_and_score_completions` (`GENERATION_BATCH_KEYS`).

To move to another TRL: widen `SUPPORTED_TRL`, run that test, and fix what its one-line failures name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import trl
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from rft.errors import RftError

SUPPORTED_TRL = SpecifierSet(">=1.16.0,<1.17")  # pyproject pins trl==1.16.0


class UnsupportedTRLVersion(RftError):
    """The installed TRL is outside the range the private names below were checked on."""


def check_trl_version(installed: str) -> None:
    if not SUPPORTED_TRL.contains(Version(installed), prereleases=True):
        raise UnsupportedTRLVersion(
            f"trl {installed} is installed, but rft supports trl {SUPPORTED_TRL} only (pyproject pins "
            "trl==1.16.0): install trl==1.16.0, or widen SUPPORTED_TRL in rft/trainers/trl_adapter.py after "
            "tests/trainers/test_trl_adapter.py passes on the new version"
        )


# Before the imports below: another TRL may have moved them, and this says why in one line.
check_trl_version(trl.__version__)

import torch  # noqa: E402
from accelerate.utils import gather_object  # noqa: E402
from trl import GRPOTrainer  # noqa: E402
from trl.distributed import DistributedBackend as DistributedBackend  # noqa: E402
from trl.models.utils import disable_gradient_checkpointing as disable_gradient_checkpointing  # noqa: E402
from trl.trainer.utils import nanmax as nanmax  # noqa: E402
from trl.trainer.utils import nanstd as nanstd  # noqa: E402
from trl.trainer.utils import pad as pad  # noqa: E402
from trl.trainer.utils import use_adapter as use_adapter  # noqa: E402

GRPO = "trl.GRPOTrainer"
SFT = "trl.SFTTrainer"

# How the project uses a name.
OVERRIDDEN = "overridden"  # a method TRL/Trainer calls, replaced by a hook below
CALLED = "called"  # a method the project calls
READ = "read"  # an attribute read, or a buffer filled in place for TRL to flush


@dataclass(frozen=True)
class PrivateName:
    """One private name of a TRL trainer class (or of transformers' Trainer, as inherited by it).

    `parameters`: for a method, its parameter names after `self`, which the project's calls and overrides
    use. `members`: for an attribute, the keys or attributes the project uses on it. `relied_on_by`: a
    method of the same class hierarchy whose source must still use the name, or touching it has no effect
    (the caller of a hook, the reader of a buffer)."""

    owners: tuple[str, ...]
    name: str
    use: str
    reason: str
    parameters: tuple[str, ...] | None = None
    members: tuple[str, ...] = ()
    relied_on_by: str | None = None


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName(
        (GRPO,),
        "_generate_and_score_completions",
        OVERRIDDEN,
        "TRL's builds the forward pass from the dataset prompt and its images only, so the tool images of a "
        "rollout-server episode would never reach the model; replaced by `generate_and_score`, which returns "
        "the same batch (GENERATION_BATCH_KEYS) from the episodes",
        parameters=("inputs",),
        relied_on_by="_prepare_inputs",
    ),
    PrivateName(
        (GRPO,),
        "_get_per_token_logps_and_entropies",
        CALLED,
        "pi_theta_old's and the reference's logprobs of the episode batch by TRL's own forward (per-sample "
        "image slicing, temperature, fused LM head), so they match the logprobs its loss computes; with top_p < 1 "
        "the sampler's-terms logprobs and the kept mass from one plain forward, through a stand-in model "
        "(`_LogitsView`) called as TRL calls the policy",
        parameters=(
            "model",
            "input_ids",
            "attention_mask",
            "logits_to_keep",
            "batch_size",
            "compute_entropy",
            "compute_aux_loss",
            "pixel_values",
            "image_grid_thw",
            "num_images",
            "pixel_attention_mask",
            "spatial_shapes",
            "num_tiles",
            "image_sizes",
            "token_type_ids",
            "mm_token_type_ids",
            "image_position_ids",
        ),
    ),
    PrivateName(
        (GRPO,),
        "_calculate_rewards",
        CALLED,
        "without a reward service, TRL's reward-function path scores the episodes (rft.rewards.trl), "
        "gathered across processes",
        parameters=("inputs", "prompts", "completions", "completion_ids_list"),
    ),
    PrivateName(
        (GRPO,),
        "_log_completion_extra",
        CALLED,
        "extra columns of TRL's completions table (label, turns, stop reason, tool calls, format errors)",
        parameters=("column", "values"),
    ),
    PrivateName(
        (GRPO, SFT),
        "_metrics",
        READ,
        "the per-mode metric lists TRL's `log` averages and logs: rewards, lengths, tool use, sampler gap "
        "and times (GRPO), per-round nll (SFT)",
        members=("train", "eval"),
        relied_on_by="log",
    ),
    PrivateName(
        (GRPO,),
        "_logs",
        READ,
        "the completions table TRL's `log` writes with log_completions: filled per episode as TRL's "
        "generation step fills it per completion",
        members=("prompt", "completion", "rewards", "advantages", "extra"),
        relied_on_by="log",
    ),
    PrivateName(
        (GRPO,),
        "_pending_extra_logs",
        READ,
        "columns reward functions add through `log_extra`, flushed into `_logs` as TRL's generation step does",
        relied_on_by="_log_completion_extra",
    ),
    PrivateName(
        (GRPO,),
        "_pending_metrics",
        READ,
        "metrics reward functions add through `log_metric`, flushed into `_metrics` as TRL's generation step "
        "does",
        relied_on_by="_log_metric",
    ),
    PrivateName(
        (GRPO,),
        "_tokenizer",
        READ,
        "the text tokenizer TRL pads its batches with (TRL sets its pad token when the model has none)",
        members=("pad_token_id",),
    ),
    PrivateName(
        (GRPO,),
        "_dist",
        READ,
        "TRL's distributed backend: gathers ZeRO-3 shards for the weight push, as TRL's own vLLM sync does",
        members=("gather_params",),
    ),
    PrivateName(
        (GRPO, SFT),
        "_save_checkpoint",
        OVERRIDDEN,
        "checkpoints are written into a staging folder and renamed into place (rft.trainers.checkpoints)",
        parameters=("model", "trial"),
        relied_on_by="_maybe_log_save_evaluate",
    ),
    PrivateName(
        (GRPO, SFT),
        "_get_output_dir",
        OVERRIDDEN,
        "points Trainer's checkpoint writing at the staging folder while an atomic checkpoint is saved",
        parameters=("trial",),
        relied_on_by="_save_checkpoint",
    ),
    PrivateName(
        (GRPO, SFT),
        "_load_from_checkpoint",
        OVERRIDDEN,
        "full weights are resumed through `from_pretrained`: Trainer's non-strict load matches no key of a "
        "renamed VLM checkpoint and would silently restart from the base weights",
        parameters=("resume_from_checkpoint", "model"),
        relied_on_by="train",
    ),
)


@dataclass(frozen=True)
class InternalHelper:
    """A TRL helper from a module TRL's top level does not export; `parameters` as for PrivateName."""

    module: str
    name: str
    parameters: tuple[str, ...]
    reason: str


INTERNAL_HELPERS: tuple[InternalHelper, ...] = (
    InternalHelper(
        "trl.trainer.utils",
        "pad",
        ("tensors", "padding_value", "padding_side", "pad_to_multiple_of"),
        "the episode batch is padded as TRL pads its own",
    ),
    InternalHelper(
        "trl.trainer.utils",
        "nanstd",
        ("tensor", "dim", "keepdim"),
        "group advantages use TRL's std, so they are TRL's numbers",
    ),
    InternalHelper(
        "trl.trainer.utils", "nanmax", ("tensor",), "the logged maximum sampler gap, reduced as TRL does"
    ),
    InternalHelper(
        "trl.trainer.utils",
        "use_adapter",
        ("model", "adapter_name"),
        "the PEFT reference: the base model, or the adapter TRL loaded as 'ref'",
    ),
    InternalHelper(
        "trl.models.utils",
        "disable_gradient_checkpointing",
        ("model", "gradient_checkpointing_kwargs"),
        "no-grad forwards of the generation step run as TRL runs them",
    ),
    InternalHelper(
        "trl.distributed", "DistributedBackend", ("accelerator",), "the type of `_dist` (grpo_weights)"
    ),
)

# The batch `generate_and_score` returns, key by key: the keys of TRL's `_generate_and_score_completions` for
# the same settings (TRL's `_prepare_inputs`, `_compute_loss` and `_get_per_token_logps_and_entropies` read
# it). The image keys are Qwen2.5-VL's and InternVL's.
GENERATION_BATCH_KEYS: dict[str, str] = {
    "prompt_ids": "everything before the model's first token, left-padded",
    "prompt_mask": "1 on prompt tokens",
    "completion_ids": "the rest of the episode (model turns, scripted turns, tool responses), right-padded",
    "completion_mask": "1 on completion tokens",
    "tool_mask": "1 exactly on the tokens the model sampled (TRL's key for multi-turn tool episodes)",
    "sampling_per_token_logps": "the sampler's logprobs of the completion (TRL's key for vLLM's)",
    "advantages": "A_i of Eq. 9, (B,), or (B, T) with the sampler importance weights folded in",
    "num_items_in_batch": "model tokens of the whole generation batch, all processes",
    "old_per_token_logps": "pi_theta_old, when the generation batch spans optimizer steps",
    "ref_per_token_logps": "the reference's logprobs, when beta != 0",
    "pixel_values": "every image of every episode, in sample order",
    "image_grid_thw": "Qwen2.5-VL: patches per image",
    "mm_token_type_ids": "Qwen2.5-VL: which tokens are image tokens, over prompt + completion",
    "num_images": "images per episode (the dataset image and each tool output)",
    "num_tiles": "InternVL: tiles per episode",
}

# Keys TRL's generation step may return that `generate_and_score` never does, and why.
TRL_ONLY_BATCH_KEYS: dict[str, str] = {
    "importance_sampling_ratio": "the sampler importance weights are folded into `advantages` instead",
    "pixel_attention_mask": "an image input of architectures the project does not train",
    "spatial_shapes": "an image input of architectures the project does not train",
    "image_sizes": "an image input of architectures the project does not train",
    "token_type_ids": "an image input of architectures the project does not train",
    "image_position_ids": "an image input of architectures the project does not train",
}


# -- hooks: TRL's and Trainer's private methods under public names ----------------------------------------
class GRPOTrainerHooks(GRPOTrainer):
    """TRL's GRPOTrainer whose generation step is `generate_and_score`: TRL calls it once per generation
    batch and trains on the batch it returns (GENERATION_BATCH_KEYS)."""

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        return self.generate_and_score(inputs)

    def generate_and_score(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        return super()._generate_and_score_completions(inputs)


class CheckpointHooks:
    """Mixin, listed before a transformers Trainer subclass: Trainer's checkpoint steps under public names
    (`save_checkpoint`, `checkpoint_output_dir`, `load_checkpoint`), Trainer's own unless overridden."""

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        self.save_checkpoint(model, trial)

    def _get_output_dir(self, trial: Any) -> str:
        return self.checkpoint_output_dir(trial)

    def _load_from_checkpoint(
        self, resume_from_checkpoint: str, model: torch.nn.Module | None = None
    ) -> None:
        self.load_checkpoint(resume_from_checkpoint, model)

    def save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        super()._save_checkpoint(model, trial)  # type: ignore[misc]

    def checkpoint_output_dir(self, trial: Any) -> str:
        return super()._get_output_dir(trial)  # type: ignore[misc]

    def load_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]


# -- calls and buffers --------------------------------------------------------------------------------------
def per_token_logps(
    trainer: GRPOTrainer,
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    *,
    batch_size: int,
    num_images: list[int] | None,
    num_tiles: list[int] | None,
    **image_inputs: torch.Tensor,
) -> torch.Tensor:
    """(B, logits_to_keep) logprobs of the last `logits_to_keep` tokens under `model`, by TRL's forward with
    its fused LM head; `image_inputs` are keys of GENERATION_BATCH_KEYS that the forward takes (pixel_values,
    ...)."""
    logps, _, _ = trainer._get_per_token_logps_and_entropies(
        model=model,
        input_ids=input_ids,
        attention_mask=attention_mask,
        logits_to_keep=logits_to_keep,
        batch_size=batch_size,
        num_images=num_images,
        num_tiles=num_tiles,
        **image_inputs,
    )
    return logps


def per_token_logps_and_term(
    trainer: GRPOTrainer,
    model: torch.nn.Module,
    term: Callable[[torch.Tensor], torch.Tensor],
    **forward: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_token_logps` (`forward` is its arguments after the model), and `term` of the logits (divided by
    the temperature) that predict each of those tokens, both from one forward: the same batching and
    per-sample image slicing, through the model's plain forward in place of the fused LM head, which never
    materialises logits."""
    values = per_token_logps(trainer, _LogitsView(model, trainer.temperature, term), **forward)
    return values[..., 0], values[..., 1]


class _LogitsView:
    """Stands in for the policy in TRL's `_get_per_token_logps_and_entropies`, which calls
    `model(**inputs, labels=labels, fused_lm_head=True)` and keeps `.log_probs[:, -logits_to_keep:]`, laid out
    like the fused head's (B, L - 1): column j - 1 scores token j, a token being scored where its label is not
    -100. Its `log_probs` are (B, L - 1, 2): the token's logprob and `term` of the logits. The plain forward
    computes logits only from the first scored token on (`logits_to_keep`)."""

    def __init__(
        self, model: torch.nn.Module, temperature: float, term: Callable[[torch.Tensor], torch.Tensor]
    ) -> None:
        self.model = model
        self.temperature = temperature
        self.term = term

    def __call__(self, *, labels: torch.Tensor, fused_lm_head: bool, **inputs: Any) -> SimpleNamespace:
        values = torch.zeros(labels.shape[0], labels.shape[1] - 1, 2, device=labels.device)
        scored = (labels != -100).any(dim=0).nonzero()
        if scored.numel():
            keep = labels.shape[1] - int(scored[0])
            logits = self.model(**inputs, logits_to_keep=keep + 1, use_cache=False).logits[:, :-1]
            logits = logits.float() / self.temperature
            targets = labels[:, -keep:]
            # log p = logit - logsumexp: no second (tokens x vocabulary) tensor, as log_softmax would make.
            chosen = logits.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
            logps = chosen - logits.logsumexp(dim=-1)
            values[:, -keep:, 0] = logps.masked_fill(targets == -100, 0.0)
            values[:, -keep:, 1] = self.term(logits)
        return SimpleNamespace(log_probs=values)


def calculate_rewards(
    trainer: GRPOTrainer,
    inputs: list[dict[str, Any]],
    prompts: list[str],
    completions: list[str],
    completion_ids: list[list[int]],
) -> torch.Tensor:
    """(N_all, K) rewards of every reward function, gathered from every process (NaN where one returned
    None)."""
    return trainer._calculate_rewards(
        inputs=inputs, prompts=prompts, completions=completions, completion_ids_list=completion_ids
    )


def log_completion_extra(trainer: GRPOTrainer, column: str, values: list[Any]) -> None:
    """One extra column of the completions table, one value per completion of this process."""
    trainer._log_completion_extra(column=column, values=values)


def metrics(trainer: Any, mode: str) -> dict[str, list[float]]:
    """The metric lists of `mode` ('train' or 'eval') that the trainer's `log` averages (GRPO and SFT)."""
    return trainer._metrics[mode]


def pad_token_id(trainer: GRPOTrainer) -> int:
    return trainer._tokenizer.pad_token_id


def distributed_backend(trainer: GRPOTrainer) -> DistributedBackend:
    return trainer._dist


def add_completion_rows(
    trainer: GRPOTrainer,
    *,
    prompts: list[str],
    completions: list[str],
    rewards: dict[str, list[float]],
    advantages: list[float],
) -> None:
    """Rows of TRL's completions table (written by `log` with log_completions), already gathered from every
    process; `rewards` has one list per reward function."""
    table = trainer._logs
    table["prompt"].extend(prompts)
    table["completion"].extend(completions)
    for name, values in rewards.items():
        table["rewards"][name].extend(values)
    table["advantages"].extend(advantages)


def flush_user_logs(trainer: GRPOTrainer, mode: str, rows: int) -> None:
    """What reward functions logged through `log_extra` and `log_metric` into the completions table and the
    metrics, as TRL's generation step flushes them: every process calls it (the columns are gathered in
    sorted order, so all ranks gather the same sequence); `rows` is this process's completions."""
    extra = trainer._pending_extra_logs
    for column in _everyones_keys(extra):
        trainer._logs["extra"][column].extend(gather_object(extra.get(column, [None] * rows)))
    extra.clear()
    pending = trainer._pending_metrics
    device = trainer.accelerator.device
    for name in _everyones_keys(pending):
        values = pending.get(name, [])
        local = torch.tensor([sum(values), len(values)], dtype=torch.float32, device=device)
        total, count = trainer.accelerator.gather(local).view(-1, 2).sum(dim=0).tolist()
        trainer._metrics[mode][name].append(total / max(count, 1))
    pending.clear()


def _everyones_keys(buffer: dict[str, Any]) -> list[str]:
    return sorted(set(gather_object(list(buffer))))
