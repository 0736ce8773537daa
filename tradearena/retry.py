"""One way to retry a call: exponential backoff with jitter (tenacity), the last error
re-raised when retrying stops.

For calls whose failure says nothing about the work (a database or Redis blip):
the caller says which errors are worth retrying, for how long (`stop`, default
never), and what to record before each wait (`on_retry`: a metric, a log line).
Loops that are the product's own behaviour (the Binance reconnect policy with its
circuit breaker and connection limiter) keep their own code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
