"""Login throttling and the bound on password hashes computed at once.

`LoginThrottle` counts failed logins per account (e-mail) and per client
address. A key's first `free` failures cost nothing; after that every failure
makes the key wait, twice as long each time (`delay_s`, 2 x, 4 x ...), up to
`lockout_s`, a temporary lockout. A login that arrives while its account or
address waits is refused with 429 and `Retry-After` before any password is
hashed. A successful login clears its account's count (not its address's, so
one address cannot try passwords across many accounts by logging into its
own). State lives in this process; behind several processes each counts
alone, so the bound is per process.

`HashGate` bounds the argon2 hashes computed at once (each takes about 64 MiB
and a core for a few tens of ms): a login that cannot get a slot within
`wait_s` is refused with 429 instead of queueing without limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Count:
    failures: int
    last_t: float


class LoginThrottle:
    """Failed-login counts with growing delays and a temporary lockout."""

    def __init__(
        self,
        *,
        free: int,
        free_per_address: int,
        delay_s: float,
        lockout_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.free = free
        self.free_per_address = free_per_address
        self.delay_s = delay_s
        self.lockout_s = lockout_s
        self.clock = clock
        self.max_keys = max_keys
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str, free: int, now: float) -> float:
        c = self._counts.get(key)
        if c is None or c.failures < free:
            return 0.0
        delay = min(self.lockout_s, self.delay_s * 2 ** (c.failures - free))
        return max(0.0, c.last_t + delay - now)

    def _keys(self, email: str, address: str) -> tuple[tuple[str, int], ...]:
        return (
            ("account:" + email.strip().lower(), self.free),
            ("address:" + address, self.free_per_address),
        )

    def retry_after(self, email: str, address: str) -> int:
        """Seconds to wait before this login may be tried (0: go ahead)."""
        now = self.clock()
        with self._lock:
            wait = max(self._wait(k, free, now) for k, free in self._keys(email, address))
        return math.ceil(wait)

    def failed(self, email: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            for key, _free in self._keys(email, address):
                c = self._counts.get(key)
                if c is None or now - c.last_t > 2 * self.lockout_s:  # long quiet: forgotten
                    self._counts[key] = _Count(1, now)
                else:
                    c.failures, c.last_t = c.failures + 1, now
            if len(self._counts) > self.max_keys:
                self._prune(now)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._counts.pop("account:" + email.strip().lower(), None)

    def _prune(self, now: float) -> None:
        """Forget quiet keys; if still too many, the oldest (a flood of addresses)."""
        for key in [k for k, c in self._counts.items() if now - c.last_t > 2 * self.lockout_s]:
            del self._counts[key]
        while len(self._counts) > self.max_keys:
            del self._counts[next(iter(self._counts))]


class GateBusy(Exception):
    """No password-hash slot came free in time."""


class HashGate:
    """At most `slots` password hashes at once (a context manager)."""

    def __init__(self, slots: int, wait_s: float) -> None:
        self._sem = threading.BoundedSemaphore(slots)
        self.wait_s = wait_s

    def __enter__(self) -> HashGate:
        if not self._sem.acquire(timeout=self.wait_s):
            raise GateBusy(
                f"more than the allowed password checks at once (waited {self.wait_s:g} s)"
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        self._sem.release()
