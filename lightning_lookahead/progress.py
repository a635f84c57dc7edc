"""Progress for logs: plain lines at a steady interval where a progress bar would draw for nobody.

A bar redraws one terminal line; written to a file (`make train > log`, CI, nohup, `| tee`) it shows nothing useful
until the end. So every long command looks at the stream its progress goes to: a terminal gets the bar, anything
else gets one flushed line every ``$LOOKAHEAD_PROGRESS_INTERVAL`` seconds (default 30) plus a first and a last one.

- training (``lookahead train``, stdout): :func:`training_progress` → the callback the recipe adds in place of
  Lightning's bar: step / total optimiser steps, epoch, train loss (mean since the previous line), the last
  validation reward and ``val/avg_mu_n``, elapsed, ETA; also a line at every validation;
- counted work (``data fetch``'s bytes, ``route --file``'s prompts, stderr): :func:`counter`, a tqdm bar on a
  terminal and a :class:`CountLines` otherwise.

Nothing here imports Lightning at module level (``route`` stays light); the callback's class is built on first use.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import Any, TextIO

from lightning_lookahead.errors import LookaheadError

INTERVAL_ENV = "LOOKAHEAD_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0
#: The validation metrics a training line shows once they have been logged, and their format.
VALIDATION_KEYS = (("val/reward", "{:.4f}"), ("val/avg_mu_n", "{:.1f}"))


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a closed, replaced or file-less stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress_interval() -> float:
    """Seconds between two progress lines: ``$LOOKAHEAD_PROGRESS_INTERVAL``, else 30."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise LookaheadError(f"${INTERVAL_ENV} must be a number of seconds ≥ 0, got {raw!r}")
    return value


def hms(seconds: float) -> str:
    """``3725.4`` → ``1:02:05``."""
    whole = max(round(seconds), 0)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def eta(done: float, total: float, elapsed: float) -> str:
    """The time left at the rate so far (``?`` before any progress or without a total)."""
    if done <= 0 or elapsed <= 0 or not math.isfinite(total):
        return "?"
    return hms((total - done) * elapsed / done)


class CountLines:
    """A tqdm stand-in for logs: ``update(n)`` counts, and a line is printed at the start (``[label] total unit to
    go (note)``), every ``interval`` seconds (``[label] done of total unit (pct) · rate · elapsed · ETA``) and at
    ``close()`` (``[label] done: ...``).

    ``scale`` divides the counts for display (bytes shown as MB: ``scale=1e6, unit="MB"``).
    """

    def __init__(
        self,
        total: float,
        *,
        label: str,
        unit: str,
        stream: TextIO | None = None,
        interval: float | None = None,
        scale: float = 1.0,
        disable: bool = False,
        note: str = "",
    ) -> None:
        self.total = total
        self.n = 0
        self.label = label
        self.unit = unit
        self.stream = stream
        self.interval = progress_interval() if interval is None else interval
        self.scale = scale
        self.disable = disable
        self._start = self._last = time.monotonic()
        self._closed = False
        if not disable:
            self._say(f"[{label}] {self._amount(total)} {unit} to go" + (f" ({note})" if note else ""))

    def __enter__(self) -> CountLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self._last >= self.interval:
            self._last = now
            self._say(self.line(now))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.disable:
            self._say(self.line(time.monotonic(), finished=True))

    def line(self, now: float, *, finished: bool = False) -> str:
        elapsed = now - self._start
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = self.n / self.scale / elapsed if elapsed > 0 else 0.0
        head = f"[{self.label}] {'done: ' if finished else ''}{self._amount(self.n)} of {self._amount(self.total)}"
        parts = [f"{head} {self.unit}{pct}", f"{rate:.1f} {self.unit}/s", f"elapsed {hms(elapsed)}"]
        if not finished:
            parts.append(f"ETA {eta(self.n, self.total, elapsed)}")
        return " · ".join(parts)

    def _amount(self, n: float) -> str:
        return f"{n / self.scale:.1f}" if self.scale != 1 else f"{n:.0f}"

    def _say(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)


