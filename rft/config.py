"""Typed experiment configuration.

Each top-level YAML section maps field for field onto a pydantic model below. `load_config` resolves a bare
name (`cefa_to_hqwmca.yaml` or `cefa_to_hqwmca`) from the configs shipped inside the package (`rft/configs/`,
which a checkout also shows as `configs/`), applies `section.key=value` overrides from the command line, and
validates everything before any model is loaded. Every failure is a `ConfigError` whose message is one line
naming the key and the fix.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rft.baselines.instructflip.config import InstructFlipConfig
from rft.errors import RftError, short_repr, short_text
from rft.methods import MethodName, method_named
from rft.models.lora import CAPTION_LORA_TARGETS, LANGUAGE_MODEL_LORA_TARGETS
from rft.outputs import write_text_atomically
from rft.tools.toolsets import ToolSetError, resolve_tool_set

# Package data, so that an installed (not editable) copy resolves config names too.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# A config or protocol file is a few KiB of YAML with a few hundred values. The limits stop a hostile file
# early: a huge file, or a few hundred bytes of aliases that expand to millions of values ("billion laughs").
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_VALUES = 100_000
MAX_PROBLEMS_SHOWN = 5
# run.name becomes one folder under run.output_dir, which --overwrite may delete: no path in it.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ConfigError(RftError):
    """A configuration problem, stated in one line with the offending key and how to fix it."""


class Section(BaseModel):
    """Base for every YAML section: unknown keys are errors, values are checked on assignment, and no number
    may be NaN or infinite (YAML's .nan and .inf would pass every range check and poison a run)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class RunConfig(Section):
    name: str = Field(
        "run", description="Name of the run, a plain folder name; outputs go to output_dir/name."
    )
    output_dir: Path = Field(Path("runs"), description="Parent folder of run folders.")
    seed: int = Field(0, description="Seed for Python, NumPy and torch.")
    tools: str | list[str] = Field(
        "all",
        description="The tools this run may use, read by SFT stage 2's conversations, GRPO (prompt, tool "
        "execution, rewards) and evaluation: a set name (all, zoom_in, zoom_in+frequency, zoom_in+texture, "
        "zoom_in+structure) or a list of tool names.",
    )

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: str | list[str]) -> str | list[str]:
        try:
            resolve_tool_set(value)
        except ToolSetError as error:
            raise ValueError(str(error)) from None
        return value

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The allowed tools, in TOOL_NAMES order."""
        return resolve_tool_set(self.tools)

    @field_validator("name")
    @classmethod
    def _plain_folder_name(cls, value: str) -> str:
        if not RUN_NAME.fullmatch(value):
            raise ValueError(
                "must be a plain folder name (letters, digits, '.', '_' and '-', starting with a letter or "
                f"digit, at most 128 characters; outputs go to run.output_dir/run.name), got {short_repr(value)}"
            )
        return value


class ModelConfig(Section):
    """Which policy to load: a local Hugging Face directory, or a tiny model the project builds itself."""

    path: Path | None = Field(None, description="Local directory of a checkpoint (no hub ids).")
    tiny_preset: Literal["tiny", "demo", "small"] | None = Field(
        None, description="Build a random-initialised model of this preset instead of loading `path`."
    )
    arch: Literal["qwen2_5_vl", "internvl3"] = Field(
        "qwen2_5_vl", description="Architecture of the tiny model (ignored when `path` is set)."
    )
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    cache_dir: Path = Field(Path(".cache/models"), description="Where built tiny models are kept.")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ModelConfig:
        if (self.path is None) == (self.tiny_preset is None):
            raise ValueError(
                "set exactly one of model.path (a local checkpoint directory) or model.tiny_preset (tiny|demo|small)"
            )
        return self


class SyntheticConfig(Section):
    """How to generate the synthetic benchmark when a protocol reads dataset `synthetic` and
    `data.roots.synthetic` is not set (docs/SYNTHETIC.md)."""

    n_per_domain: int = Field(600, ge=20, description="Images per synthetic domain.")
    seed: int = 0
    attack_strength: float = Field(1.0, gt=0, le=4)
    workers: int = Field(2, ge=1)


class DataConfig(Section):
    protocol: str = Field(..., description="Protocol name under rft/configs/protocols/ or a YAML path.")
    roots: dict[str, Path] = Field(
        default_factory=dict, description="Dataset name -> local root folder of its released layout."
    )
    image_size: int = Field(224, ge=32, le=2048, description="Side of the face crop fed to the model.")
    cache_dir: Path = Field(Path(".cache/data"), description="Where imported/generated datasets are kept.")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)


class RewardCoefficients(Section):
    """The reward coefficients; null keeps the paper's value (paper 001 Eq. 6 / paper 003 Eq. 12-14)."""

    beta_fast: float | None = Field(None, description="DT-GRPO, Eq. 14 (paper: 0.1).")
    beta_rsn: float | None = Field(None, description="DT-GRPO, Eq. 14 (paper: 0.5).")
    beta_tool: float | None = Field(None, description="DT-GRPO, Eq. 14 (paper: 0.4).")
    tool_weights: dict[str, float] | None = Field(
        None, description="DT-GRPO gamma_k of Eq. 12, one per tool (paper: 0.2 each)."
    )
    format_weight: float | None = Field(None, description="Paper 001, Eq. 6 (paper: 1).")
    cls_weight: float | None = Field(None, description="Paper 001, Eq. 6 (paper: 1).")
    res_weight: float | None = Field(None, description="Paper 001, Eq. 6 (paper: 1).")
    max_length: int | None = Field(None, ge=1, description="Paper 001, L of Eq. 5 (paper: 1200 tokens).")


