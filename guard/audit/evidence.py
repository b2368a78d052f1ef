"""Evidence: the original text of a blocked or redacted prompt, sealed with AES-GCM.

The event id is the associated data, so a ciphertext moved to another event does not open. Only the
key id is stored beside it; the key itself comes from the environment or a file (guard.audit.keys).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from guard.audit.keys import AuditKeys


class EvidenceError(Exception):
    """Evidence cannot be opened (wrong or missing key, altered ciphertext)."""


@dataclass(frozen=True)
class SealedEvidence:
    key_id: str
    nonce: bytes
    ciphertext: bytes


def seal(texts: Sequence[str], event_id: str, keys: AuditKeys) -> SealedEvidence:
    key = keys.current
    nonce = secrets.token_bytes(12)
    plaintext = json.dumps(list(texts), ensure_ascii=False).encode()
    ciphertext = AESGCM(key.evidence_key).encrypt(nonce, plaintext, event_id.encode())
    return SealedEvidence(key.key_id, nonce, ciphertext)


def unseal(sealed: SealedEvidence, event_id: str, keys: AuditKeys | None) -> list[str]:
    key = keys.by_id(sealed.key_id) if keys else None
    if key is None:
        raise EvidenceError(f"evidence was sealed with audit key {sealed.key_id}, which is not loaded")
    try:
        plaintext = AESGCM(key.evidence_key).decrypt(sealed.nonce, sealed.ciphertext, event_id.encode())
    except InvalidTag:
        raise EvidenceError("evidence does not open: it was altered or belongs to another event") from None
    texts = json.loads(plaintext)
    return [str(t) for t in texts]
