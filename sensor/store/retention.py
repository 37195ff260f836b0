"""The `retention` setting applied by a long-running sensor: a prune at start, then one a day."""

from __future__ import annotations

from loguru import logger

from sensor.errors import StoreError
from sensor.store.db import FindingStore
from sensor.store.prune import PruneResult

DAY = 86_400.0
RETRY = 3_600.0  # after a failed prune (the store busy or unreachable), try again this much later


class RetentionTimer:
    """Prunes `store` of rows older than `keep` seconds when `tick` finds a prune due (at first, then every `every`).

    The caller ticks it between records, on the thread that writes the store: a prune never runs
    beside that thread's own inserts (SQLite would make one of them wait, or fail after its busy timeout).
    """

    def __init__(self, store: FindingStore, keep: float, every: float = DAY) -> None:
        if not keep > 0 or not every > 0:
            raise ValueError(f"retention {keep} s every {every} s: both must be positive")
        self.store = store
        self.keep = keep
        self.every = every
        self.due = float("-inf")  # the first tick prunes

    def tick(self, now: float) -> PruneResult | None:
        """Prune if one is due at `now` (epoch seconds); the result, or None when none was due or it failed."""
        if now < self.due:
            return None
        try:
            result = self.store.prune(now - self.keep)
            # PostgreSQL's VACUUM runs beside the sensor's writes; SQLite's rewrites the whole file and
            # would stall capture, and the freed pages are reused by new rows anyway.
            self.store.reclaim_space(full=False)
        except StoreError as e:
            self.due = now + min(RETRY, self.every)
            logger.error("retention: prune failed, retrying in {:.0f} s: {}", self.due - now, e)
            return None
        self.due = now + self.every
        logger.info("{}", result.summary())
        return result


__all__ = ["DAY", "RetentionTimer"]
