"""The serve options are declared once (the settings dataclasses) and the backends file is read once at start-up."""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields
from pathlib import Path
from types import SimpleNamespace

import pytest

from lightning_lookahead import serving
from lightning_lookahead.cli import build_parser, main
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.serving import launch
from lightning_lookahead.serving.settings import ServeOptions, ServerSettings, ServeSpec


def _serve_parser() -> argparse.ArgumentParser:
    return build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]


def test_every_serve_flag_takes_its_default_and_help_from_the_dataclass_field() -> None:
    parser = _serve_parser()
    args = parser.parse_args(["--checkpoint", "RUN", "--backends", "FILE"])
    spec_fields = {f.name: f for f in fields(ServeSpec)}
    flags = [a for a in parser._actions if a.dest != "help"]
    assert {a.dest for a in flags} >= {f.name for f in fields(ServeOptions)}  # everything a server acts on
    for action in flags:
        field = spec_fields[action.dest]
        if field.default is MISSING:
            assert action.required
            continue
        assert getattr(args, action.dest) == field.metadata.get("cli_default", field.default), action.dest
        assert action.help == (field.metadata["help"].format(default=field.default) or None), action.dest
    assert args.port is None  # --port falls back to $PORT, then the field's default
    assert "(default 30)" in _serve_parser().format_help().replace("\n", " ")


def test_a_default_changed_in_the_dataclass_is_the_flags_default(monkeypatch: pytest.MonkeyPatch) -> None:
    (field,) = [f for f in fields(ServeSpec) if f.name == "max_queue"]
    monkeypatch.setattr(field, "default", 7)
    parser = _serve_parser()
    assert parser.parse_args(["--checkpoint", "R", "--backends", "F"]).max_queue == 7
    assert "(default 7)" in parser.format_help()


def test_the_options_are_checked_once_by_the_dataclass_whoever_builds_it() -> None:
    with pytest.raises(LookaheadError, match="--max-queue must be positive, got 0"):
        ServerSettings(max_queue=0)  # create_app's settings
    with pytest.raises(LookaheadError, match="--max-queue must be positive, got 0"):
        ServeSpec(checkpoint="run", backends="b.yaml", max_queue=0)  # what the CLI and the workers build


def test_serve_reads_the_backends_file_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`lookahead serve` with an export: the CLI's checks, ``serve``'s own check and the worker's router load all use
    the one document the CLI read; the worker gets it through the spec's JSON, as ``--workers N`` processes do."""
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "router.json").write_text(json.dumps({"candidates": ["alpha", "bravo"]}))
    backends = tmp_path / "backends.yaml"
    backends.write_text(
        "backends:\n"
        "  alpha: {base_url: 'http://127.0.0.1:9/v1', cost: 0.001}\n"
        "  bravo: {base_url: 'http://127.0.0.1:9/v1', cost: 0.002}\n"
    )
    reads: list[Path] = []
    read_text = Path.read_text

    def counting(self: Path, *args, **kwargs) -> str:
        if self.resolve() == backends.resolve():
            reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    from lightning_lookahead.inference.router import TrainedRouter

    fake = SimpleNamespace(candidates=["alpha", "bravo"], response_tokens=None)
    monkeypatch.setattr(TrainedRouter, "from_checkpoint", classmethod(lambda cls, *a, **k: fake))
    loaded = []

    def serve(spec: ServeSpec) -> None:  # launch.serve without binding a port: its check, then a worker's load
        spec = spec.checked()
        loaded.append(launch.load_router(ServeSpec.from_json(spec.to_json())))

    monkeypatch.setattr(serving, "serve", serve)
    monkeypatch.delenv("PORT", raising=False)
    assert main(["serve", "--checkpoint", str(run), "--backends", str(backends)]) == 0
    assert len(reads) == 1
    (router,) = loaded
    assert list(router.backends) == ["alpha", "bravo"] and router.backends["bravo"].cost == 0.002
