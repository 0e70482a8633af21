"""The SSRF guard's pieces and the webhook signature, without a server.

The table of hostile URLs, through the route, is in tests/api/test_job_routes.py.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import random
import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from jobs.callback_urls import (
    RefusedCallback,
    check_callback,
    parse_callback_url,
    pinned_request,
    refusal_of,
)
from jobs.webhooks import RetrySchedule, sign, signed_headers

pytestmark = pytest.mark.anyio

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def resolver(*answers: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return list(answers)

    return resolve


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a00:1", "2002:a00:1::", "::ffff:127.0.0.1", "2001:db8::1", "100.64.0.1"],
)
def test_addresses_python_may_call_global_are_still_refused(address: str) -> None:
    assert refusal_of(ipaddress.ip_address(address)) is not None


def test_public_addresses_pass_and_allowed_ranges_override() -> None:
    for public in ("8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808"):
        assert refusal_of(ipaddress.ip_address(public)) is None
    assert refusal_of(ipaddress.ip_address("127.0.0.1"), LOOPBACK) is None
    assert refusal_of(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK) is None
    assert refusal_of(ipaddress.ip_address("10.0.0.1"), LOOPBACK) is not None


async def test_every_answer_of_the_name_must_be_public() -> None:
    with pytest.raises(RefusedCallback, match=r"hooks\.example resolves to 10\.1\.2\.3"):
        await check_callback("https://hooks.example/x", resolver=resolver("8.8.8.8", "10.1.2.3"))
    checked = await check_callback(
        "https://hooks.example/x", resolver=resolver("8.8.8.8", "1.1.1.1")
    )
    assert str(checked.address) == "8.8.8.8"  # the address the delivery connects to


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(RefusedCallback, match="cannot be resolved"):
        await check_callback("https://nowhere.example/", resolver=resolver())

    async def hanging(host: str, port: int) -> list[str]:
        await asyncio.sleep(10)
        return ["8.8.8.8"]

    started = time.monotonic()
    with pytest.raises(RefusedCallback, match="cannot be resolved"):
        await check_callback("https://slow.example/", resolver=hanging, timeout_s=0.1)
    assert time.monotonic() - started < 2


async def test_the_delivery_goes_to_the_checked_address_with_the_urls_host() -> None:
    async with httpx.AsyncClient() as client:
        checked = await check_callback(
            "https://Hooks.Example:8443//elsewhere.example/path?q=1",
            resolver=resolver("93.184.216.34"),
        )
        request = pinned_request(client, checked, body=b"{}", headers={"x-test": "1"})
        assert request.url.host == "93.184.216.34"  # not a second DNS answer
        assert request.url.port == 8443
        assert request.url.raw_path == b"//elsewhere.example/path?q=1"  # a path, not a host
        assert request.headers["host"] == "hooks.example:8443"
        assert request.extensions["sni_hostname"] == "hooks.example"  # TLS checks the name
        mapped = await check_callback("http://[::ffff:127.0.0.1]:9/", allowed=LOOPBACK)
        plain = pinned_request(client, mapped, body=b"", headers={})
        assert (plain.url.host, plain.headers["host"]) == ("127.0.0.1", "[::ffff:127.0.0.1]:9")
        assert "sni_hostname" not in plain.extensions


def test_the_form_of_a_url_is_checked_before_anything_is_resolved() -> None:
    assert parse_callback_url("HTTPS://Example.COM./a").host == "example.com"
    assert parse_callback_url("http://bücher.example/").host == "xn--bcher-kva.example"
    for refused in (
        "http://[fe80::1%25eth0]/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "javascript:alert(1)",
        "http://a@b/",
    ):
        with pytest.raises(RefusedCallback):
            parse_callback_url(refused)


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    body = b'{"type":"job.succeeded"}'
    now = int(time.time())
    headers = signed_headers([SECRET, OTHER_SECRET], "msg_job_1", now, body)
    assert Webhook(SECRET).verify(body, headers) == {"type": "job.succeeded"}
    assert Webhook(OTHER_SECRET).verify(body, headers) == {"type": "job.succeeded"}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", headers)
    third = "whsec_" + base64.b64encode(b"t" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(third).verify(body, headers)
    assert sign([SECRET], "msg_job_1", now, body) == headers["webhook-signature"].split(" ")[0]


def test_the_retry_schedule_jitters_each_delay_and_ends() -> None:
    schedule = RetrySchedule((5.0, 300.0))
    rng = random.Random(7)
    delays = [schedule.delay_after(1, rng) for _ in range(200)]
    assert all(4.0 <= delay <= 6.0 for delay in delays)  # type: ignore[operator]
    assert len({round(delay, 3) for delay in delays}) > 100  # type: ignore[arg-type]
    assert 240.0 <= schedule.delay_after(2, rng) <= 360.0  # type: ignore[operator]
    assert schedule.delay_after(3, rng) is None  # given up