class GRPOConfig(Section):
    """GRPO hyper-parameters. Defaults are paper 003's DT-GRPO (Sec. 4.1) at CPU-demo scale; the papers'
    full settings are in the shipped configs (configs/recipes/)."""

    method: MethodName = "dt_grpo"
    init_from: Literal["model", "sft_stage1", "sft_stage2"] = Field(
        "sft_stage2",
        description="Policy to start from: model (the model section as is) or the run's SFT stage output.",
    )
    num_generations: int = Field(8, ge=2, description="Group size G (paper 003) / N (paper 001).")
    generation_batch_size: int = Field(
        16, ge=1, description="Completions per rollout batch; must be a multiple of num_generations."
    )
    per_device_train_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int | None = Field(
        None,
        ge=1,
        description="null derives it: generation_batch_size / (per_device_train_batch_size x processes), one "
        "optimizer step per generation batch (on-policy, Eq. 9); a value must equal that.",
    )
    learning_rate: float = Field(1e-6, gt=0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    beta: float = Field(0.0, ge=0, description="KL coefficient (paper 003: 0.0).")
    epsilon: float = Field(0.2, gt=0, description="PPO clip range of the ratio (TRL default; papers silent).")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field(
        "grpo", description="grpo is Eq. 9: 1/|o_i| per sequence, then the mean over the group."
    )
    weight_decay: float = Field(0.05, ge=0)
    max_steps: int = Field(300, ge=1)
    max_completion_length: int = Field(256, ge=1, description="Tokens per model turn.")
    max_tool_calls: int = Field(3, ge=0, description="Tool calls allowed per episode (paper 003: 3).")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    balanced_classes: bool = Field(
        False,
        description="Give every generation batch live and spoof images in equal numbers (the order shuffled by "
        "run.seed): a step's mean reward then no longer swings with how many live faces it drew.",
    )
    coefficients: RewardCoefficients = Field(default_factory=RewardCoefficients)
    use_lora: bool = Field(False, description="LoRA on the language model; false trains every weight.")
    lora_rank: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    gradient_checkpointing: bool = False
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto is bf16 on a CUDA GPU and fp32 on the CPU."
    )
    save_steps: int = Field(50, ge=1, description="Write a resumable checkpoint every N optimizer steps.")
    save_total_limit: int | None = Field(3, ge=1, description="Checkpoints kept; null keeps all.")
    logging_steps: int = Field(1, ge=1)
    report_to: Literal["tensorboard", "wandb", "mlflow", "none"] = Field(
        "tensorboard", description="Tracker for the step metrics (wandb/mlflow when installed)."
    )

    @field_validator("report_to")
    @classmethod
    def _tracker_installed(cls, value: str) -> str:
        if value in ("wandb", "mlflow") and importlib.util.find_spec(value) is None:
            raise ValueError(f"{value} is not installed; `pip install {value}` or use tensorboard")
        return value

    record_rollouts: bool = Field(
        True, description="Write every step's episodes (text, tool calls, images) under grpo/rollouts/."
    )

    @model_validator(mode="after")
    def _batch_fits_groups(self) -> GRPOConfig:
        if self.generation_batch_size % self.num_generations:
            raise ValueError(
                f"generation_batch_size ({self.generation_batch_size}) must be divisible by "
                f"num_generations ({self.num_generations}); set grpo.generation_batch_size to a multiple "
                f"of {self.num_generations}"
            )
        # The number of processes is known at launch, where `rft.trainers.grpo_setup.accumulation_steps`
        # checks the whole shape; this is the part a single process needs.
        if self.generation_batch_size % self.per_device_train_batch_size:
            raise ValueError(
                f"generation_batch_size ({self.generation_batch_size}) must be divisible by "
                f"per_device_train_batch_size ({self.per_device_train_batch_size}); change one of "
                "grpo.generation_batch_size or grpo.per_device_train_batch_size"
            )
        return self


