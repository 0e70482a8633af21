"""API key format: generation, shape check, digest.

A key looks like ``sk_live_`` (or ``sk_test_``) + 32 random base62 characters + a 6-character
base62 CRC-32 of everything before it::

    sk_live_4eC39HqLyjWDarjtT1zdp7dcX9qLm2Pb0a3ZkQ
    └─────┬────────┘
     display prefix: the first 8 random characters, unique, safe to log and show

The checksum lets us refuse a mistyped or made-up key without asking the store. Only the
display prefix and a SHA-256 digest are ever stored; the full key is shown once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass
from typing import Literal

KeyEnvironment = Literal["live", "test"]

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6  # 62**6 > 2**32: room for any CRC-32
PREFIX_RANDOM_LENGTH = 8  # 62**8 ≈ 2e14 display prefixes; collisions are refused at creation
_KEY_SHAPE = re.compile(
    rf"^sk_(live|test)_([0-9A-Za-z]{{{RANDOM_LENGTH}}})([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)


@dataclass(frozen=True)
class IssuedKey:
    """A key just generated: `key` goes to the caller once, the rest to the store."""

    key: str
    prefix: str
    digest: str
    environment: KeyEnvironment

    def __repr__(self) -> str:  # never print the secret part by accident
        return f"IssuedKey(prefix={self.prefix!r}, environment={self.environment!r})"


@dataclass(frozen=True)
class PresentedKey:
    """A well-formed key a client sent: what the store is asked about."""

    prefix: str
    digest: str


def generate_key(environment: KeyEnvironment = "live") -> IssuedKey:
    body = f"sk_{environment}_" + "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    key = body + _checksum(body)
    return IssuedKey(
        key=key, prefix=display_prefix(key), digest=digest(key), environment=environment
    )


WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_BYTES = 32


def generate_webhook_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes, the form Standard Webhooks libraries read."""
    return (
        WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()
    )


def parse_key(raw: str) -> PresentedKey | None:
    """The prefix and digest of `raw`, or None when it cannot be one of our keys."""
    match = _KEY_SHAPE.match(raw)
    if match is None:
        return None
    body_end = match.start(3)
    if not hmac.compare_digest(_checksum(raw[:body_end]), match.group(3)):
        return None
    return PresentedKey(prefix=display_prefix(raw), digest=digest(raw))


def display_prefix(key: str) -> str:
    """``sk_live_AbCd1234``: identifies a key in logs, listings and CLI commands."""
    environment_part = key[: len("sk_live_")]
    return (
        environment_part + key[len(environment_part) : len(environment_part) + PREFIX_RANDOM_LENGTH]
    )


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def digests_match(stored: str, presented: str) -> bool:
    """Constant-time, so response timing says nothing about how much of a digest matched."""
    return hmac.compare_digest(stored.encode("ascii"), presented.encode("ascii"))


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    chars = []
    for _ in range(CHECKSUM_LENGTH):
        value, remainder = divmod(value, 62)
        chars.append(BASE62[remainder])
    return "".join(reversed(chars))


def new_key_id() -> str:
    """Stable identity of a key across rotations; limits and usage are filed under it."""
    return "key_" + "".join(secrets.choice(BASE62) for _ in range(16))
