"""Key format: shape, checksum, prefix, digest."""

from __future__ import annotations

import hashlib
import re

import pytest

from auth.keys import digest, digests_match, display_prefix, generate_key, parse_key


@pytest.mark.parametrize("environment", ["live", "test"])
def test_generated_keys_have_the_documented_shape(environment: str) -> None:
    issued = generate_key(environment)  # type: ignore[arg-type]
    assert re.fullmatch(rf"sk_{environment}_[0-9A-Za-z]{{38}}", issued.key)
    assert issued.prefix == issued.key[: len(f"sk_{environment}_") + 8]
    assert issued.digest == hashlib.sha256(issued.key.encode()).hexdigest()
    assert issued.key not in repr(issued)


def test_generated_keys_parse_back_to_their_prefix_and_digest() -> None:
    issued = generate_key()
    presented = parse_key(issued.key)
    assert presented is not None
    assert (presented.prefix, presented.digest) == (issued.prefix, issued.digest)


def test_keys_are_random() -> None:
    assert len({generate_key().key for _ in range(200)}) == 200


def _flip_one_character(key: str, index: int) -> str:
    replacement = "A" if key[index] != "A" else "B"
    return key[:index] + replacement + key[index + 1 :]


@pytest.mark.parametrize("index", [8, 20, 39, 45])  # random part and checksum
def test_a_mistyped_character_fails_the_checksum(index: int) -> None:
    key = generate_key().key
    assert parse_key(_flip_one_character(key, index)) is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "sk_live_nope",
        "sk_live_1234567890abcdef",
        "pk_live_" + "a" * 38,
        "sk_prod_" + "a" * 38,
        "sk_live_" + "a" * 37,
        "sk_live_" + "a" * 39,
        "sk_live_" + "a" * 37 + "!",
        " " + "sk_live_" + "a" * 38,
    ],
)
def test_malformed_keys_are_refused_without_a_lookup(raw: str) -> None:
    assert parse_key(raw) is None


def test_the_checksum_is_case_sensitive() -> None:
    key = generate_key().key
    assert parse_key(key.upper()) is None or key.upper() == key


def test_digest_comparison() -> None:
    key = generate_key().key
    assert digests_match(digest(key), digest(key))
    assert not digests_match(digest(key), digest(key + "x"))
    assert display_prefix(key) in key
