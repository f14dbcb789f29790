"""Target-domain evaluation of a policy by the probability of its fast answer and of its final answer.

Paper 003 (Sec. 4.1) computes AUC from "the logits of the classification token". A TAR-FAS episode has two
classification points, both scored here the same way, by the log-probability the model gives to each class
text after the same prefix:

    P(spoof) = sigmoid(logp(spoof answer | prefix) - logp(live answer | prefix))

- the *fast* answer: the first turn, "<CLS><reason>..</reason>" right after the first-round query
  (`rft.eval.scoring.spoof_probabilities`, with the system turn the rollout server renders);
- the *final* answer: the class the model writes inside <answer>..</answer> at the end of a greedy episode
  (paper 003: "<answer><Spoof></answer>"; paper 001: "<answer>fake</answer>"). The episode is sampled by the
  rollout server (or vLLM in-process) with every tool executed for real, and the class is scored with every
  image of the episode (the dataset image and each tool output) in the forward pass.

`evaluate_targets` returns one `rft.eval.report.compute_report` report per target domain and answer, and
`flatten_metrics` turns them into the scalars a tracker logs. In a distributed run every process must call
`evaluate_targets` with the same arguments: only the main process asks the episode source for episodes, which
are broadcast, and every forward pass is sharded over the processes in shards of equal length, so that under
DeepSpeed ZeRO-3 (where each forward is a collective that gathers the partitioned parameters) every rank runs
the same number of forwards. The caller pushes the current weights to the episode source first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import datasets
import torch
from accelerate.utils import broadcast_object_list, gather_object
from PIL import Image
from tqdm import tqdm

from rft.eval.report import compute_report
from rft.eval.sample_records import image_name, sample_row, save_images
from rft.eval.scoring import FAST_ANSWER_CLASSES, fast_answer_messages, spoof_probabilities
from rft.methods import TAR_FAS_FINAL_CLASSES, Method, method_named
from rft.models.conversation import END_OF_TURN, VISION_TOKENS, ConversationTokenizer, find_subsequences
from rft.parsing.labels import as_label
from rft.prompts.episodes import first_turn_messages
from rft.rollout.episode import Episode, single_turn_episode, without_sampled_vision_tokens
from rft.rollout.protocols import EpisodeSource
from rft.rollout.sampling import Sampling
from rft.tools.schemas import tool_schemas

T = TypeVar("T")
R = TypeVar("R")

ANSWER_OPEN = "<answer>"
METRICS = ("hter", "auc")


@dataclass(frozen=True)
class FinalPrefix:
    """Where an episode's final class is written: the compact ids before its last model turn, the text of
    that turn up to and including its last `<answer>` tag, and every image of the episode."""

    ids: list[int]
    text: str
    images: list[Image.Image]


# ------------------------------------------------------------------------------- the final answer


def last_model_turn_start(mask: Sequence[int]) -> int:
    """Index of the first token of the episode's last model turn: the start of the last run of mask 1."""
    end = next((i for i in range(len(mask) - 1, -1, -1) if mask[i]), None)
    if end is None:
        raise ValueError("the episode has no model token (its mask is all 0)")
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return start


def final_answer_prefix(
    episode: Episode, tokenizer: ConversationTokenizer, answer_open: str = ANSWER_OPEN
) -> tuple[FinalPrefix, bool]:
    """Where the episode's final class is written, and whether the answer was forced.

    The prefix is the episode's ids before its last model turn (the last run of mask 1) and that turn's text
    (`episode.turns[-1]`) up to and including its last `answer_open`, with the images whose placeholders
    those ids hold. The model's own class is never part of it.

    Forced answer: when the last turn holds no `answer_open` (a malformed turn, a tool call past the limit,
    a turn cut by max_tokens before the tag, a full context), the episode gave no final class. Its final
    answer is then forced: the text is `answer_open` alone, written in place of the turn the model wrote,
    and `forced` is True. Such episodes are still scored (a sample is never dropped, so every target keeps
    all its samples) and `evaluate_targets` reports their fraction.
    """
    start = last_model_turn_start(episode.mask)
    before = list(episode.token_ids[:start])
    # An episode stopped for a full context right after a tool ran ends with that tool's image, whose
    # placeholder comes after the last model turn: it is not part of the prefix.
    images = list(episode.images[: len(find_subsequences(before, tokenizer.placeholder_ids))])
    text = episode.turns[-1] if episode.turns else ""
    cut = text.rfind(answer_open)
    if cut < 0:
        return FinalPrefix(before, answer_open, images), True
    return FinalPrefix(before, text[: cut + len(answer_open)], images), False


