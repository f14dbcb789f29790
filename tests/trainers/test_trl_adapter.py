"""The contract between the project and the installed TRL and transformers (rft.trainers.trl_adapter).

Every private name in `PRIVATE_NAMES` is checked against the installed classes: it exists, a method's
parameters are the listed ones (the adapter's calls and hooks use them), and TRL still calls the hooks and
reads the buffers the project fills. TRL's own `_generate_and_score_completions` runs once on the tiny
Qwen2.5-VL model (CPU, a `rollout_func` in place of generation, no vLLM) and its batch must have the keys the
episode override returns for the same settings. Each failure is one line naming what changed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
import trl
from datasets import Dataset
from PIL import Image
from trl.data_utils import apply_chat_template

from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, install_chat_template, load_policy
from rft.prompts.episodes import first_turn_messages
from rft.rollout.episode import single_turn_episode
from rft.rollout.sampling import CompletionOut
from rft.trainers import trl_adapter
from rft.trainers.grpo import EpisodeGRPOTrainer
from rft.trainers.grpo_setup import CheckpointedGRPOTrainer
from rft.trainers.sft import MultiTurnSFTTrainer
from rft.trainers.trl_adapter import (
    GENERATION_BATCH_KEYS,
    INTERNAL_HELPERS,
    OVERRIDDEN,
    PRIVATE_NAMES,
    TRL_ONLY_BATCH_KEYS,
    CheckpointHooks,
    GRPOTrainerHooks,
    PrivateName,
    UnsupportedTRLVersion,
    check_trl_version,
)

RFT = Path(__file__).resolve().parents[2] / "rft"
IMAGE_SIDE = 56
ANSWER = "<Spoof><reason>Moire stripes.</reason>"
OWNERS = {"trl.GRPOTrainer": trl.GRPOTrainer, "trl.SFTTrainer": trl.SFTTrainer}
HOOK_CLASSES = (GRPOTrainerHooks, CheckpointHooks)
PUBLIC_OVERRIDES = {"compute_loss"}  # MultiTurnSFTTrainer's loss (Eq. 8)
GENERATION = "trl.GRPOTrainer._generate_and_score_completions"
# Settings under which TRL's step returns every optional key the override returns: the reference (beta) and
# pi_theta_old (a generation batch used twice).
SETTINGS = {
    "use_cpu": True,
    "bf16": False,
    "num_generations": 2,
    "per_device_train_batch_size": 2,
    "max_completion_length": 8,
    "beta": 0.04,
    "num_iterations": 2,
    "gradient_checkpointing": False,
    "report_to": "none",
}


# Two cores shared with other jobs: OpenMP threads spinning against each other slow every step.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def qwen_dir(model_cache: Path) -> Path:
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny", image_size=IMAGE_SIDE)


def face() -> Image.Image:
    return Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), (150, 110, 90))


def one_turn(processing_class) -> list[int]:
    tokenizer = processing_class.tokenizer
    return [*tokenizer.encode(ANSWER), tokenizer.eos_token_id]


def rollout(prompts: list, trainer: trl.GRPOTrainer) -> dict[str, list]:
    """TRL's `rollout_func`: the processor's prompt ids and one fixed model turn, with sampler logprobs and
    an `env_mask`, which is what makes TRL's step return `sampling_per_token_logps` and `tool_mask`."""
    processor = trainer.processing_class
    texts = [apply_chat_template({"prompt": prompt}, processor)["prompt"] for prompt in prompts]
    prompt_ids = processor(images=[[face()]] * len(prompts), text=texts)["input_ids"]
    completion = one_turn(processor)
    return {
        "prompt_ids": [list(ids) for ids in prompt_ids],
        "completion_ids": [completion] * len(prompts),
        "logprobs": [[-1.0] * len(completion)] * len(prompts),
        "env_mask": [[1] * len(completion)] * len(prompts),
    }


def constant_reward(completions: list, **_) -> list[float]:
    return [float(i) for i in range(len(completions))]


