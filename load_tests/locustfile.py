"""Realistic traffic for the watermark-removal API, judged against the contract.

Normally started by `load_tests/run.py` (own service, own keys, report). By hand, against a
service you started yourself on 127.0.0.1:

    .venv/bin/locust -f load_tests/locustfile.py --headless --host http://127.0.0.1:8080 \\
        -u 8 -r 2 -t 60s --keys-file keys.json --csv /tmp/load --csv-full-history

`keys.json` maps plan -> key, e.g. ``{"enterprise": "sk_...", "pro": "sk_...", "free": "sk_..."}``
(or put the same JSON in the `LOAD_TEST_KEYS` variable). Without keys every request goes
unauthenticated: useful only while the accounts layer is absent.

Who sends what:

- `Customer` (most users): remove-watermark with images of 256 px to 2048 px (mostly small),
  JPEG/PNG/WebP, a mask each (box, soft-edged, other size, empty); about one request in
  eight is deliberately wrong (no mask, broken or truncated file, too large, wrong field,
  missing or unknown key) and must get its documented 400/401. Each customer holds the
  key of one plan: enterprise for most, then the other non-free plans of the keys file.
- `FreePlanHammer` (one user): the free key, small images back to back, to see 429s.
- `Monitor` (one user): polls health, and stats for every key.

How responses are judged (`catch_response`), so that locust's failure count means "the
service broke its contract":

- the expected status of each request kind is a success: 200 for valid work, 400/401 for
  the deliberate mistakes, 429 whenever the key's plan is rate limited (anything but
  enterprise); 429 on the enterprise key, 5xx, and any other status are failures;
- every error body must be the envelope ``{"error", "detail", "status_code"}`` with the
  matching status and reason phrase; a 429 must carry `Retry-After`;
- a 200 result must be a PNG of the uploaded size (`X-Image-Size`), with `X-Request-Id`.

`--request-log FILE` writes one JSON line per request (time, name, status, latency, plan,
size, verdict); `run.py` builds its report from it and from locust's CSV files.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import random
import struct
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from locust import HttpUser, between, constant_pacing, events, task
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from urllib3 import encode_multipart_formdata

logger = logging.getLogger("load_tests")

REMOVE = "/api/v1/remove-watermark"
HEALTH = "/api/v1/health"
STATS = "/api/v1/stats"

# Request names as locust reports them: one per route, and one per deliberate-error or
# over-limit flavour of remove-watermark so that their latencies do not mix.
NAME_REMOVE = REMOVE
NAME_INVALID = f"{REMOVE} [invalid]"
NAME_OVER_LIMIT = f"{REMOVE} [free plan]"

# Image sides and how often customers send them: most uploads are small.
SIZES: list[tuple[tuple[int, int], int]] = [
    ((256, 256), 40),
    ((512, 512), 25),
    ((1280, 720), 12),
    ((1024, 1024), 15),
    ((2048, 2048), 8),
]
FORMATS: list[tuple[str, int]] = [("JPEG", 60), ("PNG", 25), ("WEBP", 15)]
MASKS: list[tuple[str, int]] = [("box", 70), ("soft", 17), ("half-size", 8), ("empty", 5)]
UNLIMITED_PLANS = frozenset({"enterprise"})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- command line ------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    parser.add_argument(
        "--keys-file",
        default="",
        env_var="LOCUST_KEYS_FILE",
        help='JSON {"plan": "key"}; else the LOAD_TEST_KEYS variable; else no keys',
    )
    parser.add_argument(
        "--request-log",
        default="",
        env_var="LOCUST_REQUEST_LOG",
        help="write one JSON line per request to this file",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=300.0,
        env_var="LOCUST_REQUEST_TIMEOUT",
        help="client timeout per request, seconds",
    )
    parser.add_argument(
        "--invalid-share",
        type=float,
        default=0.12,
        env_var="LOCUST_INVALID_SHARE",
        help="share of customer requests that are deliberately wrong (0..1)",
    )


# --- payloads, built once per process -----------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A ready multipart body and what the service must answer to it."""

    label: str
    body: bytes
    content_type: str
    size: tuple[int, int] | None = None
    expected_status: int = 200
    detail_hint: str = ""