def class_continuations(
    tokenizer: ConversationTokenizer, prefix: FinalPrefix, classes: tuple[str, str]
) -> tuple[list[int], list[list[int]]]:
    """The ids the two answers share, and each answer's remaining ids: `prefix.text + class` is tokenised
    whole for each class (as the model would have written it) and split where the two differ."""
    # An image token the model wrote would be an image slot without an image: it is dropped from the text (and
    # from the earlier turns' ids by `final_prefixes`).
    text = prefix.text
    for token in VISION_TOKENS:
        text = text.replace(token, "")
    full = [tokenizer.encode(text + answer) for answer in classes]
    shared = 0
    while shared < min(map(len, full)) and full[0][shared] == full[1][shared]:
        shared += 1
    if any(len(ids) == shared for ids in full):
        raise ValueError(f"the answer texts {classes} do not differ after {prefix.text!r}")
    return [*prefix.ids, *full[0][:shared]], [answer[shared:] for answer in full]


def continuation_logprob(
    model: torch.nn.Module,
    tokenizer: ConversationTokenizer,
    prefix_ids: Sequence[int],
    images: Sequence[Image.Image],
    continuation_ids: Sequence[int],
    device: torch.device | None = None,
) -> float:
    """log p(continuation | prefix) under `model`, by one forward over the prefix and the continuation with
    every image of the prefix expanded. Only the logits of the continuation's positions are computed."""
    k = len(continuation_ids)
    if k == 0:
        raise ValueError("the answer text encodes to no token")
    expanded = tokenizer.expand_images([*prefix_ids, *continuation_ids], images)
    device = device or _device(model)
    inputs = {key: value.to(device) for key, value in expanded.model_inputs().items()}
    # The last k + 1 positions; the first k of them predict the continuation's tokens.
    logits = model(**inputs, logits_to_keep=k + 1, use_cache=False).logits[0, :-1].float()
    targets = inputs["input_ids"][0, -k:]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).sum().item()


def answer_probabilities(
    model: torch.nn.Module,
    tokenizer: ConversationTokenizer,
    prefixes: Sequence[FinalPrefix],
    classes: tuple[str, str] = TAR_FAS_FINAL_CLASSES,
    *,
    device: torch.device | None = None,
    progress: bool = False,
) -> list[float]:
    """P(spoof) after each prefix: paper 003 Sec. 4.1's "logits of the classification token", generalised
    to class texts of several tokens as in `rft.eval.scoring`.

    `classes` is (live text, spoof text). Each answer's ids after the shared ones (`class_continuations`)
    are scored by one forward with every image of the episode expanded (model in eval mode, no gradient);
    P(spoof) is the sigmoid of logp(spoof) - logp(live). The number of forwards is always
    2 * len(prefixes), whatever the prefixes hold, as DeepSpeed ZeRO-3 needs of every rank.
    """
    scores: list[float] = []
    with _evaluating(model), torch.no_grad():
        for prefix in tqdm(prefixes, desc="final answer", unit="episode", disable=not progress):
            shared, continuations = class_continuations(tokenizer, prefix, classes)
            live, spoof = (
                continuation_logprob(model, tokenizer, shared, prefix.images, ids, device)
                for ids in continuations
            )
            scores.append(torch.sigmoid(torch.tensor(spoof - live, dtype=torch.float64)).item())
    return scores


# -------------------------------------------------------------------------------- the fast answer


def episode_fast_answer_messages(tokenizer: ConversationTokenizer) -> list[dict]:
    """Paper 003's first turn as the rollout server renders it, in the form `spoof_probabilities` renders.

    The server renders the first turn with the tool schemas appended to the system turn; the fast answer is
    scored after that same text, so the system message here carries the schemas. Raises ValueError when the
    chat template cannot render the two identically.
    """
    episode_prompt = tokenizer.render(first_turn_messages(), add_generation_prompt=True)
    system = episode_prompt.removeprefix("<|im_start|>system\n").split(END_OF_TURN, 1)[0]
    messages = fast_answer_messages(system_prompt=system)
    plain = tokenizer.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if plain != episode_prompt:
        raise ValueError("the chat template does not render the first turn as the rollout server does")
    return messages


