"""One start-up for every long-running process (lobby, match server, feed relay, results
worker, operator), so they all fail, log, loop and stop the same way.

`run_process` builds the settings (an invalid value is one line on stderr naming the
process and the environment variable, exit code 2, never a traceback), configures
JSON logging, sets up tracing from the OTEL_* environment (off unless asked for;
`tradearena.tracing`), runs the component's async main on uvloop when it is installed, and
turns SIGTERM/SIGINT into an `asyncio.Event` the main watches: each component keeps
its own graceful stop (the match server settles and publishes its match, aiohttp
apps run their cleanups). The shell imports no component: each passes in its
settings class and its main.

Two guards (`stop_guarded`, which `up` uses too) make a stuck stop visible and
bounded: SIGUSR1 logs where every asyncio task waits (what a process that does not stop
is waiting for), and once the main has returned the process exits within
`EXIT_GRACE_S` even if the loop's teardown or the interpreter's exit hangs (a task that
ignores cancellation, a non-daemon thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from tradearena.contracts.tracing import service_name
from tradearena.settings import ENV_PREFIX
from tradearena.telemetry import configure_logging
from tradearena.tracing import TracingSettingsError, init_tracing

EXIT_OK = 0
EXIT_BAD_SETTINGS = 2
EXIT_GRACE_S = 10.0

log = logging.getLogger(__name__)


class ProcessSettings(Protocol):
    """What the shell reads from any component's settings."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_format(self) -> str: ...


S = TypeVar("S", bound=ProcessSettings)
Main = Callable[[S, asyncio.Event], Awaitable[int | None]]


def settings_error(process: str, exc: ValidationError, env_prefix: str) -> str:
    """One line naming each bad setting by its environment variable."""
    parts = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = f"{env_prefix}{loc[0]}".upper() if loc else "settings"
        parts.append(f"{name}: {' '.join(str(error.get('msg', '')).split())}")
    noun = "setting" if len(parts) == 1 else "settings"
    return f"{process}: invalid {noun} {'; '.join(parts)}"


def load_settings(process: str, factory: Callable[[], S]) -> S | None:
    """The settings, or None after printing the one-line reason on stderr."""
    try:
        return factory()
    except ValidationError as exc:
        config: Any = getattr(factory, "model_config", None)  # a settings class, or a function
        prefix = str(config.get("env_prefix", "")) if isinstance(config, dict) else ENV_PREFIX
        print(settings_error(process, exc, prefix), file=sys.stderr, flush=True)
        return None


def run_process(process: str, factory: Callable[[], S], main: Main[S]) -> int:
    """Settings, logging, event loop, signals; then `main(settings, stop)` until it returns."""
    settings = load_settings(process, factory)
    if settings is None:
        return EXIT_BAD_SETTINGS
    configure_logging(process, settings.log_level, settings.log_format)
    try:
        init_tracing(service_name(process))
    except TracingSettingsError as exc:
        print(f"{process}: invalid setting {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_SETTINGS

    async def shell() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

        async def run() -> int:
            code = await main(settings, stop)
            return EXIT_OK if code is None else code

        return await stop_guarded(run())

    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional speed-up
        return asyncio.run(shell())
    return uvloop.run(shell())


async def stop_guarded(main: Awaitable[int]) -> int:
    """`main`'s exit code, with the two stop guards: SIGUSR1 logs the tasks, and once
    `main` is over the process ends within `EXIT_GRACE_S`."""
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, log_tasks)
    code = 1  # what the interpreter exits with when the main raises
    try:
        code = await main
    finally:
        exit_within(EXIT_GRACE_S, code)
    return code


def log_tasks() -> None:
    """Log every asyncio task of this loop with the stack it waits in (SIGUSR1)."""
    tasks = asyncio.all_tasks()
    for task in tasks:
        log.warning("task", extra={"task": task.get_name(), "stack": await_chain(task)})
    log.warning("tasks logged", extra={"tasks": len(tasks)})


def await_chain(task: asyncio.Task[Any]) -> str:
    """Where `task` waits, outermost call first, down the chain of awaits (a task's own
    stack shows only its outermost frame), ending with what the innermost one awaits."""
    lines = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:  # a future's iterator, or another C-level awaitable
            waiter = getattr(task, "_fut_waiter", None)  # the future the task waits on
            lines.append(f"  awaiting {waiter if waiter is not None else awaited!r}")
            break
        code = frame.f_code
        lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines)


def exit_within(grace_s: float, code: int) -> None:
    """End the process `grace_s` from now with `code` if it has not ended by itself: the
    main is done, so what remains (the loop's teardown, the interpreter's exit) must not
    keep it alive. The threads' stacks go to stderr first."""

    def force() -> None:
        log.error("process did not exit after its main returned", extra={"grace_s": grace_s})
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(code)

    timer = threading.Timer(grace_s, force)
    timer.daemon = True
    timer.start()
