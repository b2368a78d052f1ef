"""What every client script shares: its command line, the proxy-aware HTTP client, and JSON output."""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
from typing import Any


def proxy_parser(description: str) -> argparse.ArgumentParser:
    """The options every client takes: the proxy, its CA and the stand-in service."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--proxy", required=True, help="proxy URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--ca", required=True, help="CA certificate to trust (the proxy's)")
    parser.add_argument("--base-url", required=True, help="the stand-in AI service, e.g. https://127.0.0.1:9100")
    return parser


def arguments(description: str) -> argparse.Namespace:
    parser = proxy_parser(description)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--stream", action="store_true")
    return parser.parse_args()


class SentBodies:
    """An httpx request hook that keeps the exact bytes the client put on the wire."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, request: Any) -> None:
        self.bodies.append(request.read())

    def last_b64(self) -> str:
        return base64.b64encode(self.bodies[-1]).decode() if self.bodies else ""


def http_client(sdk: Any, proxy: str, ca: str, sent: SentBodies) -> Any:
    """The SDK's own httpx client (whichever httpx it is built on), through the proxy, trusting ``ca``."""
    return sdk.DefaultHttpxClient(proxy=proxy, verify=ssl.create_default_context(cafile=ca),
                                  trust_env=False, event_hooks={"request": [sent]})


def error_result(error: Exception, sent: SentBodies) -> dict[str, Any]:
    return {"error": {"class": type(error).__name__, "status": getattr(error, "status_code", None),
                      "body": getattr(error, "body", None), "message": str(error)},
            "sent": sent.last_b64()}


def emit(result: dict[str, Any]) -> None:
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