class RolloutConfig(Section):
    """Where GRPO's episodes come from (docs/ROLLOUT_SERVER.md)."""

    mode: Literal["server", "inprocess"] = Field(
        "server",
        description="server: rollout servers at `urls` (clusters); inprocess: vLLM in the trainer's main process.",
    )
    urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8200"],
        description="Rollout server base URLs (server mode).",
    )
    token_env: str = Field(
        "RFT_ROLLOUT_TOKEN", description="Environment variable holding the server's weight-update token."
    )
    prompts_per_request: int = Field(4, ge=1, description="Images per request, spread over the servers.")
    request_timeout_s: float = Field(600.0, gt=0)
    max_model_len: int = Field(4096, ge=256, description="In-process vLLM context length.")
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0,
        le=1,
        description="In-process vLLM's share of GPU memory; null is 0.3 on a GPU (the trainer shares it, as in "
        "TRL's colocate mode) and vLLM's KV-cache default on the CPU.",
    )


class RewardServiceConfig(Section):
    url: str = Field(
        "inprocess",
        description="`inprocess` (same functions, no HTTP) or the Ray Serve URL of reward_service.",
    )
    token_env: str = Field(
        "RFT_REWARD_TOKEN", description="Environment variable holding the service's token (docs/SECURITY.md)."
    )

    @field_validator("url")
    @classmethod
    def _inprocess_or_http(cls, value: str) -> str:
        if value != "inprocess" and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{short_repr(value)} is neither inprocess nor an http(s):// URL of the reward service"
            )
        return value


