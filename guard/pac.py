"""``guard pac``: a proxy auto-config (PAC) file that sends only the policy's AI hosts to the guard.

A browser calls ``FindProxyForURL(url, host)`` for every request. What it can see there is the
scheme, the host name as typed (no DNS answer, no SNI) and, in the URL, the port; for ``https://``
URLs modern browsers strip the path and query. So the file matches names exactly as the guard's
catalogue does (``api.openai.com``; ``*.openai.azure.com`` also covering ``openai.azure.com``;
``host:port`` only for that port, the port read from the URL or the scheme's default), and it never
resolves names: a DNS lookup per request is slow, and it would leak nothing useful.

Catalogued hosts get only the guard's proxies, never a DIRECT fallback: if every guard is down the
prompt fails instead of leaving uninspected. Everything else keeps the agency's current route.
The generated script is ES3 (no ``let``, ``indexOf`` on arrays or arrow functions) because Windows'
WinHTTP PAC engine is that old.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence

from guard.policy import Policy, load_policy, split_host_port

# host:port of a guard proxy, as the browser will connect to it.
_HOST_PORT = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?):\d{1,5}"
_ROUTE = rf"DIRECT|(?:PROXY|HTTPS|SOCKS|SOCKS4|SOCKS5) {_HOST_PORT}"
_ROUTES = re.compile(rf"\s*(?:{_ROUTE})(?:\s*;\s*(?:{_ROUTE}))*\s*;?\s*")
ANY_PORT = "*"


def parse_proxy(value: str) -> str:
    """'guard.agency.example:8080' -> 'PROXY guard.agency.example:8080'."""
    if not re.fullmatch(_HOST_PORT, value.strip()):
        raise ValueError(f"--proxy {value!r}: expected HOST:PORT, e.g. guard.agency.example:8080")
    return f"PROXY {value.strip()}"


def parse_fallback(value: str) -> str:
    """A PAC route list for everything else: 'DIRECT', 'PROXY gw:3128', 'PROXY gw:3128; DIRECT'."""
    if not _ROUTES.fullmatch(value):
        raise ValueError(f"--fallback {value!r}: expected DIRECT or PROXY HOST:PORT (several joined by ';')")
    return "; ".join(part.strip() for part in value.split(";") if part.strip())


def catalogue(policy: Policy) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(exact hosts, wildcard domains), each name -> its ports ('*' for any), from the services."""
    hosts: dict[str, list[str]] = {}
    domains: dict[str, list[str]] = {}
    for service in policy.services:
        for entry in service.hosts:
            name, port = split_host_port(entry)
            name = name.strip("[]").rstrip(".")
            table = hosts
            if name.startswith("*."):
                name, table = name[2:], domains
            ports = table.setdefault(name, [])
            wanted = ANY_PORT if port is None else str(port)
            if wanted not in ports:
                ports.append(wanted)
    return hosts, domains


PAC_CODE = r"""
function guardPort(url) {
  var scheme = url.substring(0, url.indexOf(":")).toLowerCase();
  var rest = url.substring(url.indexOf(":") + 1);
  while (rest.charAt(0) == "/") rest = rest.substring(1);
  var end = rest.length, i, c;
  for (i = 0; i < rest.length; i++) {
    c = rest.charAt(i);
    if (c == "/" || c == "?" || c == "#") { end = i; break; }
  }
  var authority = rest.substring(0, end);
  authority = authority.substring(authority.lastIndexOf("@") + 1);
  var colon = authority.lastIndexOf(":");
  if (colon > authority.lastIndexOf("]") && colon < authority.length - 1) {
    return authority.substring(colon + 1);
  }
  if (scheme == "http" || scheme == "ws") return "80";
  if (scheme == "https" || scheme == "wss") return "443";
  if (scheme == "ftp") return "21";
  return "";
}

function guardPortListed(ports, port) {
  for (var i = 0; i < ports.length; i++) {
    if (ports[i] == "*" || ports[i] == port) return true;
  }
  return false;
}

function guardCatalogued(url, host) {
  host = host.toLowerCase();
  if (host.charAt(0) == "[") host = host.substring(1, host.length - 1);
  while (host.charAt(host.length - 1) == ".") host = host.substring(0, host.length - 1);
  var port = guardPort(url);
  if (GUARD_HOSTS.hasOwnProperty(host) && guardPortListed(GUARD_HOSTS[host], port)) return true;
  // *.domain covers the domain and every name under it: try the host, then each parent domain.
  var name = host;
  while (name.length > 0) {
    if (GUARD_DOMAINS.hasOwnProperty(name) && guardPortListed(GUARD_DOMAINS[name], port)) return true;
    var dot = name.indexOf(".");
    if (dot < 0) break;
    name = name.substring(dot + 1);
  }
  return false;
}

function FindProxyForURL(url, host) {
  return guardCatalogued(url, host) ? GUARD_PROXIES : OTHER_ROUTE;
}
"""


def pac_file(policy: Policy, proxies: Sequence[str], fallback: str = "DIRECT") -> str:
    """The PAC script: catalogued AI hosts to ``proxies`` (HOST:PORT, in order), the rest to ``fallback``."""
    if not proxies:
        raise ValueError("at least one --proxy HOST:PORT is needed")
    routes = "; ".join(parse_proxy(p) for p in proxies)
    other = parse_fallback(fallback)
    hosts, domains = catalogue(policy)
    services = "\n".join(f"//   {s.name:<18} {', '.join(s.hosts)}" for s in policy.services)
    return (
        f"// Proxy auto-config generated by `guard pac` from policy {policy.name} {policy.version}.\n"
        "// Serve it as application/x-ns-proxy-autoconfig. Generative-AI hosts go to the guard only\n"
        "// (no DIRECT fallback: nothing reaches them uninspected); every other host takes OTHER_ROUTE.\n"
        f"{services}\n"
        f"var GUARD_PROXIES = {json.dumps(routes)};\n"
        f"var OTHER_ROUTE = {json.dumps(other)};\n"
        f"var GUARD_HOSTS = {json.dumps(hosts, sort_keys=True)};\n"
        f"var GUARD_DOMAINS = {json.dumps(domains, sort_keys=True)};\n"
        + PAC_CODE
    )


def cmd_pac(args: argparse.Namespace) -> int:
    try:
        text = pac_file(load_policy(args.policy), args.proxy, args.fallback)
    except ValueError as e:
        print(f"guard pac: {e}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pac = sub.add_parser("pac", help="a PAC file sending only the policy's AI hosts to the guard")
    pac.add_argument("--proxy", action="append", required=True, metavar="HOST:PORT",
                     help="the guard as browsers reach it; repeat for fail-over between guard nodes")
    pac.add_argument("--fallback", default="DIRECT",
                     help='route for every other host: "DIRECT" (default) or "PROXY gateway:3128"')
    pac.add_argument("--policy", help="policy YAML (default: the bundled policies/default.yaml)")
    pac.add_argument("--output", "-o", help="write to this file (default: standard output)")
    pac.set_defaults(func=cmd_pac)
