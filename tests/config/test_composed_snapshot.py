"""Every shipped experiment composes to the values pinned in ``composed_experiments.json``.

The pin guards refactors of the config machinery (layering, interpolation, typed parsing): a change that moves a
composed value fails here. A deliberate change to an experiment or a default regenerates the file with
``LOOKAHEAD_UPDATE_SNAPSHOT=1 pytest tests/config/test_composed_snapshot.py``; review its diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lightning_lookahead.config.compose import compose, to_dict
from lightning_lookahead.config.experiments import list_experiments

SNAPSHOT = Path(__file__).with_name("composed_experiments.json")


def composed(name: str) -> dict:
    return to_dict(compose(name))


def test_every_shipped_experiment_composes_to_its_pinned_values() -> None:
    names = list_experiments()
    current = {name: composed(name) for name in names}
    if os.environ.get("LOOKAHEAD_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        pytest.skip(f"rewrote {SNAPSHOT.name}")
    pinned = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert sorted(current) == sorted(pinned), "shipped experiments changed: regenerate the snapshot (module docstring)"
    for name in names:
        assert current[name] == pinned[name], f"{name} composes to other values than pinned"
