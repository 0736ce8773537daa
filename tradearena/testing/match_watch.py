"""Following every Match of a namespace from a benchmark: list, then watch from there."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import watch

from tradearena.contracts import resource


async def follow_matches(
    custom: Any, namespace: str, seen: Callable[[dict[str, Any]], None], done: asyncio.Event
) -> None:
    """Hand every Match (as listed, then as changed) to `seen` until `done`. On any error
    (e.g. 429 while a fresh CRD's storage initialises) list and watch again."""
    while not done.is_set():
        try:
            listed = await custom.list_namespaced_custom_object(
                resource.GROUP, resource.VERSION, namespace, resource.PLURAL
            )
            for obj in listed["items"]:
                seen(obj)
            w = watch.Watch()
            async for event in w.stream(
                custom.list_namespaced_custom_object,
                resource.GROUP,
                resource.VERSION,
                namespace,
                resource.PLURAL,
                resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=60,
            ):
                seen(event["object"])
        except Exception as exc:
            print(f"watch restarted: {exc!r}"[:200], file=sys.stderr)
            await asyncio.sleep(0.5)