def fast_answer_scores(
    model: torch.nn.Module,
    tokenizer: ConversationTokenizer,
    images: Sequence[Image.Image],
    *,
    batch_size: int = 16,
    progress: bool = False,
) -> list[float]:
    """P(spoof) of the fast answer (paper 003's first turn, classes "<Real>" / "<Spoof>") for each image,
    by `rft.eval.scoring.spoof_probabilities` (paper 003 Sec. 4.1, "logits of the classification token").

    The prompt is the episode's first turn (`episode_fast_answer_messages`); the inputs go to the device of
    the model's parameters. The tokenizer's padding side, which `spoof_probabilities` sets to left, is
    restored after. The number of forwards is 2 * ceil(len(images) / batch_size).
    """
    hf_tokenizer = tokenizer.processor.tokenizer
    padding_side = hf_tokenizer.padding_side
    try:
        with _evaluating(model):
            return spoof_probabilities(
                model,
                tokenizer.processor,
                list(images),
                messages=episode_fast_answer_messages(tokenizer),
                classes=FAST_ANSWER_CLASSES,
                batch_size=batch_size,
                progress=progress,
            )
    finally:
        hf_tokenizer.padding_side = padding_side


# --------------------------------------------------------------------------------------- episodes


def greedy_episodes(
    source: EpisodeSource,
    method: Method,
    tokenizer: ConversationTokenizer,
    images: Sequence[Image.Image],
    *,
    max_completion_length: int = 256,
) -> tuple[list[Episode], int]:
    """One greedy (temperature 0) episode per image from `source`, and the weights version that produced
    them. A single-turn method (paper 001) samples its prompt's completion, as a one-turn episode; a
    tool-episode method (paper 003) samples the multi-turn episode."""
    sampling = Sampling(max_tokens=max_completion_length, temperature=0.0, top_p=1.0)
    if method.rollout == "single_turn":
        messages = method.prompt() if method.prompt is not None else []
        reply = source.samples(messages, list(images), n=1, sampling=sampling)
        _check_counts([len(group.completions) for group in reply.groups], len(images))
        episodes = [
            single_turn_episode(group.prompt_ids, group.completions[0], image, messages, tokenizer)
            for group, image in zip(reply.groups, images, strict=True)
        ]
        return episodes, reply.weights_version
    groups, version = source.episodes(list(images), n=1, sampling=sampling)
    _check_counts([len(group) for group in groups], len(images))
    return [group[0] for group in groups], version


def _check_counts(counts: list[int], n_images: int) -> None:
    if counts != [1] * n_images:
        raise RuntimeError(f"asked one greedy episode for each of {n_images} images, got {counts}")


def final_prefixes(
    episodes: Sequence[Episode], tokenizer: ConversationTokenizer
) -> tuple[list[FinalPrefix], list[bool]]:
    """Each episode's final-answer prefix with all its images, and whether its answer was forced. Image
    tokens the model sampled are replaced as the trainer replaces them (`without_sampled_vision_tokens`)."""
    cleaned = [
        dataclasses.replace(episode, token_ids=without_sampled_vision_tokens(episode, tokenizer)[0])
        for episode in episodes
    ]
    pairs = [final_answer_prefix(episode, tokenizer) for episode in cleaned]
    return [prefix for prefix, _ in pairs], [forced for _, forced in pairs]


# ------------------------------------------------------------------------------------ processes


def equal_shard(items: Sequence[T], count: int, index: int) -> list[T]:
    """Process `index`'s contiguous share of `items` among `count` processes. Every share has the same
    length, ceil(len / count): the list is padded by repeating its last item (drop it with `unshard`)."""
    if not items:
        return []
    size = math.ceil(len(items) / count)
    padded = [*items, *[items[-1]] * (size * count - len(items))]
    return padded[index * size : (index + 1) * size]


