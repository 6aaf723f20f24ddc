"""Keys seen in the last few minutes (Slack's retried events, replayed requests, a person's vote on an answer)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from bot.records import ClaimStore

log = logging.getLogger(__name__)

# Slack retries an unacknowledged event after about 0 s, 1 min and 5 min: remember ids a bit longer.
SEEN_TTL_SECONDS = 15 * 60
SEEN_MAX_ITEMS = 20_000


class SeenEvents:
    """Keys seen in the last few minutes, so a retried or doubled event is answered once.

    A bounded in-memory map filters what this process has seen; `shared` (the records database's
    claimed_keys table) decides between replicas: the first INSERT of a key wins. When that database
    cannot be reached the event is answered anyway (a duplicate is possible) and one line is logged.
    """

    def __init__(
        self,
        ttl: float = SEEN_TTL_SECONDS,
        max_items: int = SEEN_MAX_ITEMS,
        shared: ClaimStore | None = None,
    ) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self.shared = shared
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def claim(self, *keys: str) -> bool:
        """Remember all keys in this process; True only if none of them was seen here before."""
        now = time.monotonic()
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        fresh = not any(key in self._expiry for key in keys)
        for key in keys:
            self._expiry[key] = now + self.ttl
            self._expiry.move_to_end(key)
        while len(self._expiry) > self.max_items:
            self._expiry.popitem(last=False)
        return fresh

    async def claim_shared(self, *keys: str) -> bool:
        """True unless another replica claimed one of the keys first (or there is no shared store)."""
        if self.shared is None:
            return True
        try:
            return await asyncio.to_thread(self.shared.claim, keys)
        except self.shared.database.errors as exc:
            log.warning(
                "event de-duplication store %s unavailable, answering anyway (a duplicate is possible): %s",
                self.shared.database.describe(),
                self.shared.database.redact((str(exc).splitlines() or [type(exc).__name__])[0])[:200],
            )
            return True
