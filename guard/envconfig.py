"""Configuration from environment variables (12-factor): defaults for flags, and any proxy option.

Precedence, highest first: a flag on the command line, an environment variable, the built-in default.

- Named variables cover what every deployment sets, shared by the commands that use it:
  ``GUARD_LISTEN_HOST``, ``GUARD_LISTEN_PORT``, ``GUARD_POLICY``, ``GUARD_CONFDIR``, ``GUARD_AUDIT_DB``,
  ``GUARD_AUDIT_KEY_FILE``, ``GUARD_OPS_LISTEN`` (``guard proxy``); ``GUARD_REVIEW_LISTEN_HOST``,
  ``GUARD_REVIEW_LISTEN_PORT`` (``guard review``). ``GUARD_AUDIT_KEY`` (the key itself) is read by
  :mod:`guard.audit.keys`.
- Any other option of ``guard proxy``: ``GUARD_OPT_<NAME>`` is the guard option ``guard_<name>``
  (``GUARD_OPT_WORKERS=4`` is ``--set guard_workers=4``) and ``GUARD_MITMPROXY_<NAME>`` is mitmproxy's
  own option ``<name>`` (``GUARD_MITMPROXY_MODE=upstream:http://gateway:3128``).

An empty variable counts as unset. A mistake (a port that is not a number, a GUARD_OPT_ spelling of
a setting that has a named variable) stops start-up with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

OPTION_PREFIX = "GUARD_OPT_"
MITMPROXY_PREFIX = "GUARD_MITMPROXY_"

# Options with a named variable: a second spelling (GUARD_OPT_AUDIT_DB) would leave two places to
# look and no obvious winner, so it is refused.
NAMED_OPTIONS = {
    "guard_policy": "GUARD_POLICY",
    "guard_audit_db": "GUARD_AUDIT_DB",
    "guard_audit_key_file": "GUARD_AUDIT_KEY_FILE",
    "guard_ops_listen": "GUARD_OPS_LISTEN",
    "confdir": "GUARD_CONFDIR",
    "listen_host": "GUARD_LISTEN_HOST",
    "listen_port": "GUARD_LISTEN_PORT",
}


class ConfigError(ValueError):
    """An environment variable holds something unusable; the message names the variable."""


def env_str(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value, or ``default`` when it is unset or empty."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or default


def env_port(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    value = env_str(name, environ=environ)
    if value is None:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name}={value!r}: not a port number (1-65535)")
    return int(value)


def env_options(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(option name, value) pairs from GUARD_OPT_* and GUARD_MITMPROXY_*, in variable-name order."""
    environ = os.environ if environ is None else environ
    options = []
    for variable in sorted(environ):
        value = environ[variable].strip()
        if not value:
            continue
        if variable.startswith(OPTION_PREFIX):
            option = "guard_" + variable.removeprefix(OPTION_PREFIX).lower()
        elif variable.startswith(MITMPROXY_PREFIX):
            option = variable.removeprefix(MITMPROXY_PREFIX).lower()
        else:
            continue
        if option in ("guard_", ""):
            raise ConfigError(f"{variable}: no option name after the prefix")
        if option in NAMED_OPTIONS:
            raise ConfigError(f"{variable}: set {NAMED_OPTIONS[option]} instead")
        options.append((option, value))
    return options
