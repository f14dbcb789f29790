"""GRPO on TRL's `GRPOTrainer` with rollouts from the rollout server: paper 001's single-turn GRPO, paper 003's
DT-GRPO over multi-turn tool episodes, and its ST-GRPO ablation (docs/TRAINING.md).

Paper 003, Eq. 9 (paper 001's objective is the same with a clipped ratio and beta * KL):

    L = -E_{q, {o_i} ~ pi_theta_old} [ 1/G sum_i 1/|o_i| sum_t  pi_theta(o_it | q, o_i<t) / pi_theta_old(o_it | q, o_i<t) * A_it ]
    A_it = (R_i - mean({R_1..R_G})) / std({R_1..R_G})

R_i is Eq. 6 of paper 001, Eq. 14 (DT-GRPO) or Eq. S15 (ST-GRPO) of paper 003 (rft.rewards, via the reward
service). In an episode, o_i is what the model generated: its fast answer and every reasoning turn, never the
scripted re-examine turn, the tool responses or any image token; |o_i| counts those tokens only.

`EpisodeGRPOTrainer` replaces TRL's generation step (`generate_and_score`, which rft.trainers.trl_adapter
calls in place of TRL's `_generate_and_score_completions`), because TRL's version builds the forward pass
from the dataset prompt and its images only (images a `rollout_func` adds never reach it;
docs/TRAINING.md). Every private TRL name it uses goes through that adapter. The replacement:

1. pushes the policy's weights to the episode source when the optimizer has stepped since the last push;
2. gathers the batch's images to the main process, which asks the source for G episodes per image (the
   dataloader repeats each image G times, as for TRL's vLLM server mode), and broadcasts them back; each
   process keeps its slice;
3. expands every image of each episode (rft.trainers.grpo_batch) into TRL's padded prompt/completion
   batch, with the episode's model-token mask as TRL's `tool_mask` (so TRL's loss mask is exactly the
   model's tokens);
4. scores the episodes (reward service, or TRL's reward-function path), gathers the scores and computes
   group-relative advantages exactly as TRL does (rft.trainers.grpo_math);
5. recomputes the policy's logprobs of the sampled tokens on the sampler's terms (top_p's kept mass), for
   the sampler/trainer importance correction and the logged sampler KL; pi_theta_old with TRL's own forward
   when the generation batch spans optimizer steps; and the reference logprobs when beta != 0;
6. logs every reward component, tool use per tool, turns per episode, lengths, the sampler KL and times.

Everything after that is TRL's: batch buffering and shuffling, `_compute_loss` (ratio, clipping, the loss
aggregation of `loss_type`, KL to the reference, clip-ratio and entropy metrics), the optimizer, DeepSpeed.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import datasets
import torch
from accelerate.utils import broadcast_object_list, gather_object
from PIL import Image
from transformers import PreTrainedModel, ProcessorMixin, TrainerCallback
from trl import GRPOConfig

from rft.methods import Coefficients, method_named
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import ARCH_BY_MODEL_TYPE, install_chat_template
from rft.parsing.labels import Label, as_label
from rft.parsing.tar_fas import DEFAULT_MAX_TOOL_CALLS
from rft.prompts.episodes import Message
from rft.rollout.episode import Episode, model_token_ids, single_turn_episode
from rft.rollout.protocols import EpisodeSource, RewardScorer
from rft.rollout.sampling import Sampling
from rft.trainers.grpo_batch import collate_episodes, episode_tensors
from rft.trainers.grpo_math import (
    group_advantages,
    nucleus_log_mass,
    sampler_importance_weights,
    sampler_kl,
    token_advantages,
)
from rft.trainers.grpo_metrics import episode_metrics, summarize
from rft.trainers.grpo_mutations import active_mutation, mutate_advantages, mutate_episode
from rft.trainers.grpo_rewards import score_with_service
from rft.trainers.grpo_settings import UnsupportedSetting, check_arguments
from rft.trainers.grpo_weights import full_weights
from rft.trainers.rollout_records import RolloutRecorder
from rft.trainers.trl_adapter import (
    GRPOTrainerHooks,
    add_completion_rows,
    calculate_rewards,
    disable_gradient_checkpointing,
    distributed_backend,
    flush_user_logs,
    log_completion_extra,
    metrics,
    nanmax,
    nanstd,
    pad_token_id,
    per_token_logps,
    per_token_logps_and_term,
    use_adapter,
)

log = logging.getLogger(__name__)

# Image inputs of TRL's forward (trl_adapter.per_token_logps) that the episode batch can carry.
FORWARD_KEYS = ("pixel_values", "image_grid_thw", "mm_token_type_ids")


def recorded_attributes(inputs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each example's attack type and domain, where its dataset has them (rollout records, dashboard)."""
    names = {"spoof_type": "attack_type", "domain": "domain"}
    return [{names[k]: str(example[k]) for k in names if example.get(k) is not None} for example in inputs]


