"""Paper 003's ablations as one command (launch/ablation.py): Table 2's tool sets and Table 3's stage lists,
each arm run once per seed, then one Markdown table and one plot of the unseen-domain HTER/AUC (mean ± std).

The config's `ablation:` section lists the arms (a tool set and stages among kt = knowledge transfer, SFT
stage 1; fi = format injection, SFT stage 2; rl = DT-GRPO) and the seeds. Arms share the stage outputs
they have in common: a stage's output is keyed by (seed, stages so far, tool set), and the tool set only
where it matters (kt's conversations are the same for every set), so `[kt, fi]` and `[kt, fi, rl]` of one
tool set and seed share their kt and fi outputs, and every tool set shares kt. Layout under the run folder:

    ablation/annotated/<tool set>/      the templated conversations (rft.jobs.demo.annotate)
    ablation/seed<S>/kt/                sft_stage1/model
    ablation/seed<S>/kt_fi.<set>/       sft_stage2/model, eval.json when an arm ends here
    ablation/seed<S>/kt_fi_rl.<set>/    grpo/model, eval.json
    ablation/seed<S>/fi.<set>/ ...      (an arm without kt starts from the model section)
    ablation.md, ablation.png, ablation.json

A folder is complete when it carries the rft.outputs marker of STAGE_DONE, written last; a killed run
resumes by skipping complete folders and redoing the others from scratch. The steps themselves are the
demo's and the SFT/GRPO jobs' (`JobSteps`); one in-process vLLM engine per tool set serves the evaluations
and GRPO's episodes (its prompt lists that set's tools, and it runs only them).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rft.config import (
    STAGE_ORDER,
    AblationArm,
    ConfigError,
    ExperimentConfig,
    deep_merge,
    save_resolved_config,
    validate_config,
)
from rft.jobs.steps import read_json
from rft.outputs import claim_output_dir, made_by, write_json, write_marker, write_text_atomically
from rft.tools.toolsets import tool_set_label

if TYPE_CHECKING:
    from rft.data.protocols import ProtocolData

COMMAND = "launch/ablation.py"
STAGE_DONE = "launch/ablation.py stage"  # the marker of a complete stage folder
EXPORTS = {"kt": "sft_stage1", "fi": "sft_stage2", "rl": "grpo"}  # stage -> its job's folder
KT_TOOLS = "all"  # kt's conversations do not depend on the tool set: one output per seed


@dataclass(frozen=True)
class StageKey:
    """Where one stage's output lives: the seed, the stages so far, and the tool set once fi or rl is in."""

    seed: int
    stages: tuple[str, ...]
    tools: str  # a tool-set label (rft.tools.toolsets.tool_set_label)

    @property
    def stage(self) -> str:
        return self.stages[-1]

    @property
    def name(self) -> str:
        """A plain folder name (run.name): `kt`, `kt_fi.zoom_in-texture`, `kt_fi_rl.all`."""
        shared = self.stages == ("kt",)
        return "_".join(self.stages) + ("" if shared else "." + self.tools.replace("+", "-"))

    def folder(self, root: Path) -> Path:
        return root / f"seed{self.seed}" / self.name

    def model_dir(self, root: Path) -> Path:
        return self.folder(root) / EXPORTS[self.stage] / "model"


def stage_keys(arm: AblationArm, seed: int) -> list[StageKey]:
    """The keys of an arm's stages, in order (the last one is where the arm is evaluated)."""
    label = tool_set_label(arm.tools)
    return [StageKey(seed, tuple(arm.stages[: i + 1]), label) for i in range(len(arm.stages))]


