"""The ablation command's plan, sharing, resume, table and plot (rft.jobs.ablation), with the stages'
work replaced by steps that write what each job would export: a real toy run of 7 arms x 3 seeds takes far
longer than a test may (the real steps are rft.jobs.demo's and the SFT/GRPO jobs', tested there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rft.config import ConfigError, load_config
from rft.jobs import ablation
from rft.outputs import made_by

ARMS = (
    "ablation.arms=["
    "{name: zoom_in, tools: zoom_in, stages: [kt, fi, rl]},"
    "{name: all_tools, tools: all, stages: [kt, fi, rl]},"
    "{name: KT+FI, tools: all, stages: [kt, fi]},"
    "{name: FI+RL, tools: all, stages: [fi, rl]}]"
)


class Killed(Exception):
    pass


class RecordingSteps:
    """Writes each job's exported model folder and a result whose AUC depends on the seed and tool set."""

    def __init__(self, kill_at: tuple[str, int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.kill_at = kill_at  # (what, seed): raise there, as a killed run would stop
        self.engines: list[str] = []

    def _maybe_die(self, what: str, config) -> None:
        if self.kill_at == (what, config.run.seed):
            (config.run_dir / "half-written").mkdir(parents=True)  # what a killed job leaves
            raise Killed(what)

    def data(self, config):
        self.calls.append(("data",))
        return "splits"

    def annotate(self, config, splits):
        self.calls.append(("annotate", config.run.tools))
        out = config.run_dir / "annotated"
        out.mkdir(parents=True)
        return out

    def sft(self, config, stage, data_dir):
        self._maybe_die(f"sft{stage}", config)
        start = str(config.model.path) if config.model.path else "base"
        self.calls.append(("sft", stage, config.run.seed, config.run.tools, start, data_dir.parent.name))
        return _export(config.run_dir / f"sft_stage{stage}")

    def grpo(self, config, source):
        self._maybe_die("grpo", config)
        self.calls.append(("grpo", config.run.seed, config.run.tools, str(config.model.path), source.tools))
        _export(config.run_dir / "grpo")
        return _result(config, 0.8)

    def evaluate(self, model_dir, config, splits, source):
        self.calls.append(("evaluate", config.run.seed, str(model_dir)))
        return _result(config, 0.6)

    def source(self, config):
        self.engines.append(config.run.tools)
        return Engine(config.run.tools)


class Engine:
    def __init__(self, tools) -> None:
        self.tools, self.closed = tools, False

    def close(self) -> None:
        self.closed = True


def _export(stage_dir: Path) -> Path:
    (stage_dir / "model").mkdir(parents=True)
    (stage_dir / "model" / "config.json").write_text("{}")
    return stage_dir / "model"


def _result(config, base: float) -> dict:
    auc = base + 0.01 * config.run.seed + (0.05 if config.run.tools == "all" else 0.0)
    overall = {"hter": 1 - auc, "auc": auc}
    return {"street": {"fast": {"overall": overall}, "final": {"overall": overall}}, "n_samples": 8}


def toy_config(tmp_path: Path, *extra: str):
    return load_config("ablation_cpu", [f"run.output_dir={tmp_path}", "ablation.seeds=[0, 1]", ARMS, *extra])


def test_arms_share_their_common_stages_and_each_tool_set_gets_one_engine(tmp_path):
    config = toy_config(tmp_path)
    steps = RecordingSteps()
    done = ablation.run(config, steps)
    root = tmp_path / "ablation_cpu" / "ablation"
    # Per seed: kt once (every arm shares it), kt_fi and kt_fi_rl per tool set, fi and fi_rl for FI+RL.
    per_seed = {"kt", "kt_fi.zoom_in", "kt_fi_rl.zoom_in", "kt_fi.all", "kt_fi_rl.all", "fi.all", "fi_rl.all"}
    assert sorted(done.ran) == sorted(f"seed{s}/{name}" for s in (0, 1) for name in per_seed)
    assert done.skipped == [] or all("kt" in name for name in done.skipped)
    kt_runs = [call for call in steps.calls if call[:2] == ("sft", 1)]
    assert len(kt_runs) == 2 and all(call[5] == "all" for call in kt_runs)  # kt reads the all-tools data
    # fi of zoom_in starts from its seed's kt model and reads the zoom_in conversations.
    (fi_zoom,) = [c for c in steps.calls if c[:4] == ("sft", 2, 0, "zoom_in")]
    assert fi_zoom[4] == str(root / "seed0" / "kt" / "sft_stage1" / "model") and fi_zoom[5] == "zoom_in"
    # FI+RL starts fi from the model section, and its rl from that fi.
    assert ("sft", 2, 1, "all", "base", "all") in steps.calls
    rl_from = {c[3] for c in steps.calls if c[0] == "grpo" and c[1] == 1}
    assert str(root / "seed1" / "fi.all" / "sft_stage2" / "model") in rl_from
    # GRPO runs on the engine of its own tool set; one engine per set, started once.
    assert all(c[2] == c[4] for c in steps.calls if c[0] == "grpo")
    assert sorted(steps.engines) == ["all", "zoom_in"]
    assert made_by(root / "seed0" / "kt") == ablation.STAGE_DONE
    # The KT+FI arm is evaluated on its kt_fi model (GRPO arms use GRPO's own final evaluation).
    evaluated = [c for c in steps.calls if c[0] == "evaluate"]
    assert [c[2] for c in evaluated] == [
        str(root / f"seed{s}" / "kt_fi.all" / "sft_stage2" / "model") for s in (0, 1)
    ]

    table = (tmp_path / "ablation_cpu" / "ablation.md").read_text()
    assert "| zoom_in | zoom_in | KT+FI+RL | 2 | 19.50 ± 0.71 | 80.50 ± 0.71 |" in table
    assert "| KT+FI | all | KT+FI | 2 | 34.50 ± 0.71 | 65.50 ± 0.71 |" in table
    assert (tmp_path / "ablation_cpu" / "ablation.png").stat().st_size > 1000


def test_a_second_run_skips_every_complete_stage(tmp_path):
    config = toy_config(tmp_path)
    ablation.run(config, RecordingSteps())
    again = RecordingSteps()
    done = ablation.run(config, again)
    assert done.ran == [] and len(set(done.skipped)) == 14
    assert [c for c in again.calls if c[0] in ("sft", "grpo", "evaluate", "annotate")] == []
    assert again.engines == []


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    config = toy_config(tmp_path)
    with pytest.raises(Killed):
        ablation.run(config, RecordingSteps(kill_at=("grpo", 1)))
    root = tmp_path / "ablation_cpu" / "ablation"
    assert made_by(root / "seed1" / "kt_fi.all") == ablation.STAGE_DONE
    killed = root / "seed1" / "kt_fi_rl.all"  # the first rl of seed 1 (the all-tools arms run first)
    assert (killed / "half-written").is_dir() and made_by(killed) is None
    # the arms finished before the kill are already in the table (the all-tools arms of seed 0 run first)
    partial = (tmp_path / "ablation_cpu" / "ablation.md").read_text()
    assert (
        "| all_tools | all | KT+FI+RL | 1 |" in partial
        and "| zoom_in | zoom_in | KT+FI+RL | 0 | - |" in partial
    )
    resumed = RecordingSteps()
    done = ablation.run(config, resumed)
    assert "seed1/kt_fi_rl.all" in done.ran and made_by(killed) == ablation.STAGE_DONE
    assert "seed1/kt" in done.skipped and "seed0/kt" in done.skipped
    assert not [c for c in resumed.calls if c[:2] == ("sft", 1)]  # every kt was complete


def test_a_config_without_arms_or_with_a_bad_arm_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"ablation\.arms is empty"):
        ablation.run(load_config("demo_cpu", [f"run.output_dir={tmp_path}"]), RecordingSteps())
    with pytest.raises(ConfigError, match=r"invalid 'ablation.arms.0.stages': must be distinct stages"):
        load_config("ablation_cpu", ["ablation.arms=[{name: x, stages: [rl, kt]}]"])
    with pytest.raises(ConfigError, match=r"invalid 'ablation.arms.0.tools': unknown tool 'Fourier'"):
        load_config("ablation_cpu", ["ablation.arms=[{name: x, tools: [ZoomInTool, Fourier]}]"])


class RealStagesWithoutEngine(ablation.JobSteps):
    """The real annotation and SFT jobs; the vLLM engine and the evaluation replaced (no engine in a test)."""

    def source(self, config):
        return Engine(config.run.tools)

    def evaluate(self, model_dir, config, splits, source):
        assert (model_dir / "config.json").is_file()
        return {"street": {"fast": {"overall": {"hter": 0.5, "auc": 0.5}}}, "n_samples": 1}


def test_the_real_annotation_and_sft_stages_chain_and_resume(tmp_path, tiny_benchmark, model_cache):
    config = load_config(
        "ablation_cpu",
        [
            f"run.output_dir={tmp_path}",
            f"data.roots={{synthetic: {tiny_benchmark}}}",
            f"model.cache_dir={model_cache}",
            "model.tiny_preset=tiny",
            "data.image_size=56",
            "sft.max_steps=1",
            "sft.stage2_max_steps=1",
            "sft.per_device_train_batch_size=2",
            "ablation.seeds=[0]",
            "ablation.arms=[{name: z, tools: zoom_in, stages: [kt, fi]}]",
        ],
    )
    done = ablation.run(config, RealStagesWithoutEngine())
    assert done.ran == ["seed0/kt", "seed0/kt_fi.zoom_in"]
    root = tmp_path / "ablation_cpu" / "ablation"
    stage2 = load_config(root / "seed0" / "kt_fi.zoom_in" / "sft_stage2" / "config.yaml")
    assert stage2.model.path == root / "seed0" / "kt" / "sft_stage1" / "model"
    assert stage2.run.tool_names == ("ZoomInTool",)
    journal = (root / "annotated" / "zoom_in" / "annotated" / "journal.jsonl").read_text()
    assert "ZoomInTool" in journal
    assert not [name for name in ("FFTTool", "LBPTool", "HOGTool", "EdgeDetectionTool") if name in journal]
    assert ablation.run(config, RealStagesWithoutEngine()).ran == []