def unshard(gathered: Sequence[T], total: int) -> list[T]:
    """The results of `equal_shard`'s shares concatenated in process order, without the padding."""
    if len(gathered) < total:
        raise RuntimeError(f"gathered {len(gathered)} results for {total} items")
    return list(gathered[:total])


class Processes:
    """The processes of a run (`accelerator` None: this process alone)."""

    def __init__(self, accelerator: Any | None) -> None:
        self.accelerator = accelerator

    @property
    def count(self) -> int:
        return 1 if self.accelerator is None else int(self.accelerator.num_processes)

    @property
    def index(self) -> int:
        return 0 if self.accelerator is None else int(self.accelerator.process_index)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def from_main(self, produce: Callable[[], T]) -> T:
        """`produce()` run on the main process only and broadcast to every process. An exception on the main
        process is re-raised there and raised as RuntimeError on the others, so none waits forever."""
        if self.count == 1:
            return produce()
        payload: list[Any] = [None]
        failure: BaseException | None = None
        if self.is_main:
            try:
                payload = [("ok", produce())]
            except Exception as error:  # broadcast first, so that the other ranks stop too
                failure = error
                payload = [("error", f"{type(error).__name__}: {error}")]
        broadcast_object_list(payload, from_process=0)
        status, value = payload[0]
        if failure is not None:
            raise failure
        if status == "error":
            raise RuntimeError(f"the main process failed: {value}")
        return value

    def map_sharded(self, work: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R]:
        """`work` over `items`, each process doing an equal-length share; every process gets all results."""
        if self.count == 1:
            return work(list(items))
        share = equal_shard(items, self.count, self.index)
        local = work(share)
        if len(local) != len(share):
            raise RuntimeError(f"{len(local)} results for {len(share)} items")
        return unshard(gather_object(local), len(items))


def eval_module(model: torch.nn.Module, accelerator: Any | None) -> torch.nn.Module:
    """The module whose forward the evaluation calls.

    `accelerator.unwrap_model` takes the module out of DDP or the DeepSpeed engine. Under ZeRO-2 (and DDP)
    that module holds whole parameters. Under ZeRO-3 (`accelerator.state.deepspeed_plugin.zero_stage == 3`)
    it is still the partitioned module: the engine's hooks stay on it and gather each layer's parameters
    from every rank during its forward, so a forward is a collective that every rank must run, the same
    number of times; `Processes.map_sharded` gives every rank shares of equal length for that reason.
    """
    return model if accelerator is None else accelerator.unwrap_model(model)


# ------------------------------------------------------------------------------------- evaluation


def evaluate_targets(
    *,
    model: torch.nn.Module,
    processor: Any,
    arch: str,
    targets: Mapping[str, datasets.Dataset],
    method: str,
    episode_source: EpisodeSource | None = None,
    accelerator: Any | None = None,
    batch_size: int = 16,
    max_samples: int | None = None,
    seed: int = 0,
    final_answer: bool = True,
    max_completion_length: int = 256,
    progress: bool = True,
    tool_names: Sequence[str] | None = None,
    samples_dir: Path | None = None,
) -> dict[str, dict]:
    """Evaluate the policy on each target domain by its fast and its final answer (paper 003 Sec. 4.1).

    `targets` maps a domain name to a dataset with columns id, image (PIL), label (0/1 = live/spoof, or the
    strings) and spoof_type; each is subsampled to `max_samples` rows by `subsample` (seeded, in the classes'
    proportions, both classes kept). Returns, per domain:

    - "fast" (a method with a fast answer: dt_grpo / st_grpo): the report of the fast answer's P(spoof);
    - "final" (when `final_answer` and the main process has an `episode_source`; rft_fas needs one): the
      report of the final answer's P(spoof) after one greedy episode per image (`max_completion_length`
      tokens per turn), classes "<Real>"/"<Spoof>" (paper 003) or "real"/"fake" (paper 001), with
      "final_forced_fraction" (episodes without an <answer>, see `final_answer_prefix`) and
      "weights_version" (of the weights that sampled them);
    - "n_samples";
    - "samples" (only with `samples_dir`): one `rft.eval.sample_records.sample_row` per sample (its scores,
      the final episode's turns, its image's path under `samples_dir`, where the main process writes each
      evaluated image once).

    `model` may be the trained, wrapped model (`eval_module`); it is put in eval mode and every submodule's
    mode is restored after. With an `accelerator` of several processes every process must call this with the
    same arguments (see the module docstring); only the main process needs the `episode_source`.
    `tool_names` is the run's tool set (None: all six); the episode source must offer the same.
    """
    chosen = method_named(method)
    processes = Processes(accelerator)
    module = eval_module(model, accelerator)
    scorer = _TargetScorer(
        module=module,
        # The fast answer's prompt lists the run's tools (run.tools), as in training.
        tokenizer=ConversationTokenizer(processor, arch, tools=tool_schemas(tool_names)),
        processes=processes,
        device=accelerator.device if accelerator is not None else _device(module),
        method=chosen,
        batch_size=batch_size,
        max_completion_length=max_completion_length,
        progress=progress and processes.is_main,
        samples_dir=None if samples_dir is None else Path(samples_dir),
    )
    final = _final_answer_scored(chosen, final_answer, processes, source_here=episode_source is not None)
    with _evaluating(model):
        return {
            name: scorer.target(subsample(dataset, max_samples, seed), name, episode_source, final=final)
            for name, dataset in targets.items()
        }


