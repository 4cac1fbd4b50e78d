"""The root scripts are Hydra's entry and nothing else; the jobs they run import cleanly."""

from __future__ import annotations

import ast
import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Root script -> the job module it runs.
COMMANDS = {
    "train.py": "train",
    "eval.py": "evaluate",
    "demo.py": "demo",
    "export.py": "export",
    "pseudo_label.py": "pseudo_label",
    "hand_crops.py": "hand_crops",
}
BUILTIN_ERRORS = {
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


def test_every_root_script_is_a_command_with_a_job() -> None:
    scripts = {p.name for p in ROOT.glob("*.py") if "@hydra.main" in p.read_text()}
    assert scripts == set(COMMANDS)
    jobs = {p.stem for p in (ROOT / "src" / "fullbody" / "jobs").glob("*.py")} - {"__init__"}
    assert jobs == set(COMMANDS.values())


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_a_root_script_is_hydra_main_over_its_job(script: str) -> None:
    text = (ROOT / script).read_text()
    assert len(text.splitlines()) <= 40, script
    tree = ast.parse(text)
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    named |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names}  # fmt: skip
    listed = {n for n in named | imported if n in BUILTIN_ERRORS or n.endswith(("Error", "ERRORS"))}
    assert not listed, f"{script} lists exception classes {sorted(listed)}"
    assert not any(isinstance(n, ast.Try) for n in ast.walk(tree)), script
    assert ast.get_docstring(tree), f"{script}: the usage docstring is gone"
    job = COMMANDS[script]
    assert f"from fullbody.jobs import {job}\n" in text and f"{job}.run(cfg)" in text
    assert "with user_errors(cfg):" in text  # cfg: checked for values left unset (???)


def test_jobs_import_without_side_effects(tmp_path: Path) -> None:
    """Importing every job prints nothing, writes nothing, starts no Hydra; scoring a results
    file (the eval job without a checkpoint) does not even load torch."""
    code = (
        "import sys\n"
        "import fullbody.jobs.evaluate\n"
        "assert 'torch' not in sys.modules, 'the eval job imports torch'\n"
        + "".join(f"import fullbody.jobs.{job}\n" for job in COMMANDS.values())
        + "from hydra.core.global_hydra import GlobalHydra\n"
        "assert not GlobalHydra.instance().is_initialized()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert list(tmp_path.iterdir()) == []