@dataclass
class Payloads:
    valid: dict[tuple[tuple[int, int], str, str], Upload] = field(default_factory=dict)
    invalid: list[Upload] = field(default_factory=list)


def synthetic_photo(width: int, height: int, seed: int) -> Image.Image:
    """A smooth scene with mild noise and a semi-transparent text watermark across it."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = np.stack(
        [
            60 + 150 * xs / width,
            80 + 120 * ys / height,
            120 + 80 * np.sin(xs / (width / 6.0)) * np.cos(ys / (height / 5.0)),
        ],
        axis=-1,
    )
    scene += rng.normal(0, 4, size=scene.shape)
    picture = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8), "RGB")
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default(size=max(12, height // 10))
    draw.text((width * 3 // 25, height * 2 // 5), "SAMPLE", font=font, fill=(255, 255, 255, 140))
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def watermark_box(width: int, height: int) -> tuple[int, int, int, int]:
    """Where `synthetic_photo` writes its watermark, with a margin: (left, top, right, bottom).

    About 8% of the image, a typical share for a stock-photo text watermark.
    """
    return (width // 10, height * 19 // 50, width * 3 // 5, height * 27 // 50)


def mask_image(width: int, height: int, kind: str) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    if kind == "empty":
        return mask
    ImageDraw.Draw(mask).rectangle(watermark_box(width, height), fill=255)
    if kind == "soft":
        mask = mask.filter(ImageFilter.GaussianBlur(radius=max(2, width // 100)))
    elif kind == "half-size":
        mask = mask.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BILINEAR)
    return mask


def encoded(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, Any] = {"JPEG": {"quality": 88}, "WEBP": {"quality": 85}}.get(fmt, {})
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


EXTENSION = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}


def build_payloads() -> Payloads:
    started = time.perf_counter()
    payloads = Payloads()
    for index, ((width, height), _) in enumerate(SIZES):
        photo = synthetic_photo(width, height, seed=index)
        masks = {kind: encoded(mask_image(width, height, kind), "PNG") for kind, _ in MASKS}
        for fmt, _ in FORMATS:
            image_bytes = encoded(photo, fmt)
            extension, media_type = EXTENSION[fmt]
            for kind, mask_bytes in masks.items():
                body, content_type = encode_multipart_formdata(
                    {
                        "image": (f"photo.{extension}", image_bytes, media_type),
                        "mask": ("mask.png", mask_bytes, "image/png"),
                    }
                )
                payloads.valid[((width, height), fmt, kind)] = Upload(
                    label=f"{width}x{height} {fmt} {kind} mask",
                    body=body,
                    content_type=content_type,
                    size=(width, height),
                )
    payloads.invalid = build_invalid()
    logger.info(
        "payloads ready in %.1fs: %d valid (largest %.1f MB), %d invalid",
        time.perf_counter() - started,
        len(payloads.valid),
        max(len(u.body) for u in payloads.valid.values()) / 1e6,
        len(payloads.invalid),
    )
    return payloads


def build_invalid() -> list[Upload]:
    """Requests the service must refuse with 400, whatever the load."""
    photo = synthetic_photo(320, 240, seed=99)
    jpeg = encoded(photo, "JPEG")
    png = encoded(photo, "PNG")
    mask = encoded(mask_image(320, 240, "box"), "PNG")
    noise = np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    too_wide = encoded(Image.new("RGB", (4200, 8), (200, 30, 30)), "PNG")
    cases = [
        ("no mask", {"image": ("photo.jpg", jpeg, "image/jpeg")}, "mask is required"),
        (
            "not an image",
            {"image": ("photo.jpg", noise, "image/jpeg"), "mask": ("mask.png", mask, "image/png")},
            "",
        ),
        (
            "truncated png",
            {
                "image": ("photo.png", png[: len(png) // 2], "image/png"),
                "mask": ("mask.png", mask, "image/png"),
            },
            "",
        ),
        (
            "text as mask",
            {
                "image": ("photo.jpg", jpeg, "image/jpeg"),
                "mask": ("mask.png", b"white = remove\n" * 20, "image/png"),
            },
            "",
        ),
        (
            "wider than 4096 px",
            {"image": ("wide.png", too_wide, "image/png"), "mask": ("mask.png", mask, "image/png")},
            "",
        ),
        (
            "wrong field name",
            {"file": ("photo.jpg", jpeg, "image/jpeg"), "mask": ("mask.png", mask, "image/png")},
            "",
        ),
    ]
    uploads = []
    for label, fields, hint in cases:
        body, content_type = encode_multipart_formdata(fields)
        uploads.append(Upload(label, body, content_type, expected_status=400, detail_hint=hint))
    return uploads


PAYLOADS: Payloads | None = None
KEYS: dict[str, str] = {}
REQUEST_LOG: Any = None
OPTIONS: Any = None


def load_keys(path: str) -> dict[str, str]:
    if path:
        with open(path, encoding="utf-8") as source:
            raw = json.load(source)
    elif os.environ.get("LOAD_TEST_KEYS"):
        raw = json.loads(os.environ["LOAD_TEST_KEYS"])
    else:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise SystemExit('keys must be a JSON object {"plan": "key", ...}')
    return {str(plan).lower(): key for plan, key in raw.items()}


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    global PAYLOADS, KEYS, REQUEST_LOG, OPTIONS
    OPTIONS = environment.parsed_options
    if OPTIONS is None:  # locust used as a library without its parser
        return
    KEYS = load_keys(OPTIONS.keys_file)
    if not KEYS:
        logger.warning("no API keys: every request goes unauthenticated")
    else:
        logger.info("keys for plans: %s", ", ".join(sorted(KEYS)))
    if OPTIONS.request_log:
        REQUEST_LOG = open(OPTIONS.request_log, "a", encoding="utf-8")  # noqa: SIM115
    PAYLOADS = build_payloads()


@events.quitting.add_listener
def _on_quit(environment: Any, **_: Any) -> None:
    if REQUEST_LOG is not None:
        REQUEST_LOG.close()


@events.request.add_listener
def _log_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any,
    context: dict[str, Any],
    exception: BaseException | None,
    start_time: float,
    **_: Any,
) -> None:
    if REQUEST_LOG is None:
        return
    status = getattr(response, "status_code", 0) or 0
    record = {
        "t": round(start_time, 3),
        "method": request_type,
        "name": name,
        "status": status,
        "ms": round(response_time, 1),
        "ok": exception is None,
        **context,
    }
    if exception is not None:
        record["why"] = str(exception)[:300]
    if status and response is not None:
        processing = response.headers.get("X-Processing-Time")
        if processing:
            record["processing_s"] = float(processing)
    REQUEST_LOG.write(json.dumps(record) + "\n")


# --- judging ------------------------------------------------------------------------------


class Verdict(Exception):
    """Why a response breaks the contract (becomes the locust failure message)."""


def envelope_problem(response: Any) -> str | None:
    """None if the body is the documented error envelope for this status, else why not."""
    try:
        body = response.json()
    except ValueError:
        return f"non-JSON error body: {response.text[:120]!r}"
    if not isinstance(body, dict) or not {"error", "detail", "status_code"} <= set(body):
        return f"not the error envelope: {json.dumps(body)[:160]}"
    if body["status_code"] != response.status_code:
        return f"envelope status_code {body['status_code']} != HTTP {response.status_code}"
    phrase = HTTPStatus(response.status_code).phrase
    if body["error"] != phrase:
        return f"envelope error {body['error']!r} != {phrase!r}"
    if not isinstance(body["detail"], str) or not body["detail"]:
        return f"envelope detail is not a message: {body['detail']!r}"
    return None


def detail_of(response: Any) -> str:
    try:
        return str(response.json().get("detail", ""))[:160]
    except (ValueError, AttributeError):
        return response.text[:160]


def judge(response: Any, expected: set[int], *, hint: str = "") -> None:
    """Raise `Verdict` unless the status is expected and the body fits it."""
    status = response.status_code
    if not status:
        raise Verdict(f"no response: {response.error!r}"[:200])
    if status not in expected:
        want = "/".join(str(s) for s in sorted(expected))
        raise Verdict(f"HTTP {status} (expected {want}): {detail_of(response)}")
    if "X-Request-Id" not in response.headers:
        raise Verdict(f"HTTP {status} without X-Request-Id")
    if status >= 400:
        problem = envelope_problem(response)
        if problem:
            raise Verdict(f"HTTP {status} {problem}")
        if hint and status not in (401, 429) and hint not in detail_of(response).lower():
            raise Verdict(f"HTTP {status} detail lacks {hint!r}: {detail_of(response)}")
    if status == 429:
        retry_after = response.headers.get("Retry-After", "")
        if not retry_after.isdigit():
            raise Verdict(f"HTTP 429 without a whole-second Retry-After ({retry_after!r})")


def judge_image(response: Any, size: tuple[int, int]) -> None:
    if response.status_code != 200:
        return
    if response.headers.get("Content-Type") != "image/png" or not response.content.startswith(
        PNG_MAGIC
    ):
        raise Verdict(f"200 but not a PNG ({response.headers.get('Content-Type')})")
    expected = f"{size[0]}x{size[1]}"
    if response.headers.get("X-Image-Size") != expected:
        raise Verdict(f"X-Image-Size {response.headers.get('X-Image-Size')} != {expected}")
    # The PNG's own header (IHDR), not only the service's word: a result that belongs to
    # another request would still carry this request's X-Image-Size.
    width, height = struct.unpack(">II", response.content[16:24])
    if (width, height) != size:
        raise Verdict(f"result PNG is {width}x{height}, upload was {expected}")


def send(
    user: HttpUser,
    name: str,
    upload: Upload,
    *,
    key: str | None,
    plan: str,
    expected: set[int],
    context: dict[str, Any],
) -> None:
    headers = {"Content-Type": upload.content_type}
    if key is not None:
        headers["X-API-Key"] = key
    with user.client.post(
        REMOVE,
        data=upload.body,
        headers=headers,
        name=name,
        catch_response=True,
        timeout=OPTIONS.request_timeout,
        context={"plan": plan, "case": upload.label, **context},
    ) as response:
        try:
            judge(response, expected, hint=upload.detail_hint)
            if upload.size:
                judge_image(response, upload.size)
        except Verdict as verdict:
            response.failure(str(verdict))
        else:
            response.success()


def allowed_statuses(plan: str, wanted: int) -> set[int]:
    """`wanted`, plus 429 for keys whose plan is rate limited."""
    return {wanted} if plan in UNLIMITED_PLANS or plan == "none" else {wanted, 429}


def pick(weighted: list[tuple[Any, int]]) -> Any:
    return random.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


# --- users ------------------------------------------------------------------------------


def _customer_plans() -> itertools.cycle:
    """Enterprise for most customers, interleaved with the other non-free plans.

    With enterprise, basic and pro keys: enterprise, enterprise, basic, enterprise, pro, …
    so that even four customers cover two plans and six cover all three.
    """
    others = sorted(plan for plan in KEYS if plan not in UNLIMITED_PLANS | {"free"})
    main = sorted(plan for plan in KEYS if plan in UNLIMITED_PLANS)
    if not main:
        return itertools.cycle(others or ["none"])
    order = [main[0]]
    for other in others:
        order += [main[0], other]
    return itertools.cycle(order if others else main)


_plan_cycle: itertools.cycle | None = None


class Customer(HttpUser):
    """A paying customer cleaning images, with a few mistakes along the way."""

    weight = 10
    wait_time = between(0.5, 2.5)

    def on_start(self) -> None:
        global _plan_cycle
        if _plan_cycle is None:
            _plan_cycle = _customer_plans()
        self.plan = next(_plan_cycle)
        self.key = KEYS.get(self.plan)

    @task
    def remove_watermark(self) -> None:
        assert PAYLOADS is not None
        if random.random() < OPTIONS.invalid_share:
            self._mistake()
            return
        size, fmt, mask = pick(SIZES), pick(FORMATS), pick(MASKS)
        upload = PAYLOADS.valid[(size, fmt, mask)]
        send(
            self,
            NAME_REMOVE,
            upload,
            key=self.key,
            plan=self.plan,
            expected=allowed_statuses(self.plan, 200),
            context={"size": f"{size[0]}x{size[1]}", "format": fmt, "mask": mask},
        )

    def _mistake(self) -> None:
        assert PAYLOADS is not None
        upload = random.choice(PAYLOADS.invalid)
        if KEYS and random.random() < 0.25:
            # Authentication runs before anything else: a bad key is 401 whatever the body.
            missing = random.random() < 0.5
            label = "missing key" if missing else "unknown key"
            good = PAYLOADS.valid[((256, 256), "JPEG", "box")]
            upload = Upload(label, good.body, good.content_type, expected_status=401)
            key = None if missing else "sk_load_test_not_a_key_0000000000"
            send(self, NAME_INVALID, upload, key=key, plan="none", expected={401}, context={})
            return
        send(
            self,
            NAME_INVALID,
            upload,
            key=self.key,
            plan=self.plan,
            expected=allowed_statuses(self.plan, upload.expected_status),
            context={},
        )


class FreePlanHammer(HttpUser):
    """One free-plan client sending small images as fast as it gets answers."""

    fixed_count = 1
    wait_time = between(0.1, 0.4)

    def on_start(self) -> None:
        if "free" not in KEYS:
            logger.warning("no free-plan key: FreePlanHammer stays idle")
            # Idle in wait_time, which a stopping run interrupts (a sleeping task is waited for).
            self.wait_time = lambda: 3600.0  # type: ignore[method-assign]

    @task
    def hammer(self) -> None:
        assert PAYLOADS is not None
        if "free" not in KEYS:
            return
        send(
            self,
            NAME_OVER_LIMIT,
            PAYLOADS.valid[((256, 256), "JPEG", "box")],
            key=KEYS["free"],
            plan="free",
            expected={200, 429},
            context={"size": "256x256", "format": "JPEG", "mask": "box"},
        )


class Monitor(HttpUser):
    """Health probes as a load balancer would send them, and each key's stats."""

    fixed_count = 1
    wait_time = constant_pacing(2.0)

    def on_start(self) -> None:
        self.stats_turn = itertools.cycle(sorted(KEYS.items()))

    @task(3)
    def health(self) -> None:
        with self.client.get(HEALTH, name=HEALTH, catch_response=True, timeout=30) as response:
            try:
                judge(response, {200})
                body = response.json()
                if body.get("status") != "healthy":
                    raise Verdict(f"health 200 but status {body.get('status')!r}")
            except (Verdict, ValueError) as verdict:
                response.failure(str(verdict))

    @task(1)
    def stats(self) -> None:
        if not KEYS:
            return
        plan, key = next(self.stats_turn)
        with self.client.get(
            STATS,
            name=STATS,
            headers={"X-API-Key": key},
            catch_response=True,
            timeout=30,
            context={"plan": plan},
        ) as response:
            try:
                judge(response, allowed_statuses(plan, 200))
                if response.status_code == 200:
                    body = response.json()
                    if body["total"] != body["success"] + body["failed"]:
                        raise Verdict(f"stats total != success + failed: {body}")
            except (Verdict, ValueError, KeyError) as verdict:
                response.failure(str(verdict)[:200])