@pytest.fixture(scope="module")
def trl_trainer(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> trl.GRPOTrainer:
    model, processor = load_policy(qwen_dir)
    return trl.GRPOTrainer(
        model=model,
        reward_funcs=constant_reward,
        args=trl.GRPOConfig(output_dir=str(tmp_path_factory.mktemp("trl")), **SETTINGS),
        train_dataset=Dataset.from_dict({"prompt": [prompt()], "image": [face()]}),
        processing_class=install_chat_template(processor, detect_arch(qwen_dir)),
        rollout_func=rollout,
    )


def prompt() -> list[dict]:
    return [{"role": "user", "content": "Is this face real or a spoof?"}]


class OneTurnEpisodes:
    """An episode source answering every image with the same single model turn."""

    def __init__(self, tokenizer: ConversationTokenizer) -> None:
        self.tokenizer = tokenizer
        self.version = 0

    def episodes(self, images, *, n, sampling=None):
        messages = first_turn_messages()
        prompt_ids = self.tokenizer.prompt_ids(messages)
        ids = [*self.tokenizer.encode(ANSWER), self.tokenizer.end_of_turn_id]
        completion = CompletionOut(
            token_ids=ids, logprobs=[-1.0] * len(ids), finish_reason="stop", text=ANSWER
        )
        episode = single_turn_episode(prompt_ids, completion, images[0], messages, self.tokenizer)
        return [[episode] * n for _ in images], self.version

    def update_weights(self, state_dict) -> int:
        self.version += 1
        return self.version


@pytest.fixture(scope="module")
def episode_trainer(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> EpisodeGRPOTrainer:
    model, processor = load_policy(qwen_dir)
    return EpisodeGRPOTrainer(
        model,
        args=trl.GRPOConfig(output_dir=str(tmp_path_factory.mktemp("episodes")), **SETTINGS),
        train_dataset=Dataset.from_dict({"image": [face()], "label": ["spoof"]}),
        processing_class=processor,
        episode_source=OneTurnEpisodes(ConversationTokenizer(processor, detect_arch(qwen_dir))),
        method="dt_grpo",
        reward_scorer=None,  # TRL's reward-function path: `_calculate_rewards` runs too
    )


@pytest.fixture(scope="module")
def sft_trainer(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> trl.SFTTrainer:
    model, processor = load_policy(qwen_dir)
    args = trl.SFTConfig(
        output_dir=str(tmp_path_factory.mktemp("sft")),
        use_cpu=True,
        bf16=False,
        report_to="none",
        gradient_checkpointing=False,
        remove_unused_columns=False,
        max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True},
    )
    return trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"messages": [prompt()]}),
        processing_class=processor,
        data_collator=lambda rows: rows,
    )


@pytest.fixture(scope="module")
def instances(trl_trainer, sft_trainer) -> dict[str, object]:
    return {"trl.GRPOTrainer": trl_trainer, "trl.SFTTrainer": sft_trainer}


# -- the private names ----------------------------------------------------------------------------------------
def parameters(function) -> tuple[str, ...]:
    names = tuple(inspect.signature(function).parameters)
    return names[1:] if names and names[0] == "self" else names


def method_failures(entry: PrivateName, owner: str) -> list[str]:
    where = f"{owner}.{entry.name}"
    method = getattr(OWNERS[owner], entry.name, None)
    if method is None:
        return [f"{where}: no longer exists"]
    failures = []
    if parameters(method) != entry.parameters:
        failures.append(f"{where}: parameters changed from {entry.parameters} to {parameters(method)}")
    if entry.use == OVERRIDDEN:
        (hook,) = [cls for cls in HOOK_CLASSES if entry.name in vars(cls)]
        if parameters(vars(hook)[entry.name]) != entry.parameters:
            failures.append(
                f"trl_adapter.{hook.__name__}.{entry.name}: parameters are not {entry.parameters}"
            )
    return failures


