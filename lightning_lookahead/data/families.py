"""Which training sets and test benchmarks make up each benchmark family (paper §4-§5)."""

from __future__ import annotations

from collections.abc import Iterable

FAMILY_TRAIN_SETS: dict[str, tuple[str, ...]] = {
    "chat": ("UltraFeedback",),
    "math": ("OpenMathInstruct2_filtered2",),
    "code": ("SelfOSSInstructSC2_filtered2",),
    "all": ("UltraFeedback", "OpenMathInstruct2_filtered2", "SelfOSSInstructSC2_filtered2"),
}

FAMILY_BENCHMARKS: dict[str, tuple[str, ...]] = {
    "chat": ("AlpacaEval", "ArenaHard", "MT-Bench"),
    "math": ("GSM8k", "MATH"),
    "code": ("HumanEval", "MBPP"),
    "all": ("AlpacaEval", "ArenaHard", "MT-Bench", "GSM8k", "MATH", "HumanEval", "MBPP"),
}


def blocked_by(missing_paths: Iterable[str]) -> list[str]:
    """Human-readable list of what the missing data files make impossible, for fetch reports."""
    missing = list(missing_paths)
    blocked = []
    for family, train_sets in FAMILY_TRAIN_SETS.items():
        if any(p.startswith(f"train/{ds}/") for ds in train_sets for p in missing):
            blocked.append(f"family '{family}' with data.protocol=paper (use data.protocol=kfold instead)")
    for family, benchmarks in FAMILY_BENCHMARKS.items():
        hit = sorted({b for b in benchmarks for p in missing if p.startswith(f"test/{b}/")})
        if hit:
            blocked.append(f"family '{family}' test benchmarks {', '.join(hit)} (any protocol)")
    return blocked
