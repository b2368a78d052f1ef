"""Proxy authentication names the user in the inspection event (mitmproxy's ``proxyauth``: one user, LDAP)."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from tests.e2e.helpers import GuardProxy, assert_never_sent, curl, event_for, nonce, pii_prompt
from tests.e2e.upstream import UpstreamServer

pytestmark = pytest.mark.usefixtures("curl_available")

JSON = {"content-type": "application/json"}


def _gemini_url(server: UpstreamServer, tag: str) -> str:
    return f"{server.base_url}/v1beta/models/{tag}:generateContent"  # the tag finds the event by its path


def _body(prompt: str) -> bytes:
    return json.dumps({"contents": [{"parts": [{"text": prompt}]}]}, ensure_ascii=False).encode()


def _connect_answer(proxy: GuardProxy, target: str, credentials: str | None) -> str:
    """The status line and headers the proxy answers a CONNECT with."""
    auth = ""
    if credentials:
        auth = f"Proxy-Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")


def _assert_user_in_event(proxy: GuardProxy, server: UpstreamServer, credentials: str, user: str) -> None:
    tag = nonce()
    reply = curl(proxy, _gemini_url(server, tag), _body(pii_prompt(tag)), JSON, proxy_user=credentials)
    assert reply.status == 200
    event = event_for(proxy, tag)
    assert event["user"] == user and event["decision"] == "redact"
    password = credentials.split(":", 1)[1]
    assert password not in proxy.log()  # the credentials stay with mitmproxy: only the name is recorded


def _assert_refused(proxy: GuardProxy, server: UpstreamServer, credentials: str | None) -> None:
    answer = _connect_answer(proxy, server.host_port, credentials)
    assert answer.startswith("HTTP/1.1 407"), answer
    assert "proxy-authenticate: basic" in answer.lower()
    tag = nonce()
    with pytest.raises(AssertionError, match="curl exited 56"):  # curl: the CONNECT was refused
        curl(proxy, _gemini_url(server, tag), _body(pii_prompt(tag)), JSON, proxy_user=credentials)
    assert_never_sent(server, tag)


# ---------------------------------------------------------------- proxyauth=alice:secret

def test_authenticated_user_is_named_in_the_event(auth_proxy: GuardProxy,
                                                  gemini_upstream: UpstreamServer) -> None:
    _assert_user_in_event(auth_proxy, gemini_upstream, "alice:secret", "alice")


@pytest.mark.parametrize("credentials", [None, "alice:wrong", "mallory:secret"])
def test_without_valid_credentials_the_proxy_answers_407(auth_proxy: GuardProxy,
                                                         gemini_upstream: UpstreamServer,
                                                         credentials: str | None) -> None:
    _assert_refused(auth_proxy, gemini_upstream, credentials)


# ---------------------------------------------------------------- proxyauth=ldap:... (a throwaway slapd)

def test_ldap_user_is_named_in_the_event(ldap_auth_proxy: GuardProxy,
                                         gemini_upstream: UpstreamServer) -> None:
    _assert_user_in_event(ldap_auth_proxy, gemini_upstream, "bob:wonderland", "bob")


@pytest.mark.parametrize("credentials", [None, "bob:wrong", "alice:secret"])
def test_ldap_refuses_unknown_users_and_wrong_passwords(ldap_auth_proxy: GuardProxy,
                                                        gemini_upstream: UpstreamServer,
                                                        credentials: str | None) -> None:
    _assert_refused(ldap_auth_proxy, gemini_upstream, credentials)