def attribute_failures(entry: PrivateName, owner: str, instance: object) -> list[str]:
    where = f"{owner}.{entry.name}"
    if not hasattr(instance, entry.name):
        return [f"{where}: no longer set by __init__"]
    value = getattr(instance, entry.name)
    present = (lambda m: m in value) if isinstance(value, Mapping) else (lambda m: hasattr(value, m))
    return [f"{where}: has no {member!r} any more" for member in entry.members if not present(member)]


def caller_failures(entry: PrivateName, owner: str) -> list[str]:
    """TRL must still use the name where the project relies on it (calls the hook, reads the buffer)."""
    if entry.relied_on_by is None:
        return []
    uses = f"self.{entry.name}"
    sources = [
        inspect.getsource(vars(cls)[entry.relied_on_by])
        for cls in OWNERS[owner].__mro__
        if entry.relied_on_by in vars(cls)
    ]
    if not sources:
        return [f"{owner}.{entry.relied_on_by}: no longer exists (it used {uses})"]
    if not any(uses in source for source in sources):
        return [f"{owner}.{entry.relied_on_by}: no longer uses {uses}"]
    return []


CASES = [(entry, owner) for entry in PRIVATE_NAMES for owner in entry.owners]


@pytest.mark.parametrize(("entry", "owner"), CASES, ids=[f"{o}.{e.name}" for e, o in CASES])
def test_private_name_is_what_the_adapter_expects(entry: PrivateName, owner: str, instances: dict) -> None:
    if entry.parameters is not None:
        failures = method_failures(entry, owner)
    else:
        failures = attribute_failures(entry, owner, instances[owner])
    failures += caller_failures(entry, owner)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("helper", INTERNAL_HELPERS, ids=lambda h: f"{h.module}.{h.name}")
def test_internal_helper_is_what_the_adapter_expects(helper: trl_adapter.InternalHelper) -> None:
    where = f"{helper.module}.{helper.name}"
    found = getattr(importlib.import_module(helper.module), helper.name, None)
    assert found is not None, f"{where}: no longer exists"
    found_parameters = parameters(found.__init__ if inspect.isclass(found) else found)
    assert found_parameters == helper.parameters, (
        f"{where}: parameters changed from {helper.parameters} to {found_parameters}"
    )


# -- the generation batch -------------------------------------------------------------------------------------
def returned_keys_in_source() -> set[str]:
    """Every key TRL's generation step can put in its output dict (`output = {...}`, `output[key] = ...`)."""
    source = textwrap.dedent(inspect.getsource(trl.GRPOTrainer._generate_and_score_completions))
    keys: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == "output" and isinstance(node.value, ast.Dict):
                keys |= {key.value for key in node.value.keys if isinstance(key, ast.Constant)}
            if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == "output":
                keys |= {target.slice.value} if isinstance(target.slice, ast.Constant) else set()
    return keys


def test_trls_generation_step_returns_the_keys_the_override_returns(
    trl_trainer: trl.GRPOTrainer, episode_trainer: EpisodeGRPOTrainer
) -> None:
    trl_trainer.model.train()
    theirs = set(trl_trainer._generate_and_score_completions([{"prompt": prompt(), "image": face()}] * 2))
    episode_trainer.model.train()
    ours = set(episode_trainer.generate_and_score([{"image": face(), "label": "spoof"}] * 2))
    failures = [
        f"{GENERATION}: returns {key!r}, which the override does not" for key in sorted(theirs - ours)
    ]
    failures += [
        f"{GENERATION}: no longer returns {key!r}, which the override does" for key in sorted(ours - theirs)
    ]
    failures += [
        f"{GENERATION}: {key!r} is missing from trl_adapter.GENERATION_BATCH_KEYS"
        for key in sorted((theirs | ours) - set(GENERATION_BATCH_KEYS))
    ]
    assert not failures, "\n".join(failures)


