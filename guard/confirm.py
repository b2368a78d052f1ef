"""Browser requests held back until the user states a reason (查詢事由): memory only, one use, expiring.

A warned page navigation cannot be resent by the user with a header, so the guard keeps the request
here and shows a form; the form posts back a random token and the reason, and the held request goes
out in place of that post. Nothing here is ever written to disk or logged: it holds raw prompts.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from guard.notice import BlockNotice

HOLD_SECONDS = 300.0
MAX_HELD = 256
MAX_HELD_BYTES = 64 * 1024**2

#: Who may release a held request: the same client address, to the same host and port.
Origin = tuple[str, str, int]


@dataclass(frozen=True)
class HeldRequest:
    """A warned request exactly as it arrived, and the notice shown for it."""

    origin: Origin
    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    notice: BlockNotice


class HeldRequests:
    """Held requests by token; the oldest are dropped when there are too many or they are too large."""

    def __init__(self, ttl: float = HOLD_SECONDS, max_items: int = MAX_HELD,
                 max_bytes: int = MAX_HELD_BYTES, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._clock = clock
        self._held: OrderedDict[str, tuple[float, HeldRequest]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        self._expire()
        return len(self._held)

    def hold(self, request: HeldRequest) -> str:
        """Keep ``request``; the token that releases it (unguessable, URL-safe)."""
        self._expire()
        token = secrets.token_urlsafe(32)
        self._held[token] = (self._clock() + self.ttl, request)
        self._bytes += len(request.body)
        # The newest one always stays, so a user who just saw the form can still confirm it.
        while len(self._held) > 1 and (len(self._held) > self.max_items or self._bytes > self.max_bytes):
            self._drop(next(iter(self._held)))
        return token

    def peek(self, token: str, origin: Origin) -> HeldRequest | None:
        """The request ``token`` holds for ``origin``, left in place (to show the form again)."""
        self._expire()
        entry = self._held.get(token)
        return entry[1] if entry is not None and entry[1].origin == origin else None

    def take(self, token: str, origin: Origin) -> HeldRequest | None:
        """Release the request: a token works once, and only from the origin it was given to."""
        held = self.peek(token, origin)
        if held is not None:
            self._drop(token)
        return held

    def _drop(self, token: str) -> None:
        _, request = self._held.pop(token)
        self._bytes -= len(request.body)

    def _expire(self) -> None:
        now = self._clock()
        while self._held:
            token, (deadline, _) = next(iter(self._held.items()))
            if deadline > now:
                return
            self._drop(token)