class SFTConfig(Section):
    """Paper 003's stage 1 (knowledge transfer) and stage 2 (tool-call format injection, Eq. 8).
    Defaults are its Implementation Details (LoRA rank 16, lr 1e-4, alpha 0.9, AdamW, weight decay 0.05)."""

    stage: Literal[1, 2] = Field(1, description="1: knowledge transfer; 2: tool-call format injection.")
    stage2_init_from: Literal["model", "sft_stage1"] = Field(
        "sft_stage1", description="Stage 2 starts from the run's stage-1 export, or from the model section."
    )
    data_dir: Path | None = Field(
        None, description="Stored conversations (rft.data.conversations) saved with save_to_disk."
    )
    alpha: float = Field(
        0.9, ge=0, le=1, description="Stage 2 (Eq. 8): weight of the first round; later rounds get 1 - alpha."
    )
    use_lora: bool = Field(True, description="LoRA on the language model; false trains every weight.")
    lora_rank: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (the scale is lora_alpha / rank).")
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: str | list[str] = Field(
        LANGUAGE_MODEL_LORA_TARGETS,
        description="PEFT target_modules: a regex over module names (default: the language model's "
        "attention and MLP projections, vision tower frozen), or a list of name suffixes.",
    )
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_steps: int | None = Field(4000, ge=1, description="Optimizer steps; null trains num_train_epochs.")
    stage2_max_steps: int | None = Field(
        None, ge=1, description="Stage 2's optimizer steps when they differ from max_steps (null: max_steps)."
    )
    num_train_epochs: float = Field(1.0, gt=0, description="Used only when max_steps is null.")
    save_steps: int = Field(500, ge=1, description="Write a resumable checkpoint every N optimizer steps.")
    save_total_limit: int | None = Field(3, ge=1, description="Checkpoints kept; null keeps all.")
    logging_steps: int = Field(10, ge=1)
    gradient_checkpointing: bool = False
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="Autocast precision; auto is bf16 on a CUDA GPU and fp32 on the CPU."
    )
    report_to: Literal["tensorboard", "none"] = "tensorboard"
    max_length: int | None = Field(
        None, ge=16, description="Refuse conversations longer than this many tokens (never truncated)."
    )
    deepspeed: Path | None = Field(None, description="DeepSpeed JSON config (or use accelerate launch).")

    @model_validator(mode="after")
    def _targeted(self) -> SFTConfig:
        if not self.lora_target_modules:
            raise ValueError("lora_target_modules is empty; give a regex or a list of module names")
        return self


