"""Bad input that the HTTP and Socket.IO libraries would log as one traceback each.

aiohttp logs a request it cannot parse with the offending bytes (an oversized
`Authorization` header puts part of the bearer token in the log), python-engineio and
python-socketio log every undecodable packet as an ERROR with a full traceback: one
client can fill the logs. `BadInputLog` is a logging filter for those libraries'
loggers: it drops their record and writes one bounded line of its own (the error's
type, the innermost frame, never the exception's text or the input), at most one per
(source, error) every `interval_s` with the number suppressed since, and counts every
occurrence through `count(source, error)` (the component's metric).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from pathlib import PurePath

from aiohttp.http_exceptions import HttpProcessingError

HTTP_LOGGER = "aiohttp.server"


class BadInputLog(logging.Filter):
    def __init__(
        self,
        log: logging.Logger,
        count: Callable[[str, str], None],
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._log = log
        self._count = count
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[tuple[str, str], tuple[float, int]] = {}
        self._sources: dict[str, str] = {HTTP_LOGGER: "http"}

    def watch(self, logger: logging.Logger, source: str) -> None:
        """Take over `logger`'s error records, reported as coming from `source`."""
        self._sources[logger.name] = source
        logger.addFilter(self)

    def watch_http(self) -> None:
        self.watch(logging.getLogger(HTTP_LOGGER), "http")

    def unwatch(self) -> None:
        for name in self._sources:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR and record.exc_info is None:
            return True  # the libraries' ordinary lines stay as they are
        exc = record.exc_info[1] if record.exc_info else None
        where = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        self.report(self._sources.get(record.name, record.name), exc, where)
        return False

    def report(self, source: str, exc: BaseException | None, where: str) -> None:
        """Count one bad input; log it unless its kind was logged less than
        `interval_s` ago."""
        error = type(exc).__name__ if exc is not None else "error"
        self._count(source, error)
        key = (source, error)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._interval_s:
            self._last[key] = (last[0], last[1] + 1)
            return
        self._last[key] = (now, 0)
        extra: dict[str, object] = {
            "source": source,
            "error": error,
            "where": where[:80],
            "suppressed": last[1] if last is not None else 0,
        }
        if exc is not None and exc.__traceback__ is not None:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            extra["at"] = f"{PurePath(frame.filename).name}:{frame.lineno}"
        if isinstance(exc, HttpProcessingError):
            extra["status"] = exc.code
        self._log.warning("bad input refused", extra=extra)


def socketio_loggers(component: str) -> tuple[logging.Logger, logging.Logger]:
    """The (Socket.IO, Engine.IO) loggers to hand a python-socketio server: named after
    the component, WARNING and above (a `False` logger would get a plain stderr
    handler of its own), for `BadInputLog.watch`."""
    loggers = (
        logging.getLogger(f"{component}.socketio"),
        logging.getLogger(f"{component}.engineio"),
    )
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    return loggers
