"""`lookahead data collect`: every prompt to every candidate's endpoint, written as a dataset file (resumable).

Exit status 3 (not 0) says the run finished with (prompt, candidate) pairs still unanswered after every attempt, so
a script can tell an incomplete collection from a complete one; see :data:`EPILOG`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.extras import require_extra

#: Finished, but some (prompt, candidate) pairs have no response after every attempt; the output is written.
EXIT_UNANSWERED = 3

EPILOG = f"""\
exit status:
  0    every (prompt, candidate) pair answered; the output is complete
  2    user error (bad prompts, endpoints or options): one error line, nothing sent, nothing written
  {EXIT_UNANSWERED}    finished with unanswered pairs: the output is written, their rows without those responses
       (`data check` and training drop and count such rows); the count per candidate is printed. Rerun the same
       command to ask only the unanswered pairs again (the answers in --out count as done)
  130  interrupted: every answer received so far is kept in OUT.partial.jsonl; rerun the same command to resume
"""


def cmd_data_collect(args: argparse.Namespace) -> int:
    require_extra("collect", "lookahead data collect", ("openai",))
    from lightning_lookahead.backends import load_backends
    from lightning_lookahead.collect import (
        CollectSettings,
        RetryPolicy,
        Sampling,
        collect,
        journal_path,
        listed_candidates,
        load_prompts,
    )

    _check_numbers(args)
    if args.out.resolve() == args.prompts.resolve():
        raise LookaheadError(f"--out {args.out} is the prompts file; choose another output file")
    prompts = load_prompts(args.prompts)
    names = _names(args.candidates) or listed_candidates(args.endpoints)
    backends = load_backends(args.endpoints, names)
    if args.timeout is not None:
        backends = {name: replace(b, timeout=args.timeout) for name, b in backends.items()}
    settings = CollectSettings(
        concurrency=args.concurrency,
        sampling=Sampling(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens),
        retry=RetryPolicy(attempts=args.retries, backoff_s=args.backoff),
        progress=not args.no_progress,
    )
    try:
        report = collect(prompts, backends, args.out, settings)
    except KeyboardInterrupt:
        journal = journal_path(args.out)
        print(f"answers so far are kept in {journal}; rerun the same command to resume", file=sys.stderr)
        raise
    for line in report.warnings():
        print(line, file=sys.stderr)
    print(report.summary())
    unanswered = report.unanswered_message(settings.retry.attempts)
    if unanswered is not None:
        print(unanswered, file=sys.stderr)
        return EXIT_UNANSWERED
    return 0


def _names(spec: str | None) -> list[str]:
    names = [s.strip() for s in (spec or "").split(",") if s.strip()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LookaheadError(f"--candidates names {', '.join(repeated)} more than once")
    return names


def _check_numbers(args: argparse.Namespace) -> None:
    problems = [
        (args.concurrency < 1, "--concurrency must be at least 1"),
        (args.retries < 1, "--retries must be at least 1 (attempts per request, the first included)"),
        (args.max_tokens < 1, "--max-tokens must be at least 1"),
        (args.temperature < 0, "--temperature must not be negative"),
        (not 0 < args.top_p <= 1, "--top-p must be in (0, 1]"),
        (args.timeout is not None and args.timeout <= 0, "--timeout must be positive"),
        (args.backoff < 0, "--backoff must not be negative"),
    ]
    for bad, message in problems:
        if bad:
            raise LookaheadError(message)


def add_collect_parser(data_subparsers: argparse._SubParsersAction) -> None:
    col = data_subparsers.add_parser(
        "collect",
        help="send every prompt to every candidate's OpenAI-compatible endpoint and write the dataset",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    col.add_argument(
        "--prompts", type=Path, required=True, metavar="FILE", help="JSON lines with `prompt` (or .txt, one per line)"
    )
    col.add_argument(
        "--endpoints", type=Path, required=True, metavar="FILE", help="backends YAML, as for `lookahead serve`"
    )
    col.add_argument("--out", type=Path, required=True, metavar="FILE", help="dataset file to write (JSON lines)")
    col.add_argument(
        "--candidates",
        default=None,
        metavar="A,B,..",
        help="comma-separated candidates (default: every backend in the file, in order)",
    )
    col.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="requests in flight per endpoint (default 8)"
    )
    col.add_argument(
        "--temperature", type=float, default=0.8, metavar="T", help="sampling temperature (default 0.8, the paper's)"
    )
    col.add_argument(
        "--top-p", type=float, default=0.95, metavar="P", help="nucleus sampling top-p (default 0.95, the paper's)"
    )
    col.add_argument(
        "--max-tokens", type=int, default=1024, metavar="N", help="most tokens per response (default 1024)"
    )
    col.add_argument(
        "--retries", type=int, default=5, metavar="N", help="attempts per request, the first included (default 5)"
    )
    col.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds per attempt at every endpoint (default: the YAML's, or 60)",
    )
    col.add_argument(
        "--backoff", type=float, default=1.0, metavar="S", help="mean seconds before the first retry; doubles after"
    )
    col.add_argument("--no-progress", action="store_true", help="no progress bar")
    col.set_defaults(func=cmd_data_collect)
