"""Packages import their public names on first use: importing one leaves its heavy modules unloaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, sys
import lightning_lookahead.bundle, lightning_lookahead.collect, lightning_lookahead.inference
import lightning_lookahead.serving
before = [m for m in ("torch", "fastapi", "openai", "onnxruntime") if m in sys.modules]
from lightning_lookahead.serving import ServeSpec
from lightning_lookahead.collect import RetryPolicy
print(json.dumps({"before": before, "fastapi": "fastapi" in sys.modules, "names": [ServeSpec.__name__,
      RetryPolicy.__name__]}))
"""


def test_packages_import_their_names_on_first_use():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120)
    got = json.loads(out.stdout)
    assert got["before"] == []
    assert got["names"] == ["ServeSpec", "RetryPolicy"]


def test_an_unknown_name_is_an_attribute_error():
    import lightning_lookahead.bundle as bundle

    with pytest.raises(AttributeError, match=r"lightning_lookahead\.bundle' has no attribute 'Nope'"):
        _ = bundle.Nope
    assert bundle.BundleRouter.__name__ == "BundleRouter"