def test_every_key_trls_generation_step_may_return_is_accounted_for() -> None:
    listed = set(GENERATION_BATCH_KEYS) | set(TRL_ONLY_BATCH_KEYS)
    found = returned_keys_in_source()
    failures = [
        f"{GENERATION}: may now return {key!r}, in neither GENERATION_BATCH_KEYS nor TRL_ONLY_BATCH_KEYS"
        for key in sorted(found - listed)
    ]
    failures += [f"{GENERATION}: never returns {key!r} any more" for key in sorted(listed - found)]
    assert not failures, "\n".join(failures)


# -- the rest of the project ----------------------------------------------------------------------------------
def spelled_private_names(path: Path) -> list[str]:
    names = {entry.name for entry in PRIVATE_NAMES}
    where = path.relative_to(RFT.parent)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in names:
            found.append(f"{where}:{node.lineno}: spells TRL's private {node.attr}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names:
            found.append(f"{where}:{node.lineno}: overrides TRL's private {node.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trl."):
            found.append(f"{where}:{node.lineno}: imports from {node.module}")
        elif isinstance(node, ast.Import) and any(alias.name.startswith("trl.") for alias in node.names):
            found.append(f"{where}:{node.lineno}: imports a TRL submodule")
    return found


def test_only_the_adapter_spells_trls_private_names() -> None:
    adapter = Path(trl_adapter.__file__).resolve()
    failures = [
        f"{line}: go through rft.trainers.trl_adapter"
        for path in sorted(RFT.rglob("*.py"))
        if path.resolve() != adapter
        for line in spelled_private_names(path)
    ]
    assert not failures, "\n".join(failures)


def assigned_attributes(cls: type) -> set[str]:
    """Names the class's methods assign on `self`."""
    names = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(cls)))):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            if isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == "self":
                names.add(target.attr)
    return names


@pytest.mark.parametrize(
    "trainer_class", [CheckpointedGRPOTrainer, MultiTurnSFTTrainer], ids=lambda c: c.__name__
)
def test_the_projects_own_names_never_shadow_trls(trainer_class: type, trl_trainer: trl.GRPOTrainer) -> None:
    """A method or attribute the project adds must not silently replace one of TRL's or Trainer's; the
    replaced ones are the hooks of PRIVATE_NAMES and PUBLIC_OVERRIDES."""
    base = trl.GRPOTrainer if issubclass(trainer_class, trl.GRPOTrainer) else trl.SFTTrainer
    trls = set(vars(trl_trainer)) if base is trl.GRPOTrainer else set()
    allowed = PUBLIC_OVERRIDES | {entry.name for entry in PRIVATE_NAMES if entry.use == OVERRIDDEN}
    failures = []
    for cls in trainer_class.__mro__:
        if not cls.__module__.startswith("rft."):
            continue
        own = {name for name in vars(cls) if not name.startswith("__")} | assigned_attributes(cls)
        for name in sorted(own - allowed):
            if hasattr(base, name) or name in trls:
                failures.append(f"{cls.__name__}.{name} shadows trl.{base.__name__}.{name}")
    assert not failures, "\n".join(failures)


# -- the version ------------------------------------------------------------------------------------------------
def test_the_installed_trl_is_supported() -> None:
    check_trl_version(trl.__version__)
    check_trl_version("1.16.3")


@pytest.mark.parametrize("version", ["1.17.0", "1.15.2", "2.0.0"])
def test_another_trl_is_refused_naming_both_versions(version: str) -> None:
    with pytest.raises(UnsupportedTRLVersion, match=f"trl {version} is installed") as refused:
        check_trl_version(version)
    message = str(refused.value)
    assert str(trl_adapter.SUPPORTED_TRL) in message and "\n" not in message


def test_the_training_docs_list_every_private_name() -> None:
    docs = (RFT.parent / "docs" / "TRAINING.md").read_text()
    missing = [entry.name for entry in PRIVATE_NAMES if f"| `{entry.name}` |" not in docs]
    missing += [f"{h.module}.{h.name}" for h in INTERNAL_HELPERS if f"| `{h.module}.{h.name}` |" not in docs]
    assert not missing, f"docs/TRAINING.md lacks a row for {missing}; regenerate it from trl_adapter's tables"
