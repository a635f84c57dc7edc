"""Load pretrained backbones and give each candidate a model-id token (METHOD §7, §8, §9).

Loading goes through the ``Auto*`` classes so any hub id or local directory works, offline by default (the suite and
the Makefile set ``HF_HUB_OFFLINE=1``). Failures become :class:`LookaheadError` with a hint, because a missing model
is the most common setup mistake. ``trust_remote_code`` stays off unless the caller asks: it runs code from the repo.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.backbone_names import ALIASES, minilm_path

log = logging.getLogger(__name__)

#: Embedding matrices are resized to a multiple of this (tensor-core friendly, as in the original).
EMBEDDING_MULTIPLE = 64

ModelIdKind = Literal["unused", "special"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_reported_fresh: set[str] = set()
#: True while a predictor is rebuilt whose every weight is loaded right after (an export or a checkpoint).
_weights_follow: contextvars.ContextVar[bool] = contextvars.ContextVar("lookahead_weights_follow", default=False)


@contextlib.contextmanager
def weights_loaded_after() -> Iterator[None]:
    """Backbones loaded inside are only the architecture of a saved router, whose weights are loaded next.

    The pretrained weights do not matter then, so modules the checkpoint lacks (the MLM head of the sentence-encoder
    MiniLM) are not reported as "freshly initialised": they are about to be overwritten, or not used at all.
    """
    token = _weights_follow.set(True)
    try:
        yield
    finally:
        _weights_follow.reset(token)


def resolve_backbone(name_or_path: str | Path) -> str:
    """Turn an alias, a local directory or a hub id into what ``from_pretrained`` accepts.

    A string that exists on disk, or that cannot be a hub id (starts with ``/``, ``.``, ``~``, or has two slashes),
    is a local path and must exist and hold a ``config.json``. A path ending in ``.gguf`` is converted once into the
    model cache (:mod:`lightning_lookahead.models.gguf`) and that directory is returned.
    """
    name = str(name_or_path)
    if name.lower() == "minilm":
        return minilm_path()
    if name.lower() == "smollm2":
        from lightning_lookahead.models.gguf import smollm2_dir

        return str(smollm2_dir())
    path = Path(name).expanduser()
    if name.lower().endswith(".gguf"):  # a GGUF checkpoint: converted once into the model cache
        from lightning_lookahead.models.gguf import converted_dir

        return str(converted_dir(path))
    if path.exists() or not _HUB_ID.match(name):
        if not path.exists():
            raise LookaheadError(f"backbone path {name!r} does not exist (aliases: {', '.join(ALIASES)})")
        if not (path / "config.json").is_file():
            raise LookaheadError(f"backbone directory {str(path)!r} has no config.json; is it a saved model?")
        return str(path.resolve())
    return name


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' load table and progress bar; we log one concise line about fresh weights instead."""
    verbosity = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def _load_config(source: str, trust_remote_code: bool, overrides: Mapping[str, Any] | None) -> PretrainedConfig:
    """The backbone config with ``overrides`` applied; unknown override keys are an error (they are typos)."""
    try:
        config, unused = AutoConfig.from_pretrained(
            source, trust_remote_code=trust_remote_code, return_unused_kwargs=True, **dict(overrides or {})
        )
    except OSError as exc:
        raise LookaheadError(
            f"cannot load backbone {source!r}: not a local directory and not in the Hugging Face cache "
            "(downloads are off: HF_HUB_OFFLINE=1); pass a local model directory or allow downloads"
        ) from exc
    except ValueError as exc:
        raise LookaheadError(f"cannot load backbone {source!r}: {exc}") from exc
    if unused:
        raise LookaheadError(f"config_overrides {sorted(unused)} are not fields of {type(config).__name__}")
    return config


def _report_fresh(source: str, missing: list[str]) -> None:
    """Log once per backbone which modules start untrained (e.g. the MLM head of a sentence-embedding checkpoint)."""
    if not missing or source in _reported_fresh or _weights_follow.get():
        return
    _reported_fresh.add(source)
    modules = sorted({key.rsplit(".", 1)[0] for key in missing})
    log.info("%s: %d weights start freshly initialised (%s)", source, len(missing), ", ".join(modules))


