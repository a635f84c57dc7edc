"""When to try a request again, and how long to wait first.

Rate limits (429), server errors (5xx), dropped connections and timeouts are transient: they are retried with
exponential back-off and jitter, so many workers hitting one overloaded endpoint do not come back in lock-step.
A ``Retry-After`` from the server wins over the back-off. Other 4xx answers mean the request itself is wrong;
trying again would only repeat the failure, so they fail at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: The longest ``Retry-After`` obeyed, so one odd header cannot park a worker for hours.
MAX_RETRY_AFTER_S = 600.0


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries per request; the n-th wait is about ``backoff_s · 2^(n-1)``, capped."""

    attempts: int = 5
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        jitter = random.uniform(0.5, 1.5)
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S) + jitter * self.backoff_s / 2
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s) * jitter


def retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent/bad."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None
