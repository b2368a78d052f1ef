"""Container health check: GET the proxy's /healthz (or a URL given); exit 0 on a 2xx answer, else 1.

The image has no curl; this needs only the standard library and guard itself. Without an argument
the address is the ops listener's, from GUARD_OPS_LISTEN (the image sets 0.0.0.0:9100):

    guard-healthcheck                              # http://127.0.0.1:9100/healthz
    guard-healthcheck http://127.0.0.1:8081/login  # the review console
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from guard.ops import parse_listen_address

WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def default_url(environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    host, port = parse_listen_address(environ.get("GUARD_OPS_LISTEN") or "127.0.0.1:9100")
    host = WILDCARD_TO_LOOPBACK.get(host, host)
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else default_url()
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as e:
        print(f"guard-healthcheck: {url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