def _load(
    auto_cls: Any, name_or_path: str | Path, trust_remote_code: bool, overrides: Mapping[str, Any] | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    source = resolve_backbone(name_or_path)
    config = _load_config(source, trust_remote_code, overrides)
    try:
        with _quiet_transformers():
            model, info = auto_cls.from_pretrained(
                source, config=config, trust_remote_code=trust_remote_code, output_loading_info=True
            )
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LookaheadError(f"cannot load backbone {source!r}: {exc}") from exc
    _report_fresh(source, list(info.get("missing_keys", [])))
    return model, tokenizer


def load_masked_lm(
    name_or_path: str | Path, *, trust_remote_code: bool = False, config_overrides: Mapping[str, Any] | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A ``*ForMaskedLM`` model with its pretrained MLM head where the checkpoint has one, plus its tokenizer.

    ``"minilm"`` is the bundled sentence-transformers MiniLM-L6: it has no MLM head, so that head starts fresh
    (logged once). ``config_overrides`` set config fields before the weights load (e.g. ``hidden_dropout_prob``).
    """
    return _load(AutoModelForMaskedLM, name_or_path, trust_remote_code, config_overrides)


def load_encoder(
    name_or_path: str | Path, *, trust_remote_code: bool = False, config_overrides: Mapping[str, Any] | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The bare encoder (``AutoModel``) and tokenizer, for heads that read hidden states (MLC, the GT-response bound).

    A BERT-style pooler is dropped: the routers pool hidden states themselves, and its parameters would get no
    gradient, which DDP reports as an error.
    """
    model, tokenizer = _load(AutoModel, name_or_path, trust_remote_code, config_overrides)
    if isinstance(getattr(model, "pooler", None), torch.nn.Module):
        model.pooler = None
    return model, tokenizer


def load_causal_lm(
    name_or_path: str | Path,
    *,
    trust_remote_code: bool = False,
    config_overrides: Mapping[str, Any] | None = None,
    attn_implementation: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A ``*ForCausalLM`` model and its tokenizer (Lookahead-CLM, §7); pad = EOS when the tokenizer has no pad.

    ``attn_implementation`` (e.g. ``"sdpa"``) is set after loading: the CLM's shared-prefix batches use a custom
    4-D attention mask, which only the ``sdpa`` and ``eager`` implementations accept.
    """
    model, tokenizer = _load(AutoModelForCausalLM, name_or_path, trust_remote_code, config_overrides)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise LookaheadError(f"backbone {str(name_or_path)!r}: the tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    if attn_implementation is not None and model.config._attn_implementation != attn_implementation:
        try:
            model.set_attn_implementation(attn_implementation)
        except (ValueError, ImportError) as exc:
            raise LookaheadError(f"backbone {str(name_or_path)!r}: attention {attn_implementation!r}: {exc}") from exc
    return model, tokenizer


def _unused_ids(tokenizer: PreTrainedTokenizerBase, n: int, rows: int | None) -> list[int] | None:
    """Ids of ``[unused0]..[unused{n-1}]`` if all are real, distinct vocabulary entries with an embedding row."""
    ids = tokenizer.convert_tokens_to_ids([f"[unused{j}]" for j in range(n)])
    if any(i is None or i == tokenizer.unk_token_id for i in ids) or len(set(ids)) != n:
        return None
    if rows is not None and max(ids) >= rows:
        return None
    return [int(i) for i in ids]


def model_id_tokens(
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel | None,
    n: int,
    *,
    kind: ModelIdKind = "unused",
    noise_std: float = 0.0,
) -> list[int]:
    """Token ids that name candidates 0..n−1 (index j = candidate-pool order).

    ``kind="unused"`` (MLM, §8) reuses ``[unused0..n-1]`` when the tokenizer has them as real vocabulary tokens (no new
    embeddings) and otherwise falls back to new tokens. ``kind="special"`` (CLM, §7), or the fallback, adds special
    tokens ``<Model_j>`` and resizes the embeddings to a multiple of 64; every new row (input and, if untied, output;
    plus the output bias) starts at the mean of the old rows, plus N(0, noise_std²) noise if asked.
    Idempotent: tokens already present (a reloaded checkpoint) are reused and their rows left untouched.
    """
    if n < 1:
        raise LookaheadError(f"need at least one model-id token, got n={n}")
    if kind not in ("unused", "special"):
        raise LookaheadError(f"unknown model-id token kind {kind!r} (valid: unused, special)")
    rows = None if model is None else model.get_input_embeddings().weight.shape[0]
    if kind == "unused":
        ids = _unused_ids(tokenizer, n, rows)
        if ids is not None:
            return ids
        log.warning("tokenizer has no [unused0..%d] tokens; adding special <Model_j> tokens instead", n - 1)

    names = [f"<Model_{j}>" for j in range(n)]
    vocab = tokenizer.get_vocab()
    old_len = len(tokenizer)
    missing = [t for t in names if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    ids = [int(i) for i in tokenizer.convert_tokens_to_ids(names)]
    new_ids = [i for i, t in zip(ids, names, strict=True) if t in missing]
    if model is None:
        if new_ids:
            raise LookaheadError("adding model-id tokens needs the model, to give them embedding rows")
        return ids
    assert rows is not None
    if len(tokenizer) <= rows and not new_ids:
        return ids
    _grow_embeddings(model, len(tokenizer), new_ids, old_len, rows, noise_std)
    log.info("added model-id tokens %s (ids %s); embeddings now %d rows", missing, ids, _rows(model))
    return ids


def _rows(model: PreTrainedModel) -> int:
    return int(model.get_input_embeddings().weight.shape[0])


def _grow_embeddings(
    model: PreTrainedModel, vocab_len: int, new_ids: list[int], old_len: int, old_rows: int, noise_std: float
) -> None:
    """Resize to ``ceil(vocab_len / 64)·64`` rows if needed and set new token rows and appended rows to the mean.

    The mean is over the rows of the tokens the tokenizer had before (``ids < old_len``), so untrained padding rows
    that some checkpoints carry do not dilute it.
    """
    base = min(old_len, old_rows)
    if vocab_len > old_rows:
        target = math.ceil(vocab_len / EMBEDDING_MULTIPLE) * EMBEDDING_MULTIPLE
        model.resize_token_embeddings(target, mean_resizing=False)
    fresh = sorted(set(new_ids) | set(range(old_rows, _rows(model))))
    index = torch.tensor(fresh, dtype=torch.long)
    inputs = model.get_input_embeddings()
    outputs = model.get_output_embeddings()
    with torch.no_grad():
        matrices = [inputs.weight]
        if outputs is not None and outputs.weight is not inputs.weight and outputs.weight.shape[0] == _rows(model):
            matrices.append(outputs.weight)
        for weight in matrices:
            mean = weight[:base].float().mean(dim=0)
            init = mean.expand(len(fresh), -1).clone()
            if noise_std > 0:
                init += torch.randn_like(init) * noise_std
            weight[index.to(weight.device)] = init.to(weight.dtype)
        bias = getattr(outputs, "bias", None) if outputs is not None else None
        if isinstance(bias, torch.Tensor) and bias.shape[0] == _rows(model):
            bias[index.to(bias.device)] = bias[:base].float().mean().to(bias.dtype)


#: Tokenizers without a stated limit report a huge ``model_max_length``; treat anything above this as "none".
_NO_LIMIT = 1_000_000


def resolve_max_length(
    requested: int | None, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str
) -> int:
    """``requested`` (or, when null, the backbone's own limit), checked against the position embeddings and the
    tokenizer's ``model_max_length``; a clear error when it exceeds them or no limit is known."""
    limits = [getattr(model.config, "max_position_embeddings", None)]
    model_max = getattr(tokenizer, "model_max_length", None)
    limits.append(model_max if model_max is not None and model_max < _NO_LIMIT else None)
    known = [int(x) for x in limits if x is not None]
    max_length = requested if requested is not None else (min(known) if known else None)
    if max_length is None:
        raise LookaheadError(f"backbone {name!r} does not state its length limit; set model.max_length")
    if known and max_length > min(known):
        raise LookaheadError(f"model.max_length = {max_length} exceeds the backbone's limit of {min(known)} tokens")
    return int(max_length)