class Steps(Protocol):
    """The work behind each stage; `JobSteps` runs the real jobs, a test may pass lighter ones."""

    def data(self, config: ExperimentConfig) -> Any: ...
    def annotate(self, config: ExperimentConfig, splits: Any) -> Path: ...
    def sft(self, config: ExperimentConfig, stage: int, data_dir: Path) -> Path: ...
    def grpo(self, config: ExperimentConfig, source: Any) -> dict: ...
    def evaluate(self, model_dir: Path, config: ExperimentConfig, splits: Any, source: Any) -> dict: ...
    def source(self, config: ExperimentConfig) -> Any: ...


class JobSteps:
    """The demo's and the SFT/GRPO jobs' steps (rft.jobs.demo, rft.jobs.sft, rft.jobs.grpo), unchanged."""

    def data(self, config: ExperimentConfig) -> ProtocolData:
        from rft.jobs.steps import protocol_data

        return protocol_data(config.data)

    def annotate(self, config: ExperimentConfig, splits: ProtocolData) -> Path:
        from rft.jobs import demo

        return demo.annotate(config, splits)

    def sft(self, config: ExperimentConfig, stage: int, data_dir: Path) -> Path:
        from rft.jobs import demo

        return demo.sft_stage(config, stage, data_dir)

    def grpo(self, config: ExperimentConfig, source: Any) -> dict:
        from rft.jobs import grpo

        return grpo.run(config, source=source, overwrite=True)

    def evaluate(self, model_dir: Path, config: ExperimentConfig, splits: ProtocolData, source: Any) -> dict:
        from rft.jobs.evaluate import evaluate_policy

        return evaluate_policy(model_dir, config, splits, source)

    def source(self, config: ExperimentConfig) -> Any:
        from rft.jobs.evaluate import inprocess_source
        from rft.jobs.steps import base_model_dir

        return inprocess_source(config, base_model_dir(config.model, config.data.image_size))


def check_ablation(config: ExperimentConfig) -> None:
    """Refuse a config the ablation cannot run, before any work."""
    from rft.jobs.demo import check_demo_protocol

    if not config.ablation.arms:
        raise ConfigError("ablation.arms is empty; list the arms (see configs/ablation_cpu.yaml)")
    if config.rollout.mode != "inprocess":
        raise ConfigError("the ablation runs vLLM in this process; set rollout.mode=inprocess")
    check_demo_protocol(config.data.protocol)


def ablation_root(config: ExperimentConfig) -> Path:
    return config.run_dir / "ablation"


def stage_config(config: ExperimentConfig, key: StageKey, tools: Any, start: Path | None) -> ExperimentConfig:
    """The config of one stage: its own run folder, seed and tool set, starting from `start` (the previous
    stage's model; None: the model section) with every stage's init_from set to that model."""
    changes: dict[str, Any] = {
        "run": {"output_dir": str(key.folder(ablation_root(config)).parent), "name": key.name},
        "sft": {"stage2_init_from": "model"},
        "grpo": {"init_from": "model"},
    }
    changes["run"].update(seed=key.seed, tools=tools)
    raw = deep_merge(config.model_dump(mode="json", exclude={"ablation"}), changes)
    if start is not None:
        raw["model"] = {**raw["model"], "path": str(start), "tiny_preset": None}
    return validate_config(raw, source=f"ablation stage {key.name}")


def is_complete(folder: Path) -> bool:
    return made_by(folder) == STAGE_DONE


