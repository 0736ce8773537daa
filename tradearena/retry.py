"""One way to retry a call: exponential backoff with jitter (tenacity), the last error
re-raised when retrying stops.

For calls whose failure says nothing about the work (a database or Redis blip):
the caller says which errors are worth retrying, for how long (`stop`, default
never), and what to record before each wait (`on_retry`: a metric, a log line).
Loops that are the product's own behaviour (the Binance reconnect policy with its
circuit breaker and connection limiter) keep their own code.

`RestartBudget` is for something that runs until it fails and is then started again
(a child process, a publisher task): the backoff grows with the failures of the last
window and shrinks again once they age out, and the budget says when it is spent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

T = TypeVar("T")


def _never(_: RetryCallState) -> bool:
    return False


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    retry_on: Callable[[BaseException], bool],
    initial_s: float,
    max_s: float,
    stop: Callable[[RetryCallState], bool] = _never,
    on_retry: Callable[[RetryCallState], None] | None = None,
) -> T:
    """`await fn()` until it succeeds, fails with an error `retry_on` refuses, or `stop`
    says so; waits `initial_s x 2^n` plus up to `initial_s` of jitter, at most `max_s`."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(retry_on),
        stop=stop,
        wait=wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s),
        before_sleep=on_retry,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover


@dataclass
class RestartBudget:
    """Failures of a restarted thing, counted over a sliding window. Pure: time passed in.

    After the n-th failure within `window_s` the next start waits
    `initial_s x 2^(n-1)`, at most `max_s`; `max_failures` within the window spend the
    budget (`spent`): the caller gives up or reports itself unready.
    """

    initial_s: float
    max_s: float
    max_failures: int = 5
    window_s: float = 60.0
    _failures: deque[float] = field(default_factory=deque, init=False, repr=False)

    def _expire(self, now: float) -> None:
        while self._failures and self._failures[0] <= now - self.window_s:
            self._failures.popleft()

    def failed(self, now: float) -> float:
        """Record a failure at `now`; returns the delay before the next start."""
        self._expire(now)
        self._failures.append(now)
        delay: float = self.initial_s * 2.0 ** (len(self._failures) - 1)
        return min(delay, self.max_s)

    def recent(self, now: float) -> int:
        """Failures within the window ending at `now`."""
        self._expire(now)
        return len(self._failures)

    def spent(self, now: float) -> bool:
        return self.recent(now) >= self.max_failures