class EpisodeGRPOTrainer(GRPOTrainerHooks):
    """GRPOTrainer whose completions are rollout-server episodes (or paper 001's single-turn samples),
    trained with every image of the episode in the forward pass and a loss on the model's tokens only.

    `method`: a name of rft.methods' table: 'rft_fas' (paper 001, `episode_source.samples` with `messages`),
    'dt_grpo' or 'st_grpo' (paper 003, `episode_source.episodes`). `reward_scorer`: the reward service's
    client (HTTP or in-process, rft.rollout.protocols.RewardScorer), or None for TRL's own reward-function
    path over the `rft.rewards.trl` adapters. The dataset needs an
    `image` column (PIL image or path) and a `label` column ('live'/'spoof' or 0/1). `episode_source` is
    used on the main process only; other processes may pass None."""

    def __init__(
        self,
        model: PreTrainedModel,
        *,
        args: GRPOConfig,
        train_dataset: datasets.Dataset,
        processing_class: ProcessorMixin,
        episode_source: EpisodeSource | None,
        method: str = "dt_grpo",
        reward_scorer: RewardScorer | None = None,
        coefficients: Coefficients = None,
        max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
        messages: list[Message] | None = None,
        eval_dataset: datasets.Dataset | None = None,
        callbacks: list[TrainerCallback] | None = None,
        peft_config: Any | None = None,
        rollout_seed: int | None = None,
        recorder: RolloutRecorder | None = None,
    ) -> None:
        check_arguments(args)
        self.method = method_named(method)
        reward_funcs, weights = self.method.reward_functions(coefficients, max_tool_calls)
        if args.reward_weights is None:
            args.reward_weights = weights
        arch = ARCH_BY_MODEL_TYPE[model.config.model_type]
        super().__init__(
            model=model,
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=install_chat_template(processing_class, arch),
            # The timer goes before the caller's callbacks: a step's time must end before a callback that
            # runs at its end (the target evaluation) starts.
            callbacks=[_StepTimer(self), *(callbacks or [])],
            peft_config=peft_config,
        )
        self.conversation = ConversationTokenizer(processing_class, arch)
        self.episode_source = episode_source
        self.coefficients = coefficients if coefficients is not None else self.method.default_coefficients()
        self.max_tool_calls = max_tool_calls
        self.messages = messages if messages is not None else self._default_messages()
        self.reward_client = reward_scorer
        self.rollout_seed = rollout_seed
        self.recorder = recorder
        self._all_episodes: list[Episode] = []  # the whole generation batch, on the main process
        if self.reward_client is not None and [float(w) for w in args.reward_weights] != weights:
            raise UnsupportedSetting(
                f"reward_weights {args.reward_weights} differ from the coefficients' {weights}; the reward "
                "service computes its totals from the coefficients, so change those instead"
            )
        self._last_synced_step = -1  # as TRL's vLLM sync: the first generation pushes the weights too
        self._pushed_version: int | None = None
        self._seconds: dict[str, float] = defaultdict(float)  # rollout / reward / weight sync, this step
        # A deliberate breakage for the learning test only (rft.trainers.grpo_mutations); None in real runs.
        self.mutation = active_mutation()
        if self.mutation is not None:
            log.warning("test mutation %s is active: this run is broken on purpose", self.mutation)

    # -- TRL's generation step, replaced ------------------------------------------------------------------
    def generate_and_score(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        mode = "train" if self.model.training else "eval"
        group = self.num_generations if mode == "train" else self.num_generations_eval
        images = [dataset_image(example) for example in inputs]
        labels = [as_label(example["label"]) for example in inputs]
        self.sync_weights()
        episodes, version = self._timed("rollout", self._rollouts, images, group)
        batch = self._episode_batch([mutate_episode(e, self.mutation) for e in episodes])
        rewards_per_func, components = self._timed("reward", self._score, episodes, labels)
        scored = group_advantages(
            rewards_per_func,
            self.reward_weights,
            num_generations=group,
            scale_rewards=self.scale_rewards,
            aggregation=self.multi_objective_aggregation,
        )
        advantages = mutate_advantages(scored.advantages[self._local_slice(len(inputs))], self.mutation)
        batch["advantages"] = advantages
        loss_mask = batch["completion_mask"] * batch["tool_mask"]
        batch["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._add_policy_logps(batch, loss_mask, mode)
        self._log_episodes(mode, episodes, batch, version)
        self._log_rewards(mode, rewards_per_func, components, scored)
        self._log_completions(episodes, labels, rewards_per_func, scored.advantages)
        self._record(mode, labels, rewards_per_func, components, scored, version, recorded_attributes(inputs))
        return batch

    # -- rollouts -----------------------------------------------------------------------------------------
    def sync_weights(self) -> None:
        """Push the policy to the episode source once per optimizer step (TRL's `_last_loaded_step` rule)."""
        if self.state.global_step == self._last_synced_step:
            return
        start = time.perf_counter()
        is_main = self.accelerator.is_main_process
        weights = full_weights(
            self.accelerator.unwrap_model(self.model), distributed_backend(self), keep=is_main
        )
        if is_main:
            self._pushed_version = self._source().update_weights(weights)
        self._last_synced_step = self.state.global_step
        self._seconds["weight_sync"] += time.perf_counter() - start

    def _rollouts(self, images: list[Image.Image], group: int) -> tuple[list[Episode], int]:
        """This process's episodes, aligned with its `images`: the main process samples G per distinct
        image of the whole batch (consecutive runs of G copies, as TRL's RepeatSampler lays them out)."""
        everything = gather_object(images)
        payload = [self._request(everything[::group], group) if self.accelerator.is_main_process else None]
        broadcast_object_list(payload, from_process=0)
        episodes, version = payload[0]
        if self.accelerator.is_main_process:
            self._all_episodes = episodes
        return episodes[self._local_slice(len(images))], version

    def _request(self, images: list[Image.Image], group: int) -> tuple[list[Episode], int]:
        sampling = Sampling(
            max_tokens=self.max_completion_length,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self._step_seed(),
        )
        if self.method.rollout == "single_turn":
            reply = self._source().samples(self.messages, images, n=group, sampling=sampling)
            groups = [
                [
                    single_turn_episode(g.prompt_ids, c, image, self.messages, self.conversation)
                    for c in g.completions
                ]
                for g, image in zip(reply.groups, images, strict=True)
            ]
            version = reply.weights_version
        else:
            groups, version = self._source().episodes(images, n=group, sampling=sampling)
        if [len(g) for g in groups] != [group] * len(images):
            raise RuntimeError(
                f"asked {group} rollouts for each of {len(images)} images, got {[len(g) for g in groups]}"
            )
        if self._pushed_version is not None and version < self._pushed_version:
            log.warning(
                "rollouts came from weights version %d, older than the pushed %d",
                version,
                self._pushed_version,
            )
        return [episode for g in groups for episode in g], version

    def _step_seed(self) -> int | None:
        """With `rollout_seed`, the rollouts of a step are a function of the seed, the step and the weights,
        so a resumed run samples what the uninterrupted one did."""
        if self.rollout_seed is None:
            return None
        return (self.rollout_seed * 1_000_003 + self.state.global_step * 7_919) % (2**31)

    def _default_messages(self) -> list[Message]:
        return self.method.prompt() if self.method.prompt is not None else []

    def _source(self) -> EpisodeSource:
        if self.episode_source is None:
            raise RuntimeError(
                "the main process needs an episode_source (RolloutClient or InProcessRollouts)"
            )
        return self.episode_source

    def _local_slice(self, count: int) -> slice:
        index = self.accelerator.process_index
        return slice(index * count, (index + 1) * count)

    # -- batch --------------------------------------------------------------------------------------------
    def _episode_batch(self, episodes: list[Episode]) -> dict[str, Any]:
        batch = collate_episodes(
            [episode_tensors(e, self.conversation) for e in episodes],
            pad_token_id=pad_token_id(self),
            mask_truncated=self.mask_truncated_completions,
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        device = self.accelerator.device
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _policy_logps(self, model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """Per-token logprobs of the completion under `model`, by TRL's batched forward (fused LM head,
        temperature, per-sample image slicing)."""
        return per_token_logps(
            self, model, **self._forward_inputs(batch, self.args.per_device_train_batch_size)
        )

    def _forward_inputs(self, batch: dict[str, Any], batch_size: int) -> dict[str, Any]:
        """`per_token_logps`'s arguments after the model, for the episode batch `batch`."""
        return {
            "input_ids": torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1),
            "attention_mask": torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1),
            "logits_to_keep": batch["completion_ids"].size(1),
            "batch_size": batch_size,
            "num_images": batch["num_images"],
            "num_tiles": batch.get("num_tiles"),
            **{key: batch[key] for key in FORWARD_KEYS if key in batch},
        }

    def _sampler_terms_logps(self, batch: dict[str, Any], old: torch.Tensor | None) -> torch.Tensor:
        """pi_theta_old's logprobs on the sampler's terms. With top_p < 1 vLLM reports each token's logprob
        renormalised over the tokens its nucleus kept (`processed_logprobs`), so the trainer's full-vocabulary
        logprob is lowered by the same kept mass, from its own logits; the importance weights then measure the
        two engines' drift, not the truncation (which alone made them about 0.1 for a 100-token episode at
        top_p 0.9). Logprobs and kept mass come from one plain forward, one episode at a time (it holds a
        tokens x vocabulary logits tensor); on the CPU that costs less than the fused head's batched pass,
        which scores the prompt's positions too."""
        if self.top_p >= 1:
            return old if old is not None else self._policy_logps(self.model, batch)
        kept = partial(nucleus_log_mass, top_p=self.top_p)
        logps, log_kept = per_token_logps_and_term(self, self.model, kept, **self._forward_inputs(batch, 1))
        return logps - log_kept

    def _add_policy_logps(self, batch: dict[str, Any], loss_mask: torch.Tensor, mode: str) -> None:
        """pi_theta_old's logprobs where the generation batch spans optimizer steps (otherwise TRL's loss
        takes its own forward's, detached: the same policy, and a ratio of exactly 1), the sampler importance
        weights folded into the advantages, and the reference logprobs for beta != 0."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        needs_old = self.args.gradient_accumulation_steps % generate_every != 0
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
        ):
            old = None
            if needs_old:
                old = batch["old_per_token_logps"] = self._policy_logps(self.model, batch)
            if needs_old or self.vllm_importance_sampling_correction:
                as_sampled = self._sampler_terms_logps(batch, old)
                self._log_sampler_gap(mode, as_sampled, batch["sampling_per_token_logps"], loss_mask)
                if self.vllm_importance_sampling_correction:
                    weights = sampler_importance_weights(
                        as_sampled,
                        batch["sampling_per_token_logps"],
                        loss_mask,
                        mode=self.vllm_importance_sampling_mode,
                        clip_min=self.vllm_importance_sampling_clip_min,
                        clip_max=self.vllm_importance_sampling_clip_max,
                    )
                    batch["advantages"] = token_advantages(batch["advantages"], weights, loss_mask)
                    self._log_weights(mode, weights, loss_mask)
            if self.beta != 0.0:
                batch["ref_per_token_logps"] = self._reference_logps(batch)

    def _reference_logps(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.ref_model is not None:
            return self._policy_logps(self.ref_model, batch)
        # PEFT: the base model is the reference (TRL's rule: the adapter named "ref" when one was loaded).
        model = self.accelerator.unwrap_model(self.model)
        with use_adapter(model, adapter_name="ref" if "ref" in model.peft_config else None):
            return self._policy_logps(self.model, batch)

    # -- rewards ------------------------------------------------------------------------------------------
    def _score(
        self, episodes: list[Episode], labels: list[Label]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(N_all, K) reward columns gathered from every process, and the service's components (gathered)."""
        if self.reward_client is None:
            return self._score_with_reward_funcs(episodes, labels), {}
        scored = score_with_service(
            self.reward_client,
            self.method,
            episodes,
            labels,
            coefficients=self.coefficients,
            max_tool_calls=self.max_tool_calls,
            weights=self.reward_weights.tolist(),
        )
        log_completion_extra(self, "format_errors", ["; ".join(errors) for errors in scored.format_errors])
        device = self.accelerator.device
        columns = self.accelerator.gather(scored.columns.to(device))
        names = sorted(scored.components)
        values = torch.tensor([scored.components[n] for n in names], dtype=torch.float32, device=device).T
        gathered = self.accelerator.gather(values.contiguous())
        return columns, {name: gathered[:, i] for i, name in enumerate(names)}

    def _score_with_reward_funcs(self, episodes: list[Episode], labels: list[Label]) -> torch.Tensor:
        """TRL's `_calculate_rewards` over the `rft.rewards.trl` adapters: `label` and `episode_turns` are
        their reward kwargs; a completion is the text of the model's turns."""
        inputs = [
            {"label": label, "episode_turns": list(e.turns)}
            for e, label in zip(episodes, labels, strict=True)
        ]
        prompts = [prompt_text(e) for e in episodes]
        completions = ["".join(e.turns) for e in episodes]
        return calculate_rewards(self, inputs, prompts, completions, [model_token_ids(e) for e in episodes])

    # -- logging ------------------------------------------------------------------------------------------
    def _timed(self, name: str, func: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return func(*args)
        finally:
            self._seconds[name] += time.perf_counter() - start

    def _gather_floats(self, values: Sequence[float]) -> torch.Tensor:
        return self.accelerator.gather(
            torch.tensor(list(values), dtype=torch.float32, device=self.accelerator.device)
        )

    def _log_episodes(self, mode: str, episodes: list[Episode], batch: dict[str, Any], version: int) -> None:
        """TRL's length metrics (model tokens only), tool use, turns, stop reasons, weights version."""
        logged = metrics(self, mode)
        lengths = self._gather_floats([e.completion_tokens for e in episodes])
        prompts = self._gather_floats(batch["prompt_mask"].sum(dim=1).float().tolist())
        truncated = self._gather_floats([float(e.truncated) for e in episodes]).bool()
        if mode == "train":
            self.state.num_input_tokens_seen += int((prompts.sum() + lengths.sum()).item())
        logged["num_tokens"] = [self.state.num_input_tokens_seen]
        logged["completions/mean_length"].append(lengths.mean().item())
        logged["completions/min_length"].append(lengths.min().item())
        logged["completions/max_length"].append(lengths.max().item())
        logged["completions/clipped_ratio"].append(truncated.float().mean().item())
        terminated = lengths[~truncated] if (~truncated).any() else torch.zeros(1)
        logged["completions/mean_terminated_length"].append(terminated.mean().item())
        for name, value in episode_metrics(gather_object([summarize(e) for e in episodes])).items():
            logged[name].append(value)
        logged["rollout/weights_version"].append(float(version))

    def _log_rewards(
        self, mode: str, rewards_per_func: torch.Tensor, components: dict[str, torch.Tensor], scored: Any
    ) -> None:
        """TRL's reward metrics (`rewards/<func>/{mean,std}`, `reward`, `reward_std`,
        `frac_reward_zero_std`) and every component the service returned (`reward_components/<name>`)."""
        logged = metrics(self, mode)
        for i, name in enumerate(self.reward_func_names):
            logged[f"rewards/{name}/mean"].append(torch.nanmean(rewards_per_func[:, i]).item())
            logged[f"rewards/{name}/std"].append(nanstd(rewards_per_func[:, i]).item())
        for name, values in components.items():
            logged[f"reward_components/{name}/mean"].append(values.mean().item())
        # R_rsn (Eq. 11) is 1 exactly when the reasoning is well-formed and its final answer right.
        r_rsn = components.get("reasoning")
        if r_rsn is None and "r_rsn" in self.reward_func_names:
            r_rsn = rewards_per_func[:, self.reward_func_names.index("r_rsn")]
        if r_rsn is not None:
            logged["episodes/final_correct"].append((r_rsn == 1).float().mean().item())
        logged["reward"].append(torch.nanmean(scored.rewards).item())
        logged["reward_std"].append(nanstd(scored.rewards).item())
        logged["frac_reward_zero_std"].append(scored.std_is_zero.float().mean().item())

    def _log_sampler_gap(
        self, mode: str, trainer: torch.Tensor, sampler: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """How far the trainer's logprobs of the sampled tokens are from vLLM's: TRL's
        `sampling/sampling_logp_difference/*`, and `sampling/kl`, KL(pi_sampler || pi_theta) (k3)."""
        delta = (trainer - sampler).abs()[mask.bool()]
        local_max = delta.max() if delta.numel() else torch.zeros((), device=delta.device)
        totals = torch.stack([delta.sum(), sampler_kl(trainer, sampler, mask).sum(), mask.sum().float()])
        totals = self.accelerator.reduce(totals, reduction="sum")
        logged = metrics(self, mode)
        logged["sampling/sampling_logp_difference/mean"].append((totals[0] / totals[2].clamp(min=1)).item())
        logged["sampling/sampling_logp_difference/max"].append(
            nanmax(self.accelerator.gather(local_max[None])).item()
        )
        logged["sampling/kl"].append((totals[1] / totals[2].clamp(min=1)).item())

    def _log_weights(self, mode: str, weights: torch.Tensor, mask: torch.Tensor) -> None:
        """`sampling/importance_sampling_ratio/mean`: over model tokens (token modes) or sequences."""
        chosen = weights.flatten() if weights.shape[1] == 1 else weights[mask.bool()]
        totals = self.accelerator.reduce(
            torch.stack([chosen.sum(), chosen.new_tensor(float(chosen.numel()))]), "sum"
        )
        metrics(self, mode)["sampling/importance_sampling_ratio/mean"].append(
            (totals[0] / totals[1].clamp(min=1)).item()
        )

    def _log_completions(
        self,
        episodes: list[Episode],
        labels: list[Label],
        rewards_per_func: torch.Tensor,
        advantages: torch.Tensor,
    ) -> None:
        """The completions table of TRL (`log_completions`), with each episode's label, turns, stop reason and
        tool calls as extra columns: enough to recompute its rewards from the log."""
        add_completion_rows(
            self,
            prompts=gather_object([prompt_text(e) for e in episodes]),
            completions=gather_object(
                [self.conversation.decode(e.token_ids[e.prompt_length :]) for e in episodes]
            ),
            rewards={name: rewards_per_func[:, i].tolist() for i, name in enumerate(self.reward_func_names)},
            advantages=advantages.tolist(),
        )
        log_completion_extra(self, "label", list(labels))
        log_completion_extra(self, "episode_turns", [json.dumps(e.turns) for e in episodes])
        log_completion_extra(self, "stop_reason", [e.stop_reason for e in episodes])
        log_completion_extra(
            self, "tool_calls", [json.dumps([c.name for c in e.tool_calls]) for e in episodes]
        )
        flush_user_logs(self, "train" if self.model.training else "eval", rows=len(episodes))

    def _record(
        self,
        mode: str,
        labels: list[Label],
        rewards_per_func: torch.Tensor,
        components: dict[str, torch.Tensor],
        scored: Any,
        version: int,
        attributes: list[dict[str, str]],
    ) -> None:
        """Every episode of the generation batch, with its rewards, to the rollout inspector's records."""
        if self.recorder is None or mode != "train":
            return
        everyone = gather_object(list(labels))
        everyones_attributes = gather_object(attributes)
        if not self.accelerator.is_main_process:
            return
        columns = {name: rewards_per_func[:, i].tolist() for i, name in enumerate(self.reward_func_names)}
        columns.update({f"component/{name}": values.tolist() for name, values in components.items()})
        self.recorder.record(
            step=self.state.global_step + 1,  # the optimizer step these episodes train
            episodes=self._all_episodes,
            labels=everyone,
            rewards=columns,
            totals=scored.rewards.tolist(),
            advantages=scored.advantages.tolist(),
            group_size=self.num_generations,
            weights_version=version,
            attributes=everyones_attributes,
        )

    def _record_step_seconds(self, seconds: float) -> None:
        """`time/{rollout,reward,weight_sync,update}_s` of the optimizer step that just ended; update is
        the rest of the step (batch building, forward and backward passes, optimizer)."""
        spent = dict(self._seconds)
        self._seconds.clear()
        logged = metrics(self, "train")
        for name in ("rollout", "reward", "weight_sync"):
            logged[f"time/{name}_s"].append(spent.get(name, 0.0))
        logged["time/update_s"].append(max(seconds - sum(spent.values()), 0.0))


class _StepTimer(TrainerCallback):
    """Wall time of each optimizer step, from its first micro-batch to the optimizer step."""

    def __init__(self, trainer: EpisodeGRPOTrainer) -> None:
        self.trainer = trainer
        self.start = time.perf_counter()

    def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.trainer._record_step_seconds(time.perf_counter() - self.start)


def dataset_image(example: Mapping[str, Any]) -> Image.Image:
    """The example's `image` column as an RGB PIL image (decoded `datasets.Image`, or a path)."""
    image = example["image"]
    if isinstance(image, str):
        image = Image.open(image)
    elif isinstance(image, Mapping):  # an undecoded datasets.Image value
        image = datasets.Image().decode_example(dict(image))
    return image.convert("RGB")


def prompt_text(episode: Episode) -> str:
    """The user's first turn as text (the logged prompt; the system prompt is the same for every episode)."""
    for message in episode.messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(
            "<image>" if part.get("type") == "image" else part.get("text", "") for part in content
        )
    return ""
