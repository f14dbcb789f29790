"""Typed configs: bare names resolve, overrides apply, and bad configs fail with the key named."""

import re
from pathlib import Path

import pytest
import yaml

from rft.config import CONFIG_DIR, ConfigError, load_config, read_yaml, save_resolved_config, validate_config

ROOT = Path(__file__).resolve().parents[1]

VALID = {
    "run": {"name": "t", "seed": 3},
    "model": {"tiny_preset": "tiny", "arch": "internvl3"},
    "data": {"protocol": "synth_cross_domain"},
    "grpo": {"num_generations": 4, "generation_batch_size": 8},
}


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_bare_name_resolves_from_configs_dir():
    config = load_config("demo_cpu")
    assert config.model.tiny_preset == "demo"
    assert load_config("demo_cpu.yaml") == config


def test_configs_are_package_data_that_a_checkout_shows_at_its_root():
    assert CONFIG_DIR == ROOT / "rft" / "configs"
    assert (ROOT / "configs").resolve() == CONFIG_DIR.resolve()
    assert (ROOT / "configs" / "demo_cpu.yaml").is_file()


def test_a_file_in_the_current_directory_wins_over_a_packaged_name(tmp_path, monkeypatch):
    (tmp_path / "demo_cpu.yaml").write_text(yaml.safe_dump({**VALID, "run": {"name": "mine"}}))
    monkeypatch.chdir(tmp_path)
    assert load_config("demo_cpu.yaml").run.name == "mine"
    assert load_config("demo_cpu").run.name == "demo_cpu"  # a bare name is the packaged config


def test_a_packaged_experiment_extends_its_packaged_recipe():
    config = load_config("experiments/dt_grpo/icm_to_o_qwen2_5_vl")
    recipe = yaml.safe_load((CONFIG_DIR / "recipes" / "dt_grpo_qwen2_5_vl.yaml").read_text())
    assert config.grpo.method == "dt_grpo"
    assert config.grpo.learning_rate == pytest.approx(recipe["grpo"]["learning_rate"])


def test_unknown_name_lists_known_configs():
    with pytest.raises(ConfigError, match="demo_cpu"):
        load_config("no_such_config")


def test_overrides_apply_with_yaml_types(tmp_path):
    config = load_config(
        write(tmp_path, VALID), ["grpo.learning_rate=1e-5", "run.name=other", "data.roots.x=/d"]
    )
    assert config.grpo.learning_rate == pytest.approx(1e-5)
    assert config.run.name == "other"
    assert config.data.roots == {"x": Path("/d")}


def test_misspelt_key_names_key_and_suggests(tmp_path):
    raw = {**VALID, "grpo": {**VALID["grpo"], "lerning_rate": 1e-5}}
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, raw))
    message = str(error.value)
    assert "grpo.lerning_rate" in message and "did you mean 'learning_rate'" in message
    assert "\n" not in message


def test_misspelt_section_names_section(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'gpro'.*did you mean 'grpo'"):
        load_config(write(tmp_path, {**VALID, "gpro": {}}))


def test_wrong_type_names_key(tmp_path):
    raw = {**VALID, "grpo": {**VALID["grpo"], "num_generations": "eight"}}
    with pytest.raises(ConfigError, match=r"invalid 'grpo.num_generations'.*'eight'"):
        load_config(write(tmp_path, raw))


def test_batch_not_divisible_by_group_names_key_and_fix(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, VALID), ["grpo.generation_batch_size=6"])
    message = str(error.value)
    assert "grpo" in message and "generation_batch_size (6)" in message and "num_generations (4)" in message
    assert "multiple of 4" in message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["grpo.method=rft_fas", "grpo.coefficients={}", "eval.final_answer=false"], "eval.final_answer"),
        (["rollout.mode=server", "rollout.urls=[]"], "rollout.urls is empty"),
        (["reward_service.url=in-process"], "neither inprocess nor an http"),
    ],
)
def test_sections_that_contradict_each_other_are_refused(tmp_path, overrides, named):
    with pytest.raises(ConfigError, match=named):
        load_config(write(tmp_path, VALID), overrides)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            "grpo.coefficients.beta_fast=.nan",
            "'grpo.coefficients.beta_fast': Input should be a finite number",
        ),
        ("grpo.epsilon=.inf", "'grpo.epsilon': Input should be a finite number"),
        ("sft.learning_rate=.nan", "'sft.learning_rate': Input should be a finite number"),
    ],
)
def test_nan_and_infinite_numbers_are_refused_by_key(tmp_path, override, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(write(tmp_path, VALID), [override])


def test_a_tracker_that_is_not_installed_is_refused(tmp_path):
    import importlib.util

    missing = [name for name in ("wandb", "mlflow") if importlib.util.find_spec(name) is None]
    if not missing:
        pytest.skip("wandb and mlflow are both installed here")
    with pytest.raises(ConfigError, match=f"{missing[0]} is not installed"):
        load_config(write(tmp_path, VALID), [f"grpo.report_to={missing[0]}"])


def test_model_needs_exactly_one_source():
    with pytest.raises(ConfigError, match=r"model.path.*model.tiny_preset"):
        validate_config({**VALID, "model": {"tiny_preset": "tiny", "path": "/x"}})


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        load_config("demo_cpu", ["grpo.learning_rate"])


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_resolved_config_round_trips(tmp_path):
    config = load_config(write(tmp_path, VALID), ["grpo.max_steps=7"])
    saved = save_resolved_config(config, tmp_path / "run")
    assert load_config(saved) == config


def _save_repeatedly(config_path: str, run_dir: str, times: int, start) -> None:
    config = load_config(config_path)
    start.wait(timeout=60)  # all writers loop together, whatever their import times
    for _ in range(times):
        save_resolved_config(config, Path(run_dir))


def test_concurrent_processes_saving_the_resolved_config_do_not_collide(tmp_path):
    """Every rank of a launch may save the config; two writers sharing one temporary name once failed CI
    (one renamed the other's file away)."""
    import multiprocessing

    config_path = write(tmp_path, VALID)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    writers = [context.Process(target=_save_repeatedly, args=(str(config_path), str(tmp_path / "run"), 300, start))
               for _ in range(3)]  # fmt: skip
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        if writer.is_alive():
            writer.terminate()
    assert [writer.exitcode for writer in writers] == [0, 0, 0]
    assert load_config(tmp_path / "run" / "config.yaml") == load_config(config_path)
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == ["config.yaml"]


def test_extends_merges_the_parent_section_by_section(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "base.yaml").write_text(
        yaml.safe_dump({**VALID, "grpo": {**VALID["grpo"], "beta": 0.5}})
    )
    child = {"extends": "recipes/base.yaml", "run": {"name": "child"}, "grpo": {"learning_rate": 2e-6}}
    config = load_config(write(tmp_path, child), ["grpo.max_steps=7"])
    assert config.run.name == "child" and config.run.seed == 3  # run merged, not replaced
    assert config.grpo.beta == 0.5 and config.grpo.learning_rate == pytest.approx(2e-6)
    assert config.grpo.num_generations == 4 and config.grpo.max_steps == 7
    assert config.model.arch == "internvl3"


def test_extends_loop_and_missing_parent_are_one_line_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops back") as error:
        load_config(tmp_path / "a.yaml")
    assert "\n" not in str(error.value)
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"'nowhere\.yaml' not found"):
        load_config(tmp_path / "c.yaml")