class CaptionConfig(Section):
    """Paper 002's caption-supervised VLM (launch/caption.py, docs/BASELINES.md). Defaults are its
    training details: LoRA rank 32 on q/k/v, trainable lm_head / projector / live-spoof head, loss
    0.7 x classification + 0.3 x caption (Eq. 1), AdamW 1e-4, weight decay 0.01, effective batch 64
    (4 per device x 4 accumulation x 4 GPUs), 2,500 steps, gradient checkpointing, bf16."""

    captions: Literal["vanilla", "reasoning", "mix"] = Field(
        "mix",
        description="Training captions: vanilla (Figure 1), reasoning (the six stages of Figure 3), or mix "
        "(half of the images with their reasoning caption, the other half with their vanilla one).",
    )
    data_dir: Path | list[Path] | None = Field(
        None,
        description="`rft annotate` output with caption_vanilla/ and caption_reasoning/ (a list: one output per "
        "source dataset, concatenated); null: the job writes templated captions of the protocol's source "
        "images itself (one-source protocols, e.g. the CPU demo).",
    )
    cls_weight: float = Field(0.7, ge=0, description="alpha of Eq. 1 (the classification loss).")
    caption_weight: float = Field(0.3, ge=0, description="beta of Eq. 1 (the caption language-model loss).")
    lora_rank: int = Field(32, ge=1)
    lora_alpha: int = Field(64, ge=1, description="LoRA scaling numerator (the paper gives none; 2 x rank).")
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: str | list[str] = Field(
        CAPTION_LORA_TARGETS, description="PEFT target_modules (default: q/k/v of the language model)."
    )
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(4, ge=1)
    max_steps: int = Field(2500, ge=1)
    save_steps: int = Field(250, ge=1, description="Write a resumable checkpoint every N optimizer steps.")
    save_total_limit: int | None = Field(3, ge=1, description="Checkpoints kept; null keeps all.")
    logging_steps: int = Field(10, ge=1)
    gradient_checkpointing: bool = True
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto is bf16 on a CUDA GPU (the paper's BFloat16) and fp32 on the CPU."
    )
    report_to: Literal["tensorboard", "none"] = "tensorboard"
    max_length: int | None = Field(
        None, ge=16, description="Refuse captions longer than this many tokens (never truncated)."
    )
    deepspeed: Path | None = Field(None, description="DeepSpeed JSON config (or use accelerate launch).")
    judge: Literal["rules", "openai"] = Field(
        "rules",
        description="How a generated explanation becomes live/spoof: rules (offline reader of the stated "
        "verdict) or openai (an OpenAI-compatible chat endpoint, GPT-4o-mini in the paper).",
    )
    judge_url: str | None = Field(None, description="Base URL of the judge, e.g. http://127.0.0.1:8000/v1.")
    judge_model: str = Field("gpt-4o-mini", description="Model name sent to the judge endpoint.")
    judge_api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding its key.")
    explain: bool = Field(True, description="Generate an explanation per test image and judge it.")
    max_new_tokens: int = Field(256, ge=1, description="Tokens per generated explanation.")
    eval_prompt: Literal["auto", "vanilla", "reasoning"] = Field(
        "auto", description="Prompt of the explanation: auto is vanilla for vanilla captions, reasoning else."
    )

    @model_validator(mode="after")
    def _usable(self) -> CaptionConfig:
        if self.cls_weight == 0 and self.caption_weight == 0:
            raise ValueError("cls_weight and caption_weight are both 0; nothing would be trained")
        if self.judge == "openai" and not self.judge_url:
            raise ValueError("judge openai needs caption.judge_url (the endpoint's base URL)")
        if self.judge_url is not None and not self.judge_url.startswith(("http://", "https://")):
            raise ValueError(f"judge_url {short_repr(self.judge_url)} is not an http(s):// URL")
        if not self.lora_target_modules:
            raise ValueError("lora_target_modules is empty; give a regex or a list of module names")
        return self

    @property
    def explanation_prompt(self) -> Literal["vanilla", "reasoning"]:
        if self.eval_prompt != "auto":
            return self.eval_prompt
        return "vanilla" if self.captions == "vanilla" else "reasoning"


class EvalConfig(Section):
    """Target-domain evaluation (paper 003's AUC convention: P(Spoof) over the Real/Spoof answer tokens)."""

    batch_size: int = Field(16, ge=1)
    max_samples: int | None = Field(None, ge=1, description="Cap on target samples per domain.")
    steps: int | None = Field(
        None, ge=1, description="Evaluate on the target domains every N GRPO steps; null only at the end."
    )
    final_answer: bool = Field(
        True, description="Also run greedy tool episodes and score the final answer (not only the fast one)."
    )


AblationStage = Literal["kt", "fi", "rl"]
STAGE_ORDER: tuple[str, ...] = ("kt", "fi", "rl")


class AblationArm(Section):
    """One arm of paper 003's ablations: its tool set (Table 2) and its stages (Table 3): kt = knowledge
    transfer (SFT stage 1), fi = format injection (SFT stage 2), rl = DT-GRPO."""

    name: str = Field(..., min_length=1, max_length=64, description="The arm's row in the table.")
    tools: str | list[str] = Field("all", description="The arm's tool set, as run.tools.")
    stages: list[AblationStage] = Field(["kt", "fi", "rl"], description="Stages in order, e.g. [kt, fi].")

    @field_validator("name")
    @classmethod
    def _one_table_cell(cls, value: str) -> str:
        if not value.isprintable() or "|" in value:
            raise ValueError(f"must be printable text without '|' (a table cell), got {short_repr(value)}")
        return value

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: str | list[str]) -> str | list[str]:
        return RunConfig._known_tools(value)

    @field_validator("stages")
    @classmethod
    def _in_order(cls, value: list[str]) -> list[str]:
        if not value or value != sorted(set(value), key=STAGE_ORDER.index):
            raise ValueError(
                f"must be distinct stages in the order kt, fi, rl, got {value}; e.g. [kt, fi, rl]"
            )
        return value

    @property
    def tool_names(self) -> tuple[str, ...]:
        return resolve_tool_set(self.tools)


