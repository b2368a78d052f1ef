"""The audit key: encrypts evidence and keys the hash chain. Never stored in the database.

Read from the environment variable ``GUARD_AUDIT_KEY`` or from a file (``--audit-key-file``,
option ``guard_audit_key_file``): one or more base64 keys of at least 32 bytes, one per line, the
first being current. Older lines stay readable so evidence and chain links made before a rotation can
still be opened and verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "GUARD_AUDIT_KEY"


class AuditKeyError(ValueError):
    """The audit key could not be read; the message names where from, never the key."""


@dataclass(frozen=True)
class AuditKey:
    master: bytes

    @property
    def evidence_key(self) -> bytes:
        return hmac.new(self.master, b"guard evidence v1", hashlib.sha256).digest()

    @property
    def chain_key(self) -> bytes:
        return hmac.new(self.master, b"guard chain v1", hashlib.sha256).digest()

    @property
    def checkpoint_key(self) -> bytes:
        return hmac.new(self.master, b"guard checkpoint v1", hashlib.sha256).digest()

    @property
    def session_key(self) -> bytes:
        """Signs console session rows, so a database writer cannot mint a session."""
        return hmac.new(self.master, b"guard review sessions v1", hashlib.sha256).digest()

    @property
    def digest_key(self) -> bytes:
        """Keys fingerprints of values kept beside the chain (password hashes, allow-list values)."""
        return hmac.new(self.master, b"guard digest v1", hashlib.sha256).digest()

    @property
    def key_id(self) -> str:
        """A short public name for the key (a hash of it), stored beside what it protects."""
        return hashlib.sha256(b"guard key id" + self.master).hexdigest()[:16]


@dataclass(frozen=True)
class AuditKeys:
    keys: tuple[AuditKey, ...]

    @property
    def current(self) -> AuditKey:
        return self.keys[0]

    def by_id(self, key_id: str) -> AuditKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    def chain_keys(self) -> dict[str, bytes]:
        return {k.key_id: k.chain_key for k in self.keys}


def parse_keys(text: str, source: str) -> AuditKeys:
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise AuditKeyError(f"{source}: line {number} is not base64") from None
        if len(raw) < 32:
            raise AuditKeyError(
                f"{source}: line {number} is {len(raw)} bytes; an audit key needs at least 32")
        keys.append(AuditKey(raw))
    if not keys:
        raise AuditKeyError(f"{source}: no key found")
    return AuditKeys(tuple(keys))


def load_keys(path: str | None = None, environ: dict[str, str] | None = None) -> AuditKeys | None:
    """The configured keys: the file if given, else ``GUARD_AUDIT_KEY``, else None (no evidence kept)."""
    if path:
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as e:
            raise AuditKeyError(f"{path}: cannot read the audit key file ({e.__class__.__name__})") from None
        return parse_keys(text, path)
    value = (environ if environ is not None else os.environ).get(ENV_VAR, "")
    return parse_keys(value.replace(",", "\n"), ENV_VAR) if value.strip() else None


def new_key() -> str:
    """A fresh key line for a key file (``guard audit keygen``)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()