class Ablation:
    """Runs the arms' stages in an order that keeps one vLLM engine per tool set, skipping complete ones."""

    def __init__(self, config: ExperimentConfig, steps: Steps) -> None:
        self.config, self.steps = config, steps
        self.root = ablation_root(config)
        self._splits: Any = None
        self._source: tuple[str, Any] | None = None  # (tool-set label, engine)
        self.skipped: list[str] = []
        self.ran: list[str] = []

    def run(self) -> dict[str, dict[int, dict]]:
        """Every arm's evaluation per seed (also in ablation.json), and the table and plot."""
        claim_output_dir(self.root, COMMAND)
        save_resolved_config(self.config, self.root)
        results: dict[str, dict[int, dict]] = {arm.name: {} for arm in self.config.ablation.arms}
        try:
            for arm, seed in self.work():
                results[arm.name][seed] = self.run_arm(arm, seed)
                # after every arm: a run killed hours in still leaves the table of what it finished
                write_results(self.config, results)
        finally:
            self.close_source()
        write_results(self.config, results)
        return results

    def work(self) -> Iterator[tuple[AblationArm, int]]:
        """(arm, seed) pairs grouped by tool set, so that each engine is started once."""
        arms = sorted(self.config.ablation.arms, key=lambda arm: tool_set_label(arm.tools))
        for arm in arms:
            for seed in self.config.ablation.seeds:
                yield arm, seed

    def run_arm(self, arm: AblationArm, seed: int) -> dict:
        """The arm's stages (complete ones skipped), then its evaluation (kept in the last folder)."""
        start: Path | None = None
        keys = stage_keys(arm, seed)
        for key in keys:
            config = stage_config(self.config, key, arm.tools, start)
            if is_complete(key.folder(self.root)):
                self.skipped.append(str(key.folder(self.root).relative_to(self.root)))
            else:
                self.run_stage(key, config)
            start = key.model_dir(self.root)
        return self.evaluation(keys[-1], stage_config(self.config, keys[-1], arm.tools, start))

    def run_stage(self, key: StageKey, config: ExperimentConfig) -> None:
        folder = key.folder(self.root)
        self.ran.append(str(folder.relative_to(self.root)))
        if key.stage == "rl":
            result = self.steps.grpo(config, self.source_for(config))
            write_json(folder / "eval.json", result)
        else:
            stage = STAGE_ORDER.index(key.stage) + 1
            self.steps.sft(config, stage, self.annotated(KT_TOOLS if stage == 1 else config.run.tools))
        write_marker(folder, STAGE_DONE)

    def evaluation(self, key: StageKey, config: ExperimentConfig) -> dict:
        """The evaluation of the model in `key`'s folder: GRPO's own final one, or one made (and kept) now."""
        kept = key.folder(self.root) / "eval.json"
        if not kept.is_file():
            model_dir = key.model_dir(self.root)
            write_json(kept, self.steps.evaluate(model_dir, config, self.splits(), self.source_for(config)))
        return read_json(kept)

    def annotated(self, tools: Any) -> Path:
        """The templated conversations for a tool set, written once (complete when marked)."""
        label = tool_set_label(tools).replace("+", "-")  # a plain folder name (run.name)
        folder = self.root / "annotated" / label
        config = validate_config(
            deep_merge(
                self.config.model_dump(mode="json", exclude={"ablation"}),
                {"run": {"output_dir": str(folder.parent), "name": label, "tools": tools}},
            )
        )
        if not is_complete(folder):
            self.steps.annotate(config, self.splits())
            write_marker(folder, STAGE_DONE)
        return folder / "annotated"

    def splits(self) -> Any:
        if self._splits is None:
            self._splits = self.steps.data(self.config)
        return self._splits

    def source_for(self, config: ExperimentConfig) -> Any:
        """The engine of `config`'s tool set (the previous set's engine is closed first: one at a time)."""
        label = tool_set_label(config.run.tools)
        if self._source is None or self._source[0] != label:
            self.close_source()
            self._source = (label, self.steps.source(config))
        return self._source[1]

    def close_source(self) -> None:
        if self._source is not None:
            self._source[1].close()
            self._source = None


# ------------------------------------------------------------------------------------ table and plot


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def metric_values(per_seed: dict[int, dict], domain: str, answer: str, metric: str) -> list[float]:
    values = []
    for result in per_seed.values():
        overall = result.get(domain, {}).get(answer, {}).get("overall", {})
        value = overall.get(metric)
        if isinstance(value, int | float) and math.isfinite(value):
            values.append(float(value))
    return values