def _final_answer_scored(
    chosen: Method, final_answer: bool, processes: Processes, *, source_here: bool
) -> bool:
    """Whether final answers are scored: asked for, and the main process has an episode source (every process
    takes part, since the final-answer forwards are sharded; only the main one samples the episodes)."""
    if not chosen.fast_answer and not final_answer:
        raise ValueError(f"{chosen.name} has no fast answer: final_answer=False leaves nothing to evaluate")
    has_source = processes.from_main(lambda: source_here)
    if not chosen.fast_answer and not has_source:
        raise ValueError(f"{chosen.name} is scored by its final answer, which needs an episode_source")
    return final_answer and has_source


@dataclass(frozen=True)
class _TargetScorer:
    """The two scorings of one evaluation, each process doing its share of the forwards."""

    module: torch.nn.Module
    tokenizer: ConversationTokenizer
    processes: Processes
    device: torch.device
    method: Method
    batch_size: int
    max_completion_length: int
    progress: bool
    samples_dir: Path | None = None

    def target(
        self, target: datasets.Dataset, name: str, source: EpisodeSource | None, *, final: bool
    ) -> dict[str, Any]:
        """One domain's result: its fast-answer report (methods with a fast answer) and, when `final`, its
        final-answer report after greedy episodes sampled from `source` (the main process's)."""
        images = [_rgb(image) for image in target["image"]]
        rows = report_rows(target, name)
        result: dict[str, Any] = {"n_samples": len(rows)}
        fast_scores = final_scores = forced = turns = None
        if self.method.fast_answer:
            fast_scores = self.fast(images)
            result["fast"] = compute_report(with_scores(rows, fast_scores))
        if final:
            final_scores, forced, version, turns = self.final(images, source)
            result["final"] = compute_report(with_scores(rows, final_scores))
            result["final_forced_fraction"] = sum(forced) / len(forced) if forced else 0.0
            result["weights_version"] = version
        if self.samples_dir is not None:
            names = [image_name(name, row["id"]) for row in rows]
            if self.processes.is_main:
                save_images(self.samples_dir, names, images)
            result["samples"] = [
                sample_row(
                    row,
                    image=names[i],
                    fast=None if fast_scores is None else fast_scores[i],
                    final=None if final_scores is None else final_scores[i],
                    forced=None if forced is None else forced[i],
                    turns=None if turns is None else turns[i],
                )
                for i, row in enumerate(rows)
            ]
        return result

    def fast(self, images: Sequence[Image.Image]) -> list[float]:
        return self.processes.map_sharded(self._fast_share, images)

    def _fast_share(self, images: list[Image.Image]) -> list[float]:
        return fast_answer_scores(
            self.module,
            self.tokenizer,
            images,
            batch_size=self.batch_size,
            progress=self.progress,
        )

    def final(
        self, images: Sequence[Image.Image], source: EpisodeSource | None
    ) -> tuple[list[float], list[bool], int, list[list[str]]]:
        """Final-answer scores, which answers were forced, the sampling weights version and each episode's
        turns. The episode source runs on the main process only."""

        def sample() -> tuple[list[FinalPrefix], list[bool], int, list[list[str]]]:
            episodes, version = greedy_episodes(
                source, self.method, self.tokenizer, images, max_completion_length=self.max_completion_length
            )
            turns = [[str(turn) for turn in episode.turns] for episode in episodes]
            return (*final_prefixes(episodes, self.tokenizer), version, turns)

        prefixes, forced, version, turns = self.processes.from_main(sample)
        return self.processes.map_sharded(self._final_share, prefixes), forced, version, turns

    def _final_share(self, prefixes: list[FinalPrefix]) -> list[float]:
        return answer_probabilities(
            self.module,
            self.tokenizer,
            prefixes,
            self.method.final_classes,
            device=self.device,
            progress=self.progress,
        )


