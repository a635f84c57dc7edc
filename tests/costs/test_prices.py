"""The shipped price table and user overrides, with every malformed file a located one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_lookahead.costs.prices import DEFAULT_PRICES, Price, load_prices
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.errors import LookaheadError


def test_shipped_table_prices_the_paper_pool_and_states_its_source():
    table = load_prices()
    assert table.path == str(DEFAULT_PRICES)
    for model in PAPER_CANDIDATES:
        price = table.price(model)
        assert price.input > 0 and price.output > 0
    # The size rule: the 34B model is dearest, the two ~8B models cheapest.
    assert table.price("Yi-1.5-34B-Chat") == Price(0.80, 0.80)
    assert table.price("Qwen2.5-Coder-7B-Instruct") == Price(0.20, 0.20)
    assert "Size-based rule" in table.source and "not verified" in table.source
    assert table.recorded == "2026-11-28"


def test_arrays_follow_the_candidate_order():
    price_in, price_out = load_prices().arrays(["Qwen2.5-Coder-7B-Instruct", "Yi-1.5-34B-Chat"])
    assert price_in.tolist() == [0.2, 0.8] and price_out.tolist() == [0.2, 0.8]


def test_user_file_overrides_the_table(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "source: my invoice\nmodels:\n  a: {input: 1, output: 3}\n  b: {input: 0.5, output: 0, note: free}\n"
    )
    table = load_prices(path)
    assert table.source == "my invoice" and table.prices == {"a": Price(1.0, 3.0), "b": Price(0.5, 0.0)}
    assert table.notes == {"b": "free"}


def test_unknown_candidate_names_the_file_and_the_model(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("models:\n  Yi-1.5-34B-Chat: {input: 1, output: 1}\n")
    with pytest.raises(LookaheadError) as info:
        load_prices(path).arrays(["Yi-1.5-34B-Chat", "Llama-3.1-8B-Instruct"])
    message = str(info.value)
    assert str(path) in message and "'Llama-3.1-8B-Instruct'" in message and "\n" not in message
    with pytest.raises(LookaheadError, match=r"did you mean 'Yi-1\.5-34B-Chat'"):
        load_prices(path).price("Yi-1.5-34B")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [1, 2]\n", "non-empty 'models:' mapping"),
        ("models:\n  a: {input: 1, output: -2}\n", "[models.a.output]: expected a non-negative number"),
        ("models:\n  a: {input: 1, output: true}\n", "[models.a.output]: expected a non-negative number"),
        ("models:\n  a: {input: 1}\n", "[models.a]: missing output"),
        ("models:\n  a: {input: 1, outptu: 2, output: 2}\n", "unknown key 'outptu'; did you mean 'output'?"),
        ("models:\n  a: 0.3\n", "[models.a]: expected a mapping with 'input' and 'output'"),
        ("models: {a: {input: 1, output: 2}\n", "invalid YAML"),
    ],
)
def test_malformed_files_are_located_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LookaheadError) as info:
        load_prices(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(LookaheadError, match=r"price file .*nowhere\.yaml not found"):
        load_prices(tmp_path / "nowhere.yaml")