def columns(results: dict[str, dict[int, dict]]) -> list[tuple[str, str]]:
    """(domain, answer) pairs present in the results, final answer first."""
    found: dict[tuple[str, str], None] = {}
    for per_seed in results.values():
        for result in per_seed.values():
            for domain, by_answer in result.items():
                for answer in ("final", "fast"):
                    if isinstance(by_answer, dict) and answer in by_answer:
                        found[(domain, answer)] = None
    return sorted(found, key=lambda pair: (pair[0], pair[1] != "final"))


def table_lines(config: ExperimentConfig, results: dict[str, dict[int, dict]]) -> list[str]:
    """The Markdown table: one row per arm, HTER and AUC (%) mean ± std over the seeds per unseen domain."""
    pairs = columns(results)
    head = ["arm", "tools", "stages", "seeds"]
    head += [f"{domain} {answer} {metric}" for domain, answer in pairs for metric in ("HTER %", "AUC %")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm in config.ablation.arms:
        per_seed = results.get(arm.name, {})
        row = [
            arm.name,
            tool_set_label(arm.tools),
            "+".join(s.upper() for s in arm.stages),
            str(len(per_seed)),
        ]
        for domain, answer in pairs:
            for metric in ("hter", "auc"):
                values = metric_values(per_seed, domain, answer, metric)
                if values:
                    mean, std = mean_std(values)
                    row.append(f"{mean * 100:.2f} ± {std * 100:.2f}")
                else:
                    row.append("-")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def write_results(config: ExperimentConfig, results: dict[str, dict[int, dict]]) -> None:
    """ablation.json, ablation.md and ablation.png under the run folder (arms without a seed yet show -)."""
    write_json(config.run_dir / "ablation.json", results)
    write_table(config, results)


def write_table(config: ExperimentConfig, results: dict[str, dict[int, dict]]) -> None:
    """ablation.md and ablation.png under the run folder."""
    lines = table_lines(config, results)
    seeds = ", ".join(str(seed) for seed in config.ablation.seeds)
    text = (
        f"# Ablations of {config.run.name}\n\nTarget domains (`*_in_domain`: the source domain's own test split), "
        f"mean ± std over seeds {seeds}.\n\n"
    )
    write_text_atomically(config.run_dir / "ablation.md", text + "\n".join(lines) + "\n")
    plot(config, results, config.run_dir / "ablation.png")


def plot(config: ExperimentConfig, results: dict[str, dict[int, dict]], path: Path) -> None:
    """Bars of the final-answer (else fast-answer) AUC per arm and unseen domain, with the seeds' std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [pair for pair in columns(results) if pair[1] == "final"] or columns(results)
    names = [arm.name for arm in config.ablation.arms]
    figure, axes = plt.subplots(figsize=(max(4.0, 1.2 * len(names) * max(1, len(pairs))), 3.5))
    width = 0.8 / max(1, len(pairs))
    for i, (domain, answer) in enumerate(pairs):
        stats = [
            mean_std(metric_values(results.get(n, {}), domain, answer, "auc") or [math.nan]) for n in names
        ]
        positions = [j + i * width for j in range(len(names))]
        axes.bar(
            positions,
            [m * 100 for m, _ in stats],
            width,
            yerr=[s * 100 for _, s in stats],
            capsize=3,
            label=f"{domain} ({answer})",
        )
    axes.set_xticks([j + width * (len(pairs) - 1) / 2 for j in range(len(names))], names, rotation=20)
    axes.set_ylabel("AUC % (mean ± std over seeds)")
    axes.set_title(f"Ablations of {config.run.name}")
    if pairs:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(config: ExperimentConfig, steps: Steps | None = None) -> Ablation:
    """Run (or resume) the ablation of `config`; returns the finished `Ablation` (what ran, what was
    skipped). `steps`: the real jobs unless a test passes its own."""
    check_ablation(config)
    ablation = Ablation(config, steps or JobSteps())
    ablation.run()
    return ablation
