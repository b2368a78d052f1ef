"""Building native replies (JSON errors, server-sent events) and telling which kind a request gets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from guard.formats._tree import dumps
from guard.formats.base import JSON_HEADERS, SSE_HEADERS, NativeResponse, media_type


def json_reply(status: int, payload: Any,
               headers: tuple[tuple[str, str], ...] = JSON_HEADERS) -> NativeResponse:
    return NativeResponse(status, headers, dumps(payload).encode("utf-8"))


def sse_event(data: Any, event: str | None = None) -> str:
    """One SSE event; ``data`` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


def sse_reply(events: list[str], status: int = 200) -> NativeResponse:
    return NativeResponse(status, SSE_HEADERS, "".join(events).encode("utf-8"))


# ------------------------------------------------------------------ which reply a request gets

#: Fetch-metadata destinations of a page load (``sec-fetch-dest``).
_DOCUMENT_DESTS = frozenset({"document", "iframe", "frame"})
#: What a classic HTML ``<form>`` can post; any other body (JSON above all) is sent by a script.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
#: Headers only scripts set (Google's ``X-Same-Domain``, jQuery-style ``X-Requested-With``).
_SCRIPT_HEADERS = ("x-same-domain", "x-requested-with")
#: The web apps' own API endpoints: a browser never navigates to them, whatever a client's headers say.
_APP_ENDPOINTS = re.compile(
    r"/_/[A-Za-z]+/data/|/batchexecute|/backend-(?:api|anon)/|/api/organizations/|/rest/|/api/v\d+/|"
    r"/c/api/|/sydney/|/turing/|/edgesvc/|/chathub|/gql_POST|/graphql|/api/chat|/api/append_|/api/trpc/",
    re.IGNORECASE)
#: Endpoints whose reply is always a stream, however the client asked (accept */*, no "stream" flag).
_STREAMING_ENDPOINTS = re.compile(
    r"StreamGenerate|:streamGenerateContent|/rest/sse/|/api/v0/chat/(?:completion|regenerate|resume_stream)|"
    r"/backend-(?:api|anon)/(?:f/)?conversation$|/chat_conversations/[^/]+/(?:retry_)?completion$")


def is_page_load(method: str, path: str, headers: Mapping[str, str], content_type: str) -> bool:
    """Is this a browser loading a page (a GET of HTML, or a classic form post)? Then an HTML page answers.

    Clients that imitate Chrome send ``sec-fetch-mode: navigate`` and an HTML ``accept`` on every
    request, so headers alone are not enough: a JSON body, a script-only header or a web app's API
    endpoint means a script sent it, and it gets the app's own reply.
    """
    mode = headers.get("sec-fetch-mode", "").lower()
    dest = headers.get("sec-fetch-dest", "").lower()
    if (mode and mode != "navigate") or (dest and dest not in _DOCUMENT_DESTS):
        return False
    if not (mode == "navigate" or dest or headers.get("accept", "").lower().startswith("text/html")):
        return False
    scripted = any(headers.get(name) is not None for name in _SCRIPT_HEADERS)
    if scripted or _APP_ENDPOINTS.search(path.split("?", 1)[0]):
        return False
    if method.upper() in ("GET", "HEAD"):
        return True
    return method.upper() == "POST" and media_type(content_type) in _FORM_TYPES


def streams_by_endpoint(path: str) -> bool:
    """Does this endpoint always answer with a stream (so a block reply must be one too)?"""
    return bool(_STREAMING_ENDPOINTS.search(path.split("?", 1)[0]))