def subsample(dataset: datasets.Dataset, max_samples: int | None, seed: int) -> datasets.Dataset:
    """At most `max_samples` rows (all rows when it is None or 0), drawn after `shuffle(seed)` from each class
    in proportion to its size, and at least one row of each class present: HTER and AUC need both, and a
    plain draw from a target with few live faces could hold none (every evaluation of the run would fail)."""
    if not max_samples or len(dataset) <= max_samples:
        return dataset
    shuffled = dataset.shuffle(seed=seed)
    rows_of: dict[int, list[int]] = {}
    for index, label in enumerate(shuffled["label"]):
        rows_of.setdefault(as_label(label), []).append(index)
    if len(rows_of) < 2 or max_samples < 2:
        return shuffled.select(range(max_samples))
    quota = {label: max(1, round(max_samples * len(rows) / len(dataset))) for label, rows in rows_of.items()}
    while sum(quota.values()) > max_samples:  # rounding up gave one too many: the larger class gives it back
        quota[max(quota, key=quota.get)] -= 1
    while sum(quota.values()) < max_samples:
        quota[max(rows_of, key=lambda label: len(rows_of[label]) - quota[label])] += 1
    return shuffled.select(sorted(i for label, rows in rows_of.items() for i in rows[: quota[label]]))


def report_rows(target: datasets.Dataset, domain: str) -> list[dict[str, Any]]:
    """`compute_report` rows of a target, without scores (the row index serves as id when there is none)."""
    n = len(target)
    ids = list(target["id"]) if "id" in target.column_names else list(range(n))
    types = list(target["spoof_type"]) if "spoof_type" in target.column_names else [None] * n
    return [
        {"id": str(i), "label": as_label(y), "attack_type": t, "domain": domain}
        for i, y, t in zip(ids, list(target["label"]), types, strict=True)
    ]


def with_scores(rows: Sequence[Mapping[str, Any]], scores: Sequence[float]) -> list[dict[str, Any]]:
    if len(rows) != len(scores):
        raise RuntimeError(f"{len(scores)} scores for {len(rows)} samples")
    return [{**row, "score": score} for row, score in zip(rows, scores, strict=True)]


def flatten_metrics(results: Mapping[str, Mapping[str, Any]], prefix: str = "target") -> dict[str, float]:
    """Scalars for a tracker: `{prefix}/{domain}/{fast|final}/{hter|auc}` from each report's "overall"
    block, and `{prefix}/{domain}/final/forced_fraction`. A metric the report leaves null is left out."""
    flat: dict[str, float] = {}
    for domain, result in results.items():
        for answer in ("fast", "final"):
            if answer not in result:
                continue
            overall = result[answer]["overall"]
            for metric in METRICS:
                if overall.get(metric) is not None:
                    flat[f"{prefix}/{domain}/{answer}/{metric}"] = float(overall[metric])
        if "final_forced_fraction" in result:
            flat[f"{prefix}/{domain}/final/forced_fraction"] = float(result["final_forced_fraction"])
    return flat


# ---------------------------------------------------------------------------------------- helpers


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[None]:
    """`model` in eval mode, every submodule's own mode restored after (not a blanket train())."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _device(model: torch.nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def _rgb(image: Any) -> Image.Image:
    """A dataset `image` value (decoded PIL image, or a path) as RGB."""
    if isinstance(image, str | Path):
        image = Image.open(image)
    return image.convert("RGB")
