"""The README's ``make`` commands, as written, expand to commands that work.

``make train`` (minutes of training) and ``make test`` (this suite) cannot run inside the suite, and even
``make train EXP=debug`` would write ``runs/debug`` into the checkout and may first reinstall ``.venv`` or fetch the
data (its prerequisites). So each command of the README's marked blocks runs as ``make -n <its arguments>`` from the
repository root (make prints the commands it would run, runs none) and the command it ends in is checked for real:

- ``lookahead train EXP ...``: ``lookahead validate`` with the same experiment and overrides (the whole composed
  config: every key, type and range, the backbone name; no model is loaded);
- ``lookahead evaluate ...``: parsed by the real ``lookahead`` parser;
- ``python benchmarks/X.py ...``: the script exists and its ``--help`` lists every option the command passes;
- ``make test``: the offline environment and ``python -m pytest -q`` over the suite's ``testpaths``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest
from doc_commands import ROOT, commands, marked

from lightning_lookahead.cli import build_parser, main

THIS = "tests/docs/test_readme_doc.py"
README = ROOT / "README.md"
#: Make variables the README's commands must not inherit from whoever runs the tests (``make test`` sets none).
MAKE_ENV = ("EXP", "ARGS", "SEEDS", "FAMILIES", "VENV", "PYTHON", "DATA_DIR", "MIRROR", "TORCH", "LOOKAHEAD_DATA_DIR",
            "LOOKAHEAD_DATA_MIRROR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # fmt: skip
BIN = ".venv/bin/"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def readme_commands() -> list[list[str]]:
    found = marked(README, THIS)
    assert len(found) == 2, f"README.md: expected the quickstart and the most-used blocks marked for {THIS}"
    return [argv for block in found for argv in commands(block, programs=("make",))]


def expand(argv: list[str]) -> list[list[str]]:
    """What ``make -n`` prints for the command, run from the repository root, one argv per shell command."""
    env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV}
    done = subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{shlex.join(argv)}: make -n failed: {done.stderr}"
    text = re.sub(r"\\\n\s*", " ", done.stdout)
    return [shlex.split(line) for line in text.splitlines() if line.strip()]


def test_make_train_and_make_test_expand_to_the_default_experiment_and_this_suite(capsys) -> None:
    quickstart = readme_commands()[:2]
    assert quickstart == [["make", "train"], ["make", "test"]]
    train, test = (expand(argv) for argv in quickstart)
    default = re.search(
        r"`make train` runs\s+the\s+default\s+experiment\s+`([^`]+)`", README.read_text(encoding="utf-8")
    )
    assert default, "README.md no longer names the default experiment of `make train`"
    assert train[-1] == [f"{BIN}lookahead", "train", default.group(1), "data.data_dir=data"]
    assert main(["validate", *train[-1][2:]]) == 0, capsys.readouterr().err
    suite = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert suite["testpaths"] == ["tests"]
    offline = ["HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "WANDB_MODE=disabled"]
    assert test[-1] == [*offline, f"{BIN}python", "-m", "pytest", "-q"]
    for line in test[:-1]:  # only the set-up of .venv comes before it (the README: "do all their own set-up")
        assert ".venv" in shlex.join(line), line


@pytest.mark.parametrize("argv", readme_commands()[2:], ids=shlex.join)
def test_the_most_used_make_commands_expand_to_working_commands(argv: list[str], capsys) -> None:
    last = expand(argv)[-1]
    variables = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
    target = next(a for a in argv[1:] if "=" not in a)
    if target == "train":
        extra = shlex.split(variables.get("ARGS", ""))
        assert last == [f"{BIN}lookahead", "train", variables["EXP"], "data.data_dir=data", *extra]
        assert main(["validate", *last[2:]]) == 0, capsys.readouterr().err
    elif last[0] == f"{BIN}lookahead":
        build_parser().parse_args(last[1:])  # exits 2 on an unknown option or a bad value
    else:
        assert last[0] == f"{BIN}python" and last[1].startswith("benchmarks/"), last
        script = ROOT / last[1]
        assert script.is_file(), f"{shlex.join(argv)} runs {last[1]}, which does not exist"
        usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
        assert usage.returncode == 0, usage.stderr
        for option in (a for a in last[2:] if a.startswith("--")):
            assert option in usage.stdout, f"{last[1]} --help does not list {option}"
