"""`lookahead data score`: fill each row's ``scores`` with a judge, a reward model, math or code checks.

Scores merge into a row's existing ones: a candidate that already has a score is skipped unless ``--overwrite``.
A score that could not be produced is written as null, with the reason in ``score_errors[candidate]``; evidence
(judge verdict, failing test output, parsed answers) goes to ``score_details`` unless ``--no-details``. The whole
dataset is checked before any scoring, and the output is written once, atomically, at the end. Every score is
journaled beside the output as it arrives (``OUT.scores.partial.jsonl``), so an interrupted run keeps what it scored
and a rerun of the same command scores only what is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.extras import require_extra

Target = tuple[int, str]  # (row index, candidate)


def _scorer_modules(spec: str) -> tuple[str, ...]:
    """The modules of the collect extra a scorer spec needs: openai for a judge, math_verify for ``math`` (and for
    ``auto``, which scores math rows with it); reward and code scorers need neither."""
    kind, _, rest = spec.strip().partition(":")
    judge = kind == "judge" or (kind == "auto" and rest.startswith("judge"))
    return (("openai",) if judge else ()) + (("math_verify",) if kind in ("math", "auto") else ())


def cmd_data_score(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lightning_lookahead.scorers import parse_scorer
    from lightning_lookahead.scorers.base import ScoreItem, ScoreResult, failed
    from lightning_lookahead.scorers.dataset_io import read_rows, write_rows
    from lightning_lookahead.scorers.journal import ScoreJournal, score_journal_path

    require_extra("collect", f"--scorer {args.scorer}", _scorer_modules(args.scorer))
    if args.out is None and not args.in_place:
        raise LookaheadError("say where to write the scored rows: --out FILE, or --in-place to overwrite --dataset")
    out: Path = args.dataset if args.in_place else args.out
    rows = read_rows(args.dataset)
    wanted = _wanted_candidates(args.candidates, rows)
    scorer = parse_scorer(args.scorer, _options(args))

    plan: list[tuple[Target, ScoreItem | ScoreResult]] = []  # in row and candidate order: the order of the merge
    kept = 0
    for r, row in enumerate(rows):
        for name in wanted or list(row["responses"]):
            if name not in row["responses"]:
                continue
            if not args.overwrite and (row.get("scores") or {}).get(name) is not None:
                kept += 1
                continue
            response = row["responses"][name]
            if response is None:  # decided without the scorer
                plan.append(((r, name), failed("no response for this candidate (null)")))
                continue
            domain = row.get("benchmark") or row.get("domain")
            item = ScoreItem(
                str(row["id"]), name, row["prompt"], response, row.get("reference"), domain and domain.lower()
            )
            plan.append(((r, name), item))

    out.parent.mkdir(parents=True, exist_ok=True)
    journal = ScoreJournal.open(score_journal_path(out), scorer.name, args.dataset)
    try:
        ready: dict[Target, ScoreResult] = {}
        items: list[ScoreItem] = []
        targets: list[Target] = []
        for target, entry in plan:
            earlier = journal.earlier(entry) if isinstance(entry, ScoreItem) else entry
            if earlier is not None:
                ready[target] = earlier
            else:
                items.append(entry)
                targets.append(target)
        resumed = sum(isinstance(entry, ScoreItem) for _, entry in plan) - len(items)
        with tqdm(total=len(items), desc=f"scoring ({scorer.name})", unit="response", disable=args.no_progress) as bar:
            if resumed:
                bar.write(f"resuming: {resumed} scores from {journal.path}")
            results = (
                scorer.score(items, bar.update, on_result=lambda i, result: journal.append(items[i], result))
                if items
                else []
            )
        if len(results) != len(items):
            raise RuntimeError(f"scorer {scorer.name} returned {len(results)} results for {len(items)} items")
        ready.update(zip(targets, results, strict=True))
        done = {target: ready[target] for target, _ in plan}
        for (r, name), result in done.items():
            _merge(rows[r], name, result, details=not args.no_details)
        write_rows(out, rows)
        journal.remove()
    except BaseException as exc:
        if not journal.holds_results:  # nothing scored: leave no journal behind
            journal.remove()
        elif isinstance(exc, KeyboardInterrupt):
            print(f"scores so far are kept in {journal.path}; rerun the same command to resume", file=sys.stderr)
        raise
    finally:
        journal.close()
    print(_summary(scorer.name, rows, done, kept, out, resumed))
    return 0


def _wanted_candidates(spec: str | None, rows: list[dict[str, Any]]) -> list[str] | None:
    """The ``--candidates`` list (None: every response of each row); a name no row has is an error."""
    if not spec:
        return None
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    present = list(dict.fromkeys(name for row in rows for name in row["responses"]))
    for name in wanted:
        if name not in present:
            raise unknown_name("candidate (no row has a response from it)", name, present)
    return wanted


def _merge(row: dict[str, Any], name: str, result: Any, *, details: bool) -> None:
    """Write one result into its row; stale errors/details of a rescored candidate are dropped."""
    row.setdefault("scores", {})
    if row["scores"] is None:
        row["scores"] = {}
    row["scores"][name] = result.value
    _set_or_drop(row, "score_errors", name, result.error)
    _set_or_drop(row, "score_details", name, result.detail if details else None)


def _set_or_drop(row: dict[str, Any], field: str, name: str, text: str | None) -> None:
    entries = row.get(field) or {}
    if text is not None:
        entries[name] = text
    else:
        entries.pop(name, None)
    if entries:
        row[field] = entries
    else:
        row.pop(field, None)


def _summary(
    scorer: str, rows: list[dict[str, Any]], results: dict[Target, Any], kept: int, out: Path, resumed: int
) -> str:
    values: dict[str, list[float]] = {}
    nulls = 0
    for (_, name), result in results.items():
        if result.value is None:
            nulls += 1
        else:
            values.setdefault(name, []).append(result.value)
    means = ", ".join(f"{name} {sum(v) / len(v):.3g}" for name, v in values.items())
    again = f"; {resumed} of them from the journal of an interrupted run" if resumed else ""
    lines = [
        f"{scorer}: scored {len(results)} responses in {len(rows)} rows ({nulls} null, reasons in score_errors; "
        f"{kept} already scored, kept{again})",
    ]
    if means:
        lines.append(f"mean score: {means}")
    lines.append(f"wrote {out}")
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> Any:
    """The scorer settings: every ``ScorerOptions`` field is a command-line option of the same name."""
    from dataclasses import fields

    from lightning_lookahead.scorers import ScorerOptions

    return ScorerOptions(**{f.name: getattr(args, f.name) for f in fields(ScorerOptions)})


def add_score_parser(data_subparsers: argparse._SubParsersAction) -> None:
    score = data_subparsers.add_parser(
        "score", help="fill each row's scores with an LLM judge, a reward model, or math/code checks"
    )
    score.add_argument("--dataset", type=Path, required=True, metavar="FILE", help="JSON lines, one prompt per row")
    score.add_argument(
        "--scorer",
        required=True,
        metavar="SPEC",
        help="judge:FILE[:NAME] | judge (with --judge-base-url) | reward:MODEL | math | code | auto[:SPEC]",
    )
    where = score.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the scored rows here")
    where.add_argument("--in-place", action="store_true", help="overwrite --dataset (atomically)")
    score.add_argument("--candidates", default=None, help="comma-separated candidates to score (default: all)")
    score.add_argument("--overwrite", action="store_true", help="rescore candidates that already have a score")
    score.add_argument("--no-details", action="store_true", help="do not record score_details")
    score.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge = score.add_argument_group("judge")
    judge.add_argument("--judge-base-url", default=None, metavar="URL", help="OpenAI-compatible base URL (…/v1)")
    judge.add_argument("--judge-model", default=None, help="the endpoint's model name")
    judge.add_argument("--judge-api-key-env", default=None, metavar="NAME", help="environment variable with the key")
    judge.add_argument(
        "--judge-timeout", type=float, default=60.0, help="seconds per request unless the YAML sets one (default 60)"
    )
    judge.add_argument("--judge-concurrency", type=int, default=8, help="requests in flight (default 8)")
    judge.add_argument("--judge-retries", type=int, default=2, help="retries per failed request (default 2)")
    reward = score.add_argument_group("reward model")
    reward.add_argument("--batch-size", type=int, default=8, help="responses per forward pass (default 8)")
    reward.add_argument("--device", default="cpu", help="torch device (default cpu)")
    reward.add_argument("--max-length", type=int, default=None, help="tokens kept per input (default: the model's)")
    code = score.add_argument_group("code and math")
    code.add_argument("--code-timeout", type=float, default=10.0, help="seconds per test run (default 10)")
    code.add_argument("--code-memory-mb", type=int, default=1024, help="address-space limit per run (default 1024)")
    code.add_argument("--workers", type=int, default=4, help="test processes at once (default 4)")
    code.add_argument("--math-timeout", type=int, default=5, help="seconds per math parse/compare (default 5)")
    score.set_defaults(func=cmd_data_score)