class AblationConfig(Section):
    """launch/ablation.py: the arms, each run once per seed (docs/EFFICACY.md, "Ablations")."""

    arms: list[AblationArm] = Field(default_factory=list, description="The arms, one table row each.")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="run.seed of each repetition.")

    @model_validator(mode="after")
    def _distinct_names(self) -> AblationConfig:
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be distinct, got {names}; rename the repeated arm")
        return self


class ExperimentConfig(Section):
    run: RunConfig = Field(default_factory=RunConfig)
    model: ModelConfig | None = Field(
        None, description="The VLM policy; required except in an InstructFLIP config, which names its own."
    )
    data: DataConfig
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    reward_service: RewardServiceConfig = Field(default_factory=RewardServiceConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    ablation: AblationConfig = Field(default_factory=AblationConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    instructflip: InstructFlipConfig | None = Field(
        None,
        description="The InstructFLIP baseline (paper 000; docs/BASELINES.md), read by launch/instructflip.py.",
    )

    @model_validator(mode="before")
    @classmethod
    def _model_given(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("model") is None and raw.get("instructflip") is None:
            raise ValueError(
                "missing key 'model': add the model section (model.path or model.tiny_preset), or an "
                "instructflip section for the InstructFLIP baseline"
            )
        return raw

    @model_validator(mode="after")
    def _sections_agree(self) -> ExperimentConfig:
        if not method_named(self.grpo.method).fast_answer and not self.eval.final_answer:
            raise ValueError(
                f"eval.final_answer is false but grpo.method {self.grpo.method} has no fast answer, so nothing "
                "would be evaluated; set eval.final_answer: true"
            )
        if self.rollout.mode == "server" and not self.rollout.urls:
            raise ValueError(
                "rollout.urls is empty in server mode; give a rollout server URL or use mode inprocess"
            )
        return self

    @property
    def run_dir(self) -> Path:
        return self.run.output_dir / self.run.name


def resolve_config_path(name: str | Path, config_dir: Path = CONFIG_DIR) -> Path:
    """The search path, in order: `name` as a path (relative to the current directory, so a user's own
    `my_run.yaml` wins), then a name in `config_dir` (the packaged configs, with or without .yaml)."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    for option in (config_dir / candidate, config_dir / f"{candidate}.yaml"):
        if option.is_file():
            return option
    known = sorted(p.stem for p in config_dir.glob("*.yaml"))
    raise ConfigError(
        f"config '{name}' not found as a file or in {config_dir}; known configs: {', '.join(known)}"
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """`grpo.learning_rate=1e-5` -> (["grpo", "learning_rate"], 1e-05); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{short_text(text)}' is not of the form section.key=value")
    try:
        value = load_yaml_text(raw, f"override '{short_text(text)}'") if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for part in keys[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{short_text(text)}': '{part}' is a value, not a section")
            node = child
        node[keys[-1]] = value
    return raw


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `Selection`, `list[Selection]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_class(arg)
        if found is not None:
            return found
    return None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at `loc` (for did-you-mean suggestions)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int):  # a list position: stay with the item model
            continue
        if current is None or part not in current.model_fields:
            return None
        current = _model_class(current.model_fields[part].annotation)
    return current


def describe_validation_error(error: ValidationError, root: type[BaseModel]) -> str:
    """One line: per problem (the first few), the dotted key, what is wrong, and the fix."""
    problems = error.errors(include_url=False)
    lines = [describe_problem(item, root) for item in problems[:MAX_PROBLEMS_SHOWN]]
    if len(problems) > MAX_PROBLEMS_SHOWN:
        lines.append(f"and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")
    return "; ".join(lines)


def describe_problem(item: Any, root: type[BaseModel]) -> str:
    """One pydantic error as `invalid 'grpo.beta': ... (got ...)`; keys and values are shown cut short."""
    loc = tuple(item["loc"])
    key = short_text(".".join(str(p) for p in loc) or "<top level>")
    if item["type"] == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        known = list(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1])[:100], known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
        return f"unknown key '{key}': {hint}"
    if item["type"] == "missing":
        return f"missing key '{key}': add it to the config"
    if item["type"] == "value_error":
        message = short_text(str(item["msg"]).removeprefix("Value error, "), 400)
        return f"invalid '{key}': {message}" if loc else message
    return f"invalid '{key}': {item['msg']} (got {short_repr(item.get('input'))})"


def validate_config(raw: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(raw).__name__}")
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_validation_error(error, ExperimentConfig)}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's mapping of sections (`load_yaml_file`). Raises a one-line ConfigError."""
    raw = load_yaml_file(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    return raw


def load_yaml_file(path: Path) -> Any:
    """The YAML document in `path`, read defensively (`load_yaml_text`). Any problem - unreadable, larger than
    MAX_CONFIG_BYTES, not UTF-8, not YAML, too many values - is a one-line ConfigError naming the file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; is it really a config?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start} is not valid); save the file as UTF-8"
        ) from None
    try:
        return load_yaml_text(text, str(path))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({short_text(str(error).splitlines()[0])})") from None


def load_yaml_text(text: str, source: str) -> Any:
    """`yaml.safe_load(text)`, refusing (ConfigError naming `source`) a document that holds more than
    MAX_YAML_VALUES values once its aliases are expanded, refers to itself, or nests too deeply. The check
    runs on the parsed node graph, where an alias is a shared node, before any Python value is built, so
    a "billion laughs" costs microseconds. A syntax error is raised as yaml.YAMLError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, MAX_YAML_VALUES)
        if size is None:
            raise ConfigError(
                f"{source}: an alias refers to itself (a recursive structure); write the values out"
            )
        if size > MAX_YAML_VALUES:
            raise ConfigError(
                f"{source}: more than {MAX_YAML_VALUES:,} values once its aliases are expanded (an alias "
                "bomb?); a config needs a few hundred"
            )
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply; a config needs a few levels") from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _expanded_size(root: yaml.Node, limit: int) -> int | None:
    """How many nodes the document has with every alias expanded, computed on the shared graph (each distinct
    node once) and given up past `limit`; None when a node contains itself."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the nodes whose children are being counted: the current path
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        key = id(node)
        if counted:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                return sizes[key]
        elif key in open_nodes:
            return None
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    return sizes[id(root)]


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`update` over `base`, section by section (a mapping in both merges; anything else replaces)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file with its `extends:` chain resolved: `extends: recipes/dt_grpo_internvl3.yaml` is read
    first and this file's keys are merged over it. The parent is looked up relative to the file, then as
    `resolve_config_path` does (a path from the working directory, then a name in the packaged configs)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"{path}: `extends` loops back on itself ({chain}); remove one of the links")
    raw = read_yaml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: `extends` must be one file name, got {short_repr(parent)}")
    relative = path.parent / parent
    base_path = relative if relative.is_file() else resolve_config_path(parent)
    return deep_merge(read_with_extends(base_path, (*seen, path)), raw)


def load_config(name: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Resolve, read (with `extends`), override and validate a config. Raises ConfigError; loads no model."""
    path = resolve_config_path(name)
    raw = read_with_extends(path)
    return validate_config(apply_overrides(raw, overrides or []), source=str(path))


def save_resolved_config(config: ExperimentConfig, run_dir: Path) -> Path:
    """Write the fully resolved config next to the run's outputs (atomically)."""
    return write_text_atomically(
        run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