def counter(
    total: float,
    *,
    desc: str,
    label: str,
    unit: str,
    stream: TextIO | None = None,
    disable: bool = False,
    scale: float = 1.0,
    line_unit: str | None = None,
    note: str = "",
    **bar_options: Any,
) -> Any:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, else :class:`CountLines` with the same
    ``update`` / ``close`` / ``n`` (``line_unit`` and ``scale`` say how the lines show the counts, ``note`` what
    the first line adds)."""
    stream = stream or sys.stderr
    if is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=disable, **bar_options)
    unit = line_unit or unit
    return CountLines(total, label=label, unit=unit, stream=stream, scale=scale, disable=disable, note=note)


class TrainingProgress:
    """The hooks of the training progress callback (the Lightning class adds ``Callback`` to them).

    Rank 0 prints, to ``stream`` (default: stdout at the time of printing), one line when training starts, one
    every ``interval`` seconds (checked after each training batch), one after each validation and one at the end.
    """

    def __init__(self, interval: float, stream: TextIO | None = None) -> None:
        self.interval = interval
        self.stream = stream
        self._start: float | None = None
        self._last = 0.0
        self._first_step = 0
        self._total: float = math.inf
        self._loss_sum: Any = 0.0
        self._loss_count = 0
        self._loss: float | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        self._start = self._last = time.monotonic()
        self._first_step = trainer.global_step
        total = trainer.estimated_stepping_batches
        self._total = float(total) if total is not None else math.inf
        event = "resumed at " if self._first_step else "start: "
        every = f"a line every {self.interval:g} s and after each validation"
        self._say(f"[train] {event}{self._steps(trainer)} · {self._epoch(trainer)} · {every}")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._start is None:
            return
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:  # summed where it lives (no device sync per batch); read when a line is printed
            self._loss_sum = self._loss_sum + (loss.detach() if hasattr(loss, "detach") else float(loss))
            self._loss_count += 1
        if time.monotonic() - self._last >= self.interval:
            self._print(trainer)

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """A long validation reports too: ``[train] validating at step 48/192 · batch 12/41 · elapsed 0:05:12``."""
        if self._start is None or trainer.sanity_checking or time.monotonic() - self._last < self.interval:
            return
        self._last = time.monotonic()
        batches = sum(trainer.num_val_batches) if isinstance(trainer.num_val_batches, list) else "?"
        elapsed = hms(self._last - self._start)
        self._say(f"[train] validating at {self._steps(trainer)} · batch {batch_idx + 1}/{batches} · elapsed {elapsed}")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self._start is not None and not trainer.sanity_checking:
            self._print(trainer, "validation at ")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._start is not None:
            self._print(trainer, "finished: ")
            self._start = None

    def line(self, trainer: Any, event: str = "") -> str:
        """``[train] step 40/192 (21%) · epoch 1/4 · loss 0.6931 · val/reward 0.8123 · val/avg_mu_n 41.2 ·
        elapsed 0:05:12 · ETA 0:19:46``."""
        now = time.monotonic()
        elapsed = now - (self._start if self._start is not None else now)
        if self._loss_count:
            self._loss = float(self._loss_sum) / self._loss_count
            self._loss_sum, self._loss_count = 0.0, 0
        parts = [f"[train] {event}{self._steps(trainer)}", self._epoch(trainer)]
        if self._loss is not None:
            parts.append(f"loss {self._loss:.4f}")
        metrics = trainer.callback_metrics
        parts += [f"{key} {fmt.format(float(metrics[key]))}" for key, fmt in VALIDATION_KEYS if key in metrics]
        parts.append(f"elapsed {hms(elapsed)}")
        if not event.startswith("finished"):
            done = trainer.global_step - self._first_step  # this attempt's steps: a resumed run has its own rate
            parts.append(f"ETA {eta(done, self._total - self._first_step, elapsed)}")
        return " · ".join(parts)

    def _steps(self, trainer: Any) -> str:
        step = trainer.global_step
        if not math.isfinite(self._total) or self._total <= 0:
            return f"step {step}"
        return f"step {step}/{self._total:.0f} ({100 * step / self._total:.0f}%)"

    @staticmethod
    def _epoch(trainer: Any) -> str:
        epochs = trainer.max_epochs
        current = min(trainer.current_epoch + 1, epochs) if epochs and epochs > 0 else trainer.current_epoch + 1
        return f"epoch {current}/{epochs}" if epochs and epochs > 0 else f"epoch {current}"

    def _print(self, trainer: Any, event: str = "") -> None:
        self._last = time.monotonic()
        self._say(self.line(trainer, event))

    def _say(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)


@functools.cache
def _callback_class() -> type:
    """``TrainingProgress`` as a Lightning ``Callback`` (Lightning imported here, not when this module loads)."""
    from lightning.pytorch.callbacks import Callback

    return type("TrainingProgressCallback", (TrainingProgress, Callback), {"__module__": __name__})


def __getattr__(name: str) -> Any:
    """``TrainingProgressCallback`` is built on first access (importing it, or pickle finding it, imports Lightning)."""
    if name == "TrainingProgressCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def training_progress(stream: TextIO | None = None, interval: float | None = None) -> Any:
    """The progress-line callback when ``stream`` (default stdout) is not a terminal; ``None`` on a terminal, where
    Lightning's bar shows. ``interval`` defaults to ``$LOOKAHEAD_PROGRESS_INTERVAL`` (30 s)."""
    if is_terminal(stream or sys.stdout):
        return None
    return _callback_class()(progress_interval() if interval is None else interval, stream)
