"""The cost–quality plot: each swept router's Pareto frontier as a step line, baselines as labelled points."""

from __future__ import annotations

from pathlib import Path

from lightning_lookahead.costs.sweep import COST_UNIT, TARGET_SHARE, SweepResult


def plot_cost_quality(result: SweepResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write a PNG and return its path.

    Drawn on a bare ``Figure`` with the Agg canvas rather than through pyplot, so it needs no display and leaves the
    caller's pyplot backend and open figures alone.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8.0, 5.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = iter(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    n_fixed = 0
    for curve in result.curves:
        if curve.role == "fixed":
            p = curve.argmax
            ax.scatter(p.cost, p.quality, marker="s", color="grey", zorder=3)
            above = n_fixed % 2 == 0  # alternate label sides so neighbours of similar quality do not overlap
            ax.annotate(curve.router.removeprefix("fixed:"), (p.cost, p.quality), fontsize=7, color="dimgrey",
                        xytext=(4, 4 if above else -10), textcoords="offset points")  # fmt: skip
            n_fixed += 1
            continue
        if curve.role == "random":
            p = curve.argmax
            ax.scatter(p.cost, p.quality, marker="x", color="black", zorder=3, label=curve.router)
            continue
        colour = "black" if curve.role == "oracle" else next(colours)
        xs = [p.cost for p in curve.frontier]
        ys = [p.quality for p in curve.frontier]
        auc = f", AUC {curve.auc:.2f}" if curve.auc is not None else ""
        ax.step(xs, ys, where="post", color=colour, lw=1.8, label=f"{curve.router} (frontier{auc})")
        ax.scatter(xs, ys, s=8, color=colour)
        p = curve.argmax
        ax.scatter(p.cost, p.quality, marker="*", s=120, color=colour, edgecolor="white", zorder=4)
    low, high = result.cost_range
    ax.axhline(result.target_quality, ls=":", color="grey", lw=1)
    ax.annotate(f"{100 * TARGET_SHARE:.0f}% of best single model", (low, result.target_quality), fontsize=7,
                xytext=(0, 3), textcoords="offset points", color="grey")  # fmt: skip
    ax.axvspan(low, high, color="grey", alpha=0.06, lw=0)
    ax.set_xlabel(f"mean cost ({COST_UNIT})")
    ax.set_ylabel(f"quality: mean headline metric over {len(result.benchmarks)} benchmark(s)")
    ax.set_title(
        title or "Cost–quality: ★ = argmax (quality-only) decision, shaded = fixed-model cost range", fontsize=9
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