CONFIGS = CONFIG_DIR
# Protocol files are validated by tests/data (rft.data.protocols); recipes are partial configs that the
# experiments extend, so they are validated through them.
EXPERIMENTS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if not {"protocols", "recipes"} & set(p.relative_to(CONFIGS).parts)
)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_validates(path):
    config = load_config(path)
    assert config.run.name
    if "experiments" in path.parts:  # each experiment is its recipe's method on its own protocol
        method = path.parent.name
        protocol = path.stem.removesuffix("_qwen2_5_vl").removesuffix("_internvl3")
        assert config.grpo.method == method and config.data.protocol == protocol


@pytest.mark.parametrize(
    "name", ["..", ".", "a/b", "../../escape", "/tmp/elsewhere", "a\\b", "", "-x", "a b"]
)
def test_a_run_name_that_is_not_a_plain_folder_name_is_refused_by_key(tmp_path, name):
    raw = {**VALID, "run": {"name": name}}
    with pytest.raises(ConfigError, match=r"invalid 'run\.name': must be a plain folder name") as error:
        load_config(write(tmp_path, raw))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["t", "dt_grpo_icm_to_o_internvl3", "Run-2.v1"])
def test_plain_run_names_are_accepted(tmp_path, name):
    assert load_config(write(tmp_path, VALID), [f"run.name={name}"]).run.name == name


# Eight levels of nine aliases each (a "billion laughs"): 323 bytes that PyYAML reads into shared lists
# whose repr is 312 MB.
ALIAS_BOMB = "".join(
    f"{level}: &{level} [{','.join([previous] * 9)}]\n"
    for level, previous in zip("abcdefgh", ['"lol"', *(f"*{c}" for c in "abcdefg")], strict=True)
)


def test_an_alias_bomb_is_refused_fast_in_one_short_line(tmp_path):
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB + "run: {name: *h}\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases") as error:
        load_config(path)
    assert time.perf_counter() - started < 2
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 300


def test_a_recursive_alias_and_deep_nesting_are_refused_in_one_line(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("run: &a {name: [*a]}\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        load_config(path)
    path.write_text("run: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match=f"{re.escape(str(path))}: nested too deeply"):
        load_config(path)


def test_an_oversized_config_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_config(path)


def test_a_non_utf8_or_unreadable_config_is_a_one_line_error_naming_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("run:\n  name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}: not UTF-8 text (byte 16 is not valid); save the file as UTF-8"
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=f"{re.escape(str(folder))}: cannot be read"):
        read_yaml(folder)


def test_a_huge_bad_value_is_shown_truncated(tmp_path):
    raw = {**VALID, "grpo": {**VALID["grpo"], "num_generations": "x" * 100_000}}
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, raw))
    message = str(error.value)
    assert "invalid 'grpo.num_generations'" in message and "…(100000 chars)" in message
    assert len(message) < 400


def test_many_problems_are_summarised_in_one_bounded_line(tmp_path):
    raw = {**VALID, "sft": {"lora_target_modules": list(range(5000))}}
    with pytest.raises(ConfigError, match=r"and \d+ more problems") as error:
        load_config(write(tmp_path, raw))
    assert len(str(error.value)) < 2000


def test_the_model_section_is_required_unless_the_config_is_an_instructflip_one():
    without_model = {key: value for key, value in VALID.items() if key != "model"}
    with pytest.raises(ConfigError, match="missing key 'model'") as error:
        validate_config(without_model)
    assert "\n" not in str(error.value)
    config = validate_config({**without_model, "instructflip": {"tiny": True}})
    assert config.model is None and config.instructflip.lambda_content == 0.4


def test_a_vlm_job_given_an_instructflip_config_says_what_it_lacks():
    from rft.jobs.steps import base_model_dir

    config = load_config("instructflip_cpu")
    with pytest.raises(ConfigError, match="add a model section"):
        base_model_dir(config.model, config.data.image_size)
