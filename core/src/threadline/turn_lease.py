"""A session's turn lease, held while a turn (or an edit of the history) runs, so that
turns from several processes stay whole: see ``Storage.take_turn``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from threadline.errors import StorageConflict

if TYPE_CHECKING:
    from threadline.session import Session

LEASE_SECONDS = 30.0  # a turn's lease outlives a holder that died by this much at most
log = logging.getLogger("threadline.turn")


@contextlib.asynccontextmanager
async def turn_lease(session: Session) -> AsyncIterator[None]:
    """Hold the session's turn lease while a turn runs, so that turns from several processes
    stay whole: wait for another process's turn to end (``[defaults] turn_wait``), keep the
    lease alive through a long reply, give it back at the end."""
    storage, holder, tenant = session._storage, session._manager.holder, session._live.stored.tenant
    keeper: _LeaseKeeper | None = None
    try:
        await _take_turn(session, holder)  # cancelled once its write committed: given back below
        keeper = _LeaseKeeper(session, holder)  # most turns end long before a renewal is due
        yield
    finally:
        if keeper is not None:
            keeper.stop()
        await storage.end_turn(tenant, session.id, holder)  # only if it is ours


async def _take_turn(session: Session, holder: str) -> None:
    loop, wait = asyncio.get_running_loop(), session._manager.config.defaults.turn_wait
    deadline = loop.time() + wait
    pause = 0.002
    while not await session._storage.take_turn(session._live.stored.tenant, session.id, holder, LEASE_SECONDS):
        left = deadline - loop.time()
        if left <= 0:
            raise StorageConflict(
                f"session {session.id!r} is in a turn of another process, which has not ended after "
                f"{wait:g} s ([defaults] turn_wait)"
            )
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


class _LeaseKeeper:
    """Renews a turn's lease every third of its length, from a timer: a turn that ends first
    (most do) costs no task."""

    def __init__(self, session: Session, holder: str) -> None:
        self.session, self.holder = session, holder
        self.renewing: asyncio.Task[None] | None = None
        self.timer = asyncio.get_running_loop().call_later(LEASE_SECONDS / 3, self._renew)

    def _renew(self) -> None:
        self.renewing = asyncio.get_running_loop().create_task(self._renewed())

    async def _renewed(self) -> None:
        session = self.session
        tenant = session._live.stored.tenant
        try:
            if not await session._storage.take_turn(tenant, session.id, self.holder, LEASE_SECONDS):
                log.warning("session %s: its turn lease ran out and another process took it", session.id)
        except Exception:
            log.exception("session %s: could not renew its turn lease; trying again", session.id)
        self.timer = asyncio.get_running_loop().call_later(LEASE_SECONDS / 3, self._renew)

    def stop(self) -> None:
        self.timer.cancel()
        if self.renewing is not None:
            self.renewing.cancel()
