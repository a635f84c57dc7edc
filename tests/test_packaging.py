"""The package metadata (setup.cfg) against the code: every third-party import is declared, the extras match the
commands' checks, ``python_requires`` agrees with ruff's target, and a missing extra is one line naming it."""

from __future__ import annotations

import ast
import configparser
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from lightning_lookahead.cli import main
from lightning_lookahead.extras import DISTRIBUTION, EXTRAS, MissingExtra, require_extra

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_lookahead"
#: Import names of optional packages that may be absent from the test environment (not in packages_distributions()).
NOT_INSTALLED = {"alpaca_eval": "alpaca-eval"}


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def _requirements(text: str) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    """(install_requires, extra → its distributions), as canonical names; an extra naming the package itself (``all``)
    brings in the extras it lists."""
    cfg = _setup_cfg()
    core = {canonicalize_name(r.name) for r in _requirements(cfg["options"]["install_requires"])}
    raw = {name: _requirements(text) for name, text in cfg["options.extras_require"].items()}
    extras: dict[str, set[str]] = {}
    for name, reqs in raw.items():
        names: set[str] = set()
        for req in reqs:
            if canonicalize_name(req.name) == canonicalize_name(DISTRIBUTION):
                for inner in req.extras:
                    names |= {canonicalize_name(r.name) for r in raw[inner]}
            else:
                names.add(canonicalize_name(req.name))
        extras[name] = names
    return core, extras


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module → the files under lightning_lookahead/ that import it (lazy imports included)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != PACKAGE.name:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _distributions(module: str) -> set[str]:
    installed = packages_distributions().get(module)
    if installed:
        return {canonicalize_name(d) for d in installed}
    if module in NOT_INSTALLED:
        return {canonicalize_name(NOT_INSTALLED[module])}
    raise AssertionError(f"{module} is imported but no installed distribution provides it (add it to NOT_INSTALLED?)")


def test_every_third_party_import_is_declared():
    core, extras = _declared()
    declared = core.union(*extras.values())
    imports = _third_party_imports()
    assert {"torch", "lightning", "fastapi", "openai"} <= set(imports)  # the scan sees the code
    undeclared = {m: sorted(files) for m, files in imports.items() if not _distributions(m) & declared}
    assert not undeclared, f"imported but neither in install_requires nor in an extra: {undeclared}"


def test_serving_onnx_and_collection_are_extras_not_core():
    core, extras = _declared()
    for extra, modules in EXTRAS.items():
        assert extra in extras, f"extras.py names the {extra} extra, setup.cfg does not"
        for module in modules:
            dists = _distributions(module)
            assert dists & extras[extra], f"{module} ({dists}) is not in the {extra} extra of setup.cfg"
            assert not dists & core, f"{module} ({dists}) is in install_requires; it belongs to the {extra} extra only"
    assert extras["all"] == extras["train"] | extras["serve"] | extras["onnx"] | extras["collect"]


def installed_closure(extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions ``pip install "lightning-lookahead[EXTRAS]"`` brings: the core requirements, those of
    ``extras`` and, transitively, what each installed one requires (markers evaluated, their own extras skipped)."""
    from importlib.metadata import PackageNotFoundError, requires

    core, declared = _declared()
    todo = set(core).union(*(declared[e] for e in extras))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for line in needs:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.add(canonicalize_name(req.name))
    return seen


def test_the_core_install_is_the_router_runtime_without_torch():
    closure = installed_closure()
    assert {"onnxruntime", "tokenizers", "numpy"} <= closure
    heavy = {"torch", "lightning", "transformers", "omegaconf", "optuna", "fastapi"} & closure
    assert not heavy, f"the core install pulls in {sorted(heavy)}"
    assert not {"torch", "lightning", "transformers"} & installed_closure(("serve",))


def test_a_training_command_without_the_train_extra_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["validate", "debug"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: lookahead validate needs the train extra (torch is not installed): "
        'pip install "lightning-lookahead[train]"'
    )


def test_make_install_installs_every_extra():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert '-e ".[all,dev]"' in makefile


def test_python_requires_matches_ruff_target_version():
    floor = SpecifierSet(_setup_cfg()["options"]["python_requires"])
    target = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]["target-version"]
    version = f"{target[2]}.{target[3:]}"  # "py311" → "3.11"
    assert version in floor, f"ruff checks for Python {version}, below python_requires {floor}"
    below = f"{target[2]}.{int(target[3:]) - 1}"
    assert below not in floor, f"python_requires {floor} admits Python {below}, which ruff ({target}) does not check"
    # the API that made 3.10 untrue (commands/calibrate.py); a floor of 3.11 is what it needs
    assert "UTC" in (PACKAGE / "commands" / "calibrate.py").read_text(encoding="utf-8")


def test_missing_extra_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an import of an absent package sees
    with pytest.raises(MissingExtra) as raised:
        require_extra("serve", "lookahead serve")
    assert str(raised.value) == (
        'lookahead serve needs the serve extra (uvicorn is not installed): pip install "lightning-lookahead[serve]"'
    )
    require_extra("serve", "the server's client side", ("httpx",))  # a part of the extra that is there passes


def test_commands_say_which_extra_is_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", "--checkpoint", str(tmp_path), "--backends", str(tmp_path / "b.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: lookahead serve needs the serve extra (fastapi is not installed): "
        'pip install "lightning-lookahead[serve]"'
    )

    monkeypatch.setitem(sys.modules, "openai", None)
    args = ["data", "collect", "--prompts", "p.jsonl", "--endpoints", "e.yaml", "--out", str(tmp_path / "o.jsonl")]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().endswith('pip install "lightning-lookahead[collect]"')
    assert not (tmp_path / "o.jsonl").exists()


def test_score_asks_only_for_what_its_scorer_needs(monkeypatch, capsys, tmp_path):
    from lightning_lookahead.commands.score import _scorer_modules

    assert _scorer_modules("judge:backends.yaml:gpt") == ("openai",)
    assert _scorer_modules("auto:judge") == ("openai", "math_verify")
    assert _scorer_modules("math") == ("math_verify",)
    assert _scorer_modules("reward:some/model") == () and _scorer_modules("code") == ()
    monkeypatch.setitem(sys.modules, "math_verify", None)
    assert main(["data", "score", "--dataset", str(tmp_path / "d.jsonl"), "--scorer", "math", "--in-place"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --scorer math needs the collect extra (math_verify is not installed): "
        'pip install "lightning-lookahead[collect]"'
    )


def test_onnx_engine_says_which_extra_is_missing(monkeypatch):
    import torch

    from lightning_lookahead.inference.engines import apply_engine

    class Stub:  # apply_engine reads only the network before choosing the engine
        network = torch.nn.Linear(2, 2)

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(MissingExtra, match=r"engine \'onnx\' needs the onnx extra \(onnxscript is not installed\)"):
        apply_engine(Stub(), "onnx")  # type: ignore[arg-type]
