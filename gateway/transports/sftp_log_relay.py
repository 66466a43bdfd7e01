"""The serve process's relay of the drop-box process's log records, rate-limited
(decision 0023).

The drop-box process logs what partners make it do (a refused request, a connection
closed by a limit), so a misbehaving client can make it log a flood, and the serve
process would write every line into the one log. Each (logger, level) has a token
bucket: :data:`BURST` lines at once, then :data:`RATE` a second. Lines beyond that
are dropped and counted (``gateway_sftp_log_lines_suppressed_total{level}``); the
caller asks :meth:`LogRelay.summarize` for one line per bucket saying how many went
(gateway.transports.sftp_process does every :data:`SUMMARY_SECONDS` while lines are
dropped). The buckets are few: a record's logger is one of the child's own
(checked by the caller), and past :data:`MAX_BUCKETS` further names share one.

No I/O but logging; the clock is injected (tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BURST = 100  # lines of one logger and level relayed at once
RATE = 10.0  # then this many a second
SUMMARY_SECONDS = 10.0  # while lines are dropped, one summary per bucket this often
MAX_BUCKETS = 64  # (logger, level) pairs with a bucket of their own
SHARED = "gateway.transports.sftp_child"  # the logger of names beyond MAX_BUCKETS
_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    dropped: int = 0


class LogRelay:
    """``admit(name, level)`` says whether a record may be logged (and under which
    logger); ``summarize()`` logs how many were dropped since the last summary."""

    def __init__(self, metrics: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics, self.clock = metrics, clock  # gateway.metrics.Metrics (sftp_log_suppressed)
        self._buckets: dict[tuple[str, int], _Bucket] = {}

    def admit(self, name: str, level: int) -> str | None:
        """The logger to log a record of ``name`` under (``name``, or :data:`SHARED`
        past :data:`MAX_BUCKETS`); None when its bucket is empty: dropped, counted."""
        key = (name, _standard(level))
        if key not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            key = (SHARED, key[1])
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(BURST), now)
        bucket.tokens = min(float(BURST), bucket.tokens + (now - bucket.at) * RATE)
        bucket.at = now
        if bucket.tokens < 1.0:
            bucket.dropped += 1
            if self.metrics is not None:
                self.metrics.sftp_log_suppressed[logging.getLevelName(key[1]).lower()] += 1
            return None
        bucket.tokens -= 1.0
        return key[0]

    def dropped(self) -> int:
        """Lines dropped and not yet summarized."""
        return sum(b.dropped for b in self._buckets.values())

    def summarize(self) -> None:
        """One line per bucket that dropped lines since the last call: under that
        logger, at WARNING (DEBUG for debug lines: a flood of them is only logged
        where debugging was asked for)."""
        for (name, level), bucket in self._buckets.items():
            if bucket.dropped:
                logging.getLogger(name).log(
                    logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING),
                    "sftp: %d %s line(s) of the drop-box process suppressed (more than %d at once "
                    "or %g a second of one logger and level)",
                    bucket.dropped, logging.getLevelName(level), BURST, RATE,
                )  # fmt: skip
                bucket.dropped = 0


def _standard(level: int) -> int:
    """The standard level at or below ``level`` (DEBUG to CRITICAL): few buckets, few labels."""
    return max((n for n in _LEVELS if n <= level), default=logging.DEBUG)
