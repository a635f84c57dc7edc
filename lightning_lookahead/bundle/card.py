"""``README.md`` of a router folder: a Hugging Face model card generated from the run (config, results.json,
calibrations), so a pushed router tells a reader what it was trained on, how well it routed and where not to use it.

Plain text from plain data: no torch, no model; the export writes it into the bundle and the torch ``export/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lightning_lookahead.errors import DataError

#: The Hub ids of the package's backbone aliases (``models.backbone_names.ALIASES``), for ``base_model``.
ALIAS_HUB_IDS = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


def read_json(path: Path) -> dict[str, Any] | None:
    """A run's JSON file as a dict, None when absent; one line naming the file when unreadable."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else None


def read_config(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None or not (run_dir / "config.yaml").is_file():
        return {}
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(run_dir / "config.yaml", f"not valid YAML ({exc})") from None
    return data if isinstance(data, dict) else {}


def base_model(backbone: str | None) -> str | None:
    """The backbone as the Hub names it (an alias mapped, a hub id kept, a local path dropped)."""
    if not backbone:
        return None
    if backbone in ALIAS_HUB_IDS:
        return ALIAS_HUB_IDS[backbone]
    return backbone if backbone.count("/") == 1 and not Path(backbone).exists() else None


def _fmt(x: Any) -> str:
    return "n/a" if not isinstance(x, int | float) or not math.isfinite(x) else f"{x:.1f}"


def reference_rows(test: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The router's own row, then the references results.json has: oracle, best single model, kNN, domain."""
    by_name = {str(r.get("router")): r for r in test if isinstance(r, Mapping)}
    rows = [by_name[name]] if name in by_name else []
    if "oracle" in by_name:
        rows.append(by_name["oracle"])
    singles = [r for n, r in by_name.items() if n.startswith("fixed:")]
    if singles:
        rows.append(
            max(singles, key=lambda r: r.get("avg_mu_n") if isinstance(r.get("avg_mu_n"), int | float) else -1e9)
        )
    rows += [r for n, r in by_name.items() if n.lower().startswith(("knn", "domain")) and r not in rows]
    return rows


def results_table(test: Sequence[Mapping[str, Any]], name: str) -> str:
    """Per-benchmark µo / µn cells (µo is the metric µn is computed from), one row per router."""
    rows = reference_rows(test, name)
    if not rows:
        return ""
    benchmarks: list[str] = []
    for row in rows:
        for bench in row.get("results") or {}:
            if bench not in benchmarks:
                benchmarks.append(bench)
    lines = [
        "| Router | " + " | ".join(benchmarks) + " | Avg µn |",
        "|---|" + "---|" * (len(benchmarks) + 1),
    ]
    for row in rows:
        cells = []
        for bench in benchmarks:
            res = (row.get("results") or {}).get(bench) or {}
            metric = res.get("mu_n_metric")
            cells.append(f"{_fmt(res.get(metric))} / {_fmt(res.get('mu_n'))}" if res else "n/a")
        label = str(row.get("router"))
        if label.startswith("fixed:"):
            label = f"best single ({label[6:]})"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(row.get('avg_mu_n'))} |")
    return "\n".join(lines)


def _calibrations_text(calibrations: Mapping[str, Any] | None) -> str:
    entries = (calibrations or {}).get("calibrations") or {}
    if not entries:
        return "No calibrations are stored; write one with `lookahead calibrate` (docs/inference.md)."
    lines = ["| Name | Rule | Setting | Target |", "|---|---|---|---|"]
    for name, entry in entries.items():
        setting = f"λ = {entry.get('lam')}" if entry.get("rule") == "penalty" else f"τ = {entry.get('tau')}"
        lines.append(f"| {name} | {entry.get('rule')} | {setting} | {json.dumps(entry.get('target') or {})} |")
    return "\n".join(lines)


def model_card(
    *,
    name: str,
    kind: str,
    candidates: Sequence[str],
    backbone: str | None,
    run_dir: Path | None,
    calibrations: Mapping[str, Any] | None = None,
    bundle: Mapping[str, Any] | None = None,
) -> str:
    """The README.md text: YAML front matter, then the training setup, results, decision rules and limits."""
    config = read_config(run_dir)
    results = read_json(run_dir / "results.json") if run_dir is not None else None
    data = config.get("data") or {}
    front: dict[str, Any] = {
        "library_name": "lightning-lookahead",
        "tags": ["llm-router", "lookahead-routing"],
        "license": None,  # left for the owner to choose
    }
    hub_base = base_model(backbone)
    if hub_base:
        front["base_model"] = hub_base
    front["candidates"] = list(candidates)
    protocol = (results or {}).get("protocol") or data.get("protocol")
    family = (results or {}).get("family") or data.get("family")
    parts = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(),
        "---",
        "",
        f"# {name}: a Lookahead router ({kind})",
        "",
        f"Routes each prompt to one of {len(candidates)} candidate LLMs by predicting how well each would answer it "
        f"(Lookahead routing, NeurIPS 2025), trained with lightning-lookahead. "
        f"Backbone: `{backbone}`.",
        "",
        "Candidates (score columns, in order): " + ", ".join(f"`{c}`" for c in candidates) + ".",
        "",
        "## Training data and protocol",
        "",
    ]
    kfold = data.get("kfold") if isinstance(data.get("kfold"), dict) and protocol == "kfold" else None
    if family or protocol:
        fold = f" (fold {kfold.get('fold')} of {kfold.get('k')})" if kfold else ""
        parts.append(f"- benchmark family: `{family}`; protocol: `{protocol}`{fold}")
    if data.get("dataset"):
        parts.append(f"- dataset: `{data['dataset']}`")
    elif config:
        parts.append("- data: the package's benchmark items (every candidate's responses and scores)")
    else:
        parts.append("- not recorded: the router was exported without its run directory (config.yaml)")
    model = config.get("model") or {}
    loss = config.get("loss") or {}
    trainer = config.get("trainer") or {}
    if model or loss:
        parts.append(f"- model settings: `{json.dumps(model, sort_keys=True)}`")
        parts.append(f"- loss: `{json.dumps(loss, sort_keys=True)}`; epochs: {trainer.get('max_epochs', 'n/a')}")
    parts += ["", "## Results", ""]
    test = (results or {}).get("test") or []
    table = results_table(test, name) if isinstance(test, list) else ""
    if table:
        parts += [
            "Held-out test items. Cells: µo / µn per benchmark (µo: the benchmark's own metric; µn = 100 · (µo − "
            "random) / (oracle − random)); Avg µn: the mean over benchmarks.",
            "",
            table,
        ]
    else:
        parts.append("No results.json in the run: no test results to report.")
    if bundle and bundle.get("check"):
        check = bundle["check"]
        parts += [
            "",
            f"This folder's `model.onnx` ({bundle.get('precision', 'fp32')}) agrees with the torch fp32 router on "
            f"{check.get('agreement'):.1f}% of {check.get('prompts')} check prompts (max score difference "
            f"{check.get('max_score_diff'):.1e}).",
        ]
    parts += [
        "",
        "## Decision rules and calibrations",
        "",
        "Scores are per-candidate logits; `argmax` picks the predicted best candidate, `penalty` maximises "
        "p − λ·cost and `threshold` picks the cheapest candidate with p ≥ τ (p: top-choice probability).",
        "",
        _calibrations_text(calibrations),
        "",
        "## Use",
        "",
        "```bash",
        'lookahead route --checkpoint THIS_FOLDER "Write a function that sorts a list"',
        "```",
        "",
        "```python",
        "from lightning_lookahead.inference import TrainedRouter",
        "router = TrainedRouter.from_pretrained('THIS_FOLDER_OR_ORG/NAME')",
        "print(router.route(['Write a function that sorts a list'])[0].model)",
        "```",
        "",
        "## Intended use and limits",
        "",
        "- Picks among exactly the candidates above; a new model needs a retrained router.",
        "- Trained at CPU scale on benchmark items"
        + (" split by k-fold" if protocol == "kfold" else "")
        + "; prompts far from those benchmarks (other languages, long documents, tools) are out of distribution.",
        "- Scores are quality predictions, not guarantees; check the decisions on your own traffic before relying on "
        "them, and re-calibrate cost rules for your prices.",
        "",
    ]
    return "\n".join(parts)
