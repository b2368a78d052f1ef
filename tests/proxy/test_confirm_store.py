"""The store of warned browser requests awaiting a 查詢事由: one use, origin-bound, expiring, bounded."""

from __future__ import annotations

import re

import pytest

from guard.confirm import HeldRequest, HeldRequests, Origin
from guard.notice import BlockNotice
from guard.verdict import Decision

ORIGIN: Origin = ("10.1.2.30", "chat.example", 443)
NOTICE = BlockNotice.from_entity_types("20261121-000000000000", ["PHONE_NUMBER"], Decision.WARN)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def held(body: bytes = b"prompt=...", origin: Origin = ORIGIN) -> HeldRequest:
    return HeldRequest(origin, "POST", "/v1/forms/chat", ((b"content-type", b"text/plain"),), body, NOTICE)


def test_a_token_releases_its_request_once() -> None:
    store = HeldRequests()
    request = held()
    token = store.hold(request)
    assert store.peek(token, ORIGIN) is request  # showing the form again does not use it up
    assert store.take(token, ORIGIN) is request
    assert store.take(token, ORIGIN) is None
    assert store.peek(token, ORIGIN) is None
    assert len(store) == 0


@pytest.mark.parametrize("other", [
    ("10.1.2.31", "chat.example", 443),   # another client
    ("10.1.2.30", "evil.example", 443),   # another host
    ("10.1.2.30", "chat.example", 8443),  # another port
])
def test_a_token_works_only_from_its_origin(other: Origin) -> None:
    store = HeldRequests()
    token = store.hold(held())
    assert store.peek(token, other) is None
    assert store.take(token, other) is None
    assert store.take(token, ORIGIN) is not None  # a wrong origin does not use it up


@pytest.mark.parametrize(("elapsed", "kept"), [(0.0, True), (299.9, True), (300.0, False), (3600.0, False)])
def test_held_requests_expire_after_five_minutes(elapsed: float, kept: bool) -> None:
    clock = Clock()
    store = HeldRequests(clock=clock)
    token = store.hold(held())
    clock.now += elapsed
    assert (store.take(token, ORIGIN) is not None) is kept


def test_expired_requests_are_forgotten_when_new_ones_arrive() -> None:
    clock = Clock()
    store = HeldRequests(clock=clock)
    store.hold(held())
    clock.now += 301
    store.hold(held())
    assert len(store) == 1


def test_the_oldest_are_dropped_beyond_the_count_limit() -> None:
    store = HeldRequests(max_items=3)
    tokens = [store.hold(held()) for _ in range(5)]
    assert [store.peek(t, ORIGIN) is not None for t in tokens] == [False, False, True, True, True]


def test_the_oldest_are_dropped_beyond_the_size_limit() -> None:
    store = HeldRequests(max_bytes=25)
    tokens = [store.hold(held(b"x" * 10)) for _ in range(3)]
    assert [store.peek(t, ORIGIN) is not None for t in tokens] == [False, True, True]
    huge = store.hold(held(b"x" * 100))  # larger than the limit: kept alone, so the user can still confirm
    assert [store.peek(t, ORIGIN) is not None for t in [*tokens, huge]] == [False, False, False, True]


def test_tokens_are_long_random_and_url_safe() -> None:
    store = HeldRequests()
    tokens = {store.hold(held()) for _ in range(50)}
    assert len(tokens) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)
