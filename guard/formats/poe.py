"""Poe web app (poe.com): GraphQL calls over HTTP, answers on a separate WebSocket channel.

Request shape (snowby666/poe-api-wrapper ``api.py`` and ``queries.py``, and other public clients):
``POST https://poe.com/api/gql_POST`` (the wrapper: ``/poe_api/gql_POST``) with a JSON body
``{"queryName": "SendMessageMutation", "variables": {"bot", "chatId", "query": "<prompt>",
"source", "clientNonce", "sdid", "attachments", ...}, "extensions": {"hash": "..."}}`` (older clients
send ``{"query": "<GraphQL document>", "variables": ...}``), sometimes labelled as a form although
the body is JSON. The HTTP reply only acknowledges (``data.messageEdgeCreate``: status, chat, the
human message); the answer streams on ``wss://tchNNN.tch.poe.com/up/<box>/updates?channel=...``,
opened before the prompt is sent: messages ``{"messages": ["<JSON>", ...], "min_seq"}`` whose
``subscriptionUpdate`` / ``messageAdded`` payload carries the bot message's text so far and its
``state`` (``incomplete`` until ``complete``). That channel is restored with the placeholder map the
user's last redacted prompt to Poe left (``replies_elsewhere``).

Notices: a GraphQL error, ``{"data": null, "errors": [{"message": notice, "path":
["messageEdgeCreate"]}]}`` with status 200, which the app's GraphQL client shows and the wrapper
raises with the reply in its message; the prompt never reaches Poe, so no answer follows on the channel.
"""

from __future__ import annotations

from typing import Any

from guard.formats import generic
from guard.formats._reply import json_reply
from guard.formats._select import all_strings
from guard.formats._tree import Path, json_request
from guard.formats.base import NativeResponse, ParsedRequest
from guard.notice import BlockNotice, short_message


def select(doc: Any) -> list[Path]:
    """A message mutation's ``variables.query`` (the prompt); any other call: every string."""
    variables = doc.get("variables") if isinstance(doc, dict) else None
    if isinstance(variables, dict) and isinstance(variables.get("query"), str) and "bot" in variables:
        return [("variables", "query")]
    return all_strings(doc, ())


class PoeFormat(generic.JsonApiFormat):
    name = "poe_web"
    select = staticmethod(select)
    #: Answers come back on another connection (the tchannel WebSocket), not as this request's reply.
    replies_elsewhere = True
    #: Its clients label JSON bodies as forms; they are read (and rewritten) as the JSON they are.
    reads_json_forms = True

    def extract(self, body: bytes, content_type: str, path: str) -> ParsedRequest:
        if body.lstrip()[:1] == b"{":  # JSON, whatever the content type claims
            return json_request(self.name, body, select)
        return super().extract(body, content_type, path)

    def block_response(self, notice: BlockNotice, streaming: bool) -> NativeResponse:
        error = {"message": short_message(notice), "path": ["messageEdgeCreate"],
                 "extensions": {"code": "FORBIDDEN"}}
        return json_reply(200, {"data": None, "errors": [error]})
