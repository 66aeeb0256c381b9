"""Slowing down password and API-key guessing: too many failures within a window, then 429.

Sign-in failures are counted per user name (a password guessed from many places) and per client
address (many names tried from one place); a failed API key counts for its address only. Once
a count reaches its limit within the window, further attempts are refused with 429 and a
``Retry-After`` before any password is checked, until the oldest failure of the window expires.
A successful sign-in clears its user name's count; an address's count only expires, so a valid
account of one's own cannot reset the guessing of others'.

API keys are not counted per key id: their secrets are random (``fitnest ui hash-secret
--new-api-key``), so guessing one is hopeless, and locking a key id would only let anyone stop a
backend system. For the same reason a key this process has already proven passes even from an
address that is refused (``ui.security``).

One process only: the counts live in this process's memory, start empty at every restart and are
not shared. A deployment with several UI replicas behind a load balancer would need a shared
store (Redis, the database) for them, or each replica allows the limit on its own.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from workers.settings import Settings

#: Seconds from some fixed point (``time.monotonic``); tests give their own to move time.
Clock = Callable[[], float]

#: Keys remembered at most per count; the least recently failed are forgotten first.
CAPACITY = 10_000


class FailureCount:
    """Failures per key within a sliding window, and how long a key must wait at its limit."""

    def __init__(
        self, limit: int, window: float, clock: Clock = time.monotonic, capacity: int = CAPACITY
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.capacity = capacity
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        failures = self._failures.get(key)
        if failures is None or len(failures) < self.limit:
            return 0.0
        # Only the last `limit` failures are kept: the oldest of them expiring reopens the key.
        return max(0.0, failures[0] + self.window - self.clock())

    def fail(self, key: str) -> None:
        """Count a failure of ``key`` now."""
        failures = self._failures.get(key)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.limit)
        failures.append(self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._failures.pop(key, None)


class SignInThrottle:
    """The counts of the UI: per user name and per client address, over one window."""

    def __init__(
        self, *, user_limit: int, address_limit: int, window: float, clock: Clock = time.monotonic
    ) -> None:
        self.users = FailureCount(user_limit, window, clock)
        self.addresses = FailureCount(address_limit, window, clock)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = time.monotonic) -> SignInThrottle:
        """Limits and window from ``FITNEST_UI_THROTTLE_*``."""
        return cls(
            user_limit=settings.ui_throttle_user_failures,
            address_limit=settings.ui_throttle_address_failures,
            window=settings.ui_throttle_window_seconds,
            clock=clock,
        )

    def retry_after(self, address: str, user: str | None = None) -> int:
        """Whole seconds until an attempt from ``address`` (as ``user``) is heard; 0: now."""
        waits = [self.addresses.retry_after(address)]
        if user is not None:
            waits.append(self.users.retry_after(user))
        return math.ceil(max(waits))

    def failed(self, address: str, user: str | None = None) -> None:
        """Count a wrong password (for ``user``) or a wrong API key, from ``address``."""
        self.addresses.fail(address)
        if user is not None:
            self.users.fail(user)

    def succeeded(self, user: str) -> None:
        """``user`` signed in: their count starts again."""
        self.users.clear(user)


def wait_in_words(seconds: int) -> str:
    """``seconds`` as a person reads it: '40 seconds', '1 minute', '15 minutes'."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
