"""``lookahead serve --port`` defaults to the ``PORT`` environment variable (Cloud Run, Heroku, ...), else 8000."""

from __future__ import annotations

import pytest

from lightning_lookahead import serving
from lightning_lookahead.cli import build_parser, main


@pytest.fixture
def served(monkeypatch, tmp_path) -> tuple[list[serving.ServeSpec], list[str]]:
    """What ``lookahead serve`` would serve (``serving.serve`` recorded, not run), and the arguments it needs."""
    seen: list[serving.ServeSpec] = []
    monkeypatch.setattr(serving, "serve", seen.append)
    monkeypatch.delenv("PORT", raising=False)
    backends = tmp_path / "b.yaml"
    backends.write_text("backends: {}\n")
    return seen, ["serve", "--checkpoint", str(tmp_path), "--backends", str(backends)]


@pytest.mark.parametrize(
    ("port_env", "flag", "port"), [(None, [], 8000), ("9123", [], 9123), ("9123", ["--port", "7"], 7)]
)
def test_the_port_comes_from_the_flag_else_port_else_8000(served, monkeypatch, capsys, port_env, flag, port) -> None:
    seen, args = served
    if port_env is not None:
        monkeypatch.setenv("PORT", port_env)
    assert main([*args, *flag]) == 0
    assert [spec.port for spec in seen] == [port]
    assert f"on http://127.0.0.1:{port}/v1" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["http", "0", "70000", "-5"])
def test_a_bad_port_variable_is_one_line_and_exit_2(served, monkeypatch, capsys, value) -> None:
    seen, args = served
    monkeypatch.setenv("PORT", value)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: the PORT environment variable is {value!r}; expected a port number from 1 to 65535\n"
    assert seen == []


def test_help_names_the_port_variable() -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    assert "the PORT environment variable when set, else 8000" in " ".join(serve.format_help().split())
