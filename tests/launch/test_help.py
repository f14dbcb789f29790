"""`--help` of every launcher: exits 0 and says how the job is started and overridden."""

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HELP_PHRASES = {
    "sft": ["accelerate launch", "--resume", "section.key=value"],
    "grpo": ["accelerate launch", "--resume", "section.key=value"],
    "demo": ["--config", "section.key=value"],
    "ablation": ["--config", "section.key=value", "resumes", "mean ± std"],
    "caption": ["accelerate launch", "--resume", "--overwrite", "section.key=value", "Eq. 1"],
    "evaluate": ["--config", "--model", "--overwrite", "section.key=value", "final answer"],
    "compare": ["NAME=PATH", "--out", "comparison.md", "roc.png"],
    "instructflip": ["--config", "--resume", "--overwrite", "section.key=value", "docs/BASELINES.md"],
}


def launcher(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_launcher", ROOT / "launch" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(HELP_PHRASES))
def test_help_describes_the_job(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        launcher(name).main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    missing = [phrase for phrase in HELP_PHRASES[name] if phrase not in out]
    assert not missing, f"launch/{name}.py --help lacks {missing}"


def test_every_launcher_is_covered():
    scripts = {path.stem for path in (ROOT / "launch").glob("*.py")} - {"__init__"}
    assert scripts == set(HELP_PHRASES)


@pytest.mark.parametrize("name", sorted(HELP_PHRASES))
def test_launchers_are_thin(name):
    """parse -> build -> run through rft.jobs (and the process's allocator settings, rft.allocator): no job
    logic, no sys.path edits, no imports of launch/."""
    source = (ROOT / "launch" / f"{name}.py").read_text()
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "sys", "rft.allocator", "rft.errors", "rft.jobs"}
    assert "sys.path" not in source
    assert len(source.splitlines()) < 60
