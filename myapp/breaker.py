"""A circuit breaker, one per backing service in each process: what keeps a stalled
PostgreSQL (myapp/stalls.py) or Redis (myapp/redis_url.py) from holding every
request of the process in a wait that ends in a 503 anyway.

A wait on the service that passes its bound counts as a failure, and
`trips_after` failures in a row (no answer between them) trip it: for
`open_seconds` every call is refused at once (the exception `refusal` makes,
which the app answers 503 with Retry-After). Then one thread tries the service
again, for up to `trial_seconds`, while the others are still refused: a service
still stalled holds one thread, not all of them. Any answer from the service
closes it.
"""

import threading
import time
from typing import Callable


class Breaker:
    def __init__(
        self,
        refusal: Callable[[], Exception],
        open_seconds: float,
        trial_seconds: float,
        trips_after: int = 1,
    ):
        self.refusal = refusal
        self.open_seconds = open_seconds
        self.trial_seconds = trial_seconds
        self.trips_after = trips_after
        self.failures = 0  # in a row
        self.open_until = 0.0  # 0 while the service answers
        self.trial: tuple[int, float] | None = None  # (thread, until) trying again
        self._lock = threading.Lock()

    def failed(self) -> None:
        """A wait passed its bound."""
        with self._lock:
            self.failures += 1
            if self.failures >= self.trips_after:
                self.open_until = time.monotonic() + self.open_seconds
                self.trial = None

    def answered(self) -> None:
        """The service answered: it is back."""
        if self.open_until or self.failures:
            with self._lock:
                self.failures = 0
                self.open_until = 0.0
                self.trial = None

    def refuse_while_open(self) -> None:
        """Raise the refusal while calls are refused, without taking the trial that
        `check` gives a thread once the open time is over."""
        if self.open_until > time.monotonic():
            raise self.refusal()

    def check(self) -> None:
        """Raise the refusal unless this thread may call the service now."""
        if not self.open_until:
            return
        now, me = time.monotonic(), threading.get_ident()
        with self._lock:
            if now >= self.open_until and (
                self.trial is None or self.trial[0] == me or self.trial[1] <= now
            ):
                if self.trial is None or self.trial[0] != me:
                    self.trial = (me, now + self.trial_seconds)
                return
        raise self.refusal()
