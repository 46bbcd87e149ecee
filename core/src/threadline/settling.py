"""Waiting, through cancellations, for work that must not be left half done: a write a
storage has sent, an import it is committing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def settled(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` to finish, through any cancellation of the waiter (which the
    caller raises once this returns); its error, if any, is the caller's to look at, and not
    logged as never retrieved."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([future])
    if not future.cancelled():
        future.exception()
