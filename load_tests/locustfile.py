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
  eight is deliberately wrong (no mask on a photo without a watermark, broken or truncated
  file, too large, wrong field, missing or unknown key) and must get its documented
  400/401/422. Each customer holds the
  key of one plan: enterprise for most, then the other non-free plans of the keys file.
- `FreePlanHammer` (one user): the free key, small images back to back, to see 429s.
- `Monitor` (one user): polls health, and stats for every key.
- `JobCustomer` (one user): the same uploads as jobs (`POST /api/v1/jobs`), polling each
  until it ends, then fetching its result (a PNG of the uploaded size).
- `BatchCustomer` (one user): batches of `BATCH_SIZE` small photos (`POST /api/v1/batch`,
  N tokens each), polling until completed, then fetching the ZIP.

How responses are judged (`catch_response`), so that locust's failure count means "the
service broke its contract":

- the expected status of each request kind is a success: 200 for valid work, 400/401/422 for
  the deliberate mistakes, 429 whenever the key's plan is rate limited (anything but
  enterprise); 429 on the enterprise key, 5xx, and any other status are failures;
- every error body must be the envelope ``{"error", "detail", "status_code"}`` with the
  matching status and reason phrase; a 429 must carry `Retry-After`;
- a 200 result must be a PNG of the uploaded size (`X-Image-Size`), with `X-Request-Id`;
- a job must be the documented body (202 with its `Location`), end within the request
  timeout, and succeed; a batch must list one job per image and its ZIP one PNG per success.

`--request-log FILE` writes one JSON line per request (time, name, status, latency, plan,
size, verdict); `run.py` builds its report from it and from locust's CSV files.

This file holds the users and what they send; the request names and the traffic mix are in
`traffic.py` (the report reads them too), the bodies in `payloads.py`, the checks in
`contract.py`. Locust runs every `HttpUser` class defined (or imported) here.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from locust import HttpUser, between, constant_pacing, events, task

# Locust imports this file by path: make the `load_tests` package importable from any directory.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load_tests.contract import (
    Verdict,
    allowed_statuses,
    judge,
    judge_batch,
    judge_image,
    judge_job,
    judge_zip,
)
from load_tests.payloads import PayloadKey, Payloads, Upload, build_payloads
from load_tests.traffic import (
    BATCH,
    BATCH_SIZE,
    FORMATS,
    HEALTH,
    JOB_POLL_S,
    JOBS,
    MASKS,
    NAME_BATCH_RESULT,
    NAME_BATCH_STATUS,
    NAME_BATCH_SUBMIT,
    NAME_INVALID,
    NAME_JOB_RESULT,
    NAME_JOB_STATUS,
    NAME_JOB_SUBMIT,
    NAME_OVER_LIMIT,
    NAME_REMOVE,
    NO_KEY_PLAN,
    OVER_LIMIT_PLAN,
    REMOVE,
    SIZES,
    STATS,
    UNLIMITED_PLANS,
    size_label,
)

logger = logging.getLogger("load_tests")

SMALL_UPLOAD: PayloadKey = ((256, 256), "JPEG", "box")
"""The body of the over-limit client and of the wrong-key mistakes: cheap to send and serve."""


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


# --- state, set up once per process -----------------------------------------------------


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


# --- sending -----------------------------------------------------------------------------


@contextmanager
def judged(response: Any) -> Iterator[None]:
    """Mark `response` failed with the reason if the block finds it breaks the contract."""
    try:
        yield
    except (Verdict, ValueError, KeyError) as verdict:
        response.failure(str(verdict))
    else:
        response.success()


def post_remove_watermark(
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
    with (
        user.client.post(
            REMOVE,
            data=upload.body,
            headers=headers,
            name=name,
            catch_response=True,
            timeout=OPTIONS.request_timeout,
            context={"plan": plan, "case": upload.label, **context},
        ) as response,
        judged(response),
    ):
        judge(response, expected, hint=upload.detail_hint)
        if upload.size:
            judge_image(response, upload.size)


def upload_context(key: PayloadKey) -> dict[str, Any]:
    """What the request log records about a valid upload, for the per-size report."""
    size, fmt, mask = key
    return {"size": size_label(size), "format": fmt, "mask": mask}


def pick(weighted: list[tuple[Any, int]]) -> Any:
    return random.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


# --- users ------------------------------------------------------------------------------


def _customer_plans() -> itertools.cycle:
    """Enterprise for most customers, interleaved with the other non-free plans.

    With enterprise, basic and pro keys: enterprise, enterprise, basic, enterprise, pro, …
    so that even four customers cover two plans and six cover all three.
    """
    others = sorted(plan for plan in KEYS if plan not in UNLIMITED_PLANS | {OVER_LIMIT_PLAN})
    main = sorted(plan for plan in KEYS if plan in UNLIMITED_PLANS)
    if not main:
        return itertools.cycle(others or [NO_KEY_PLAN])
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
        chosen = (pick(SIZES), pick(FORMATS), pick(MASKS))
        post_remove_watermark(
            self,
            NAME_REMOVE,
            PAYLOADS.valid[chosen],
            key=self.key,
            plan=self.plan,
            expected=allowed_statuses(self.plan, 200),
            context=upload_context(chosen),
        )

    def _mistake(self) -> None:
        assert PAYLOADS is not None
        upload = random.choice(PAYLOADS.invalid)
        if KEYS and random.random() < 0.25:
            # Authentication runs before anything else: a bad key is 401 whatever the body.
            missing = random.random() < 0.5
            label = "missing key" if missing else "unknown key"
            good = PAYLOADS.valid[SMALL_UPLOAD]
            upload = Upload(label, good.body, good.content_type, expected_status=401)
            key = None if missing else "sk_load_test_not_a_key_0000000000"
            post_remove_watermark(
                self, NAME_INVALID, upload, key=key, plan=NO_KEY_PLAN, expected={401}, context={}
            )
            return
        post_remove_watermark(
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
        if OVER_LIMIT_PLAN not in KEYS:
            logger.warning("no free-plan key: FreePlanHammer stays idle")
            # Idle in wait_time, which a stopping run interrupts (a sleeping task is waited for).
            self.wait_time = lambda: 3600.0  # type: ignore[method-assign]

    @task
    def hammer(self) -> None:
        assert PAYLOADS is not None
        if OVER_LIMIT_PLAN not in KEYS:
            return
        post_remove_watermark(
            self,
            NAME_OVER_LIMIT,
            PAYLOADS.valid[SMALL_UPLOAD],
            key=KEYS[OVER_LIMIT_PLAN],
            plan=OVER_LIMIT_PLAN,
            expected={200, 429},
            context=upload_context(SMALL_UPLOAD),
        )


class Monitor(HttpUser):
    """Health probes as a load balancer would send them, and each key's stats."""

    fixed_count = 1
    wait_time = constant_pacing(2.0)

    def on_start(self) -> None:
        self.stats_turn = itertools.cycle(sorted(KEYS.items()))

    @task(3)
    def health(self) -> None:
        with (
            self.client.get(HEALTH, name=HEALTH, catch_response=True, timeout=30) as response,
            judged(response),
        ):
            judge(response, {200})
            body = response.json()
            if body.get("status") != "healthy":
                raise Verdict(f"health 200 but status {body.get('status')!r}")

    @task(1)
    def stats(self) -> None:
        if not KEYS:
            return
        plan, key = next(self.stats_turn)
        with (
            self.client.get(
                STATS,
                name=STATS,
                headers={"X-API-Key": key},
                catch_response=True,
                timeout=30,
                context={"plan": plan},
            ) as response,
            judged(response),
        ):
            judge(response, allowed_statuses(plan, 200))
            if response.status_code == 200:
                body = response.json()
                if body["total"] != body["success"] + body["failed"]:
                    raise Verdict(f"stats total != success + failed: {json.dumps(body)[:160]}")


# --- job and batch users -------------------------------------------------------------------


def job_key() -> tuple[str, str | None]:
    """The plan and key job users submit with: the unlimited one when there is one."""
    for plan in sorted(UNLIMITED_PLANS):
        if plan in KEYS:
            return plan, KEYS[plan]
    plan = next(iter(sorted(KEYS)), NO_KEY_PLAN)
    return plan, KEYS.get(plan)


class JobCustomer(HttpUser):
    """A customer who submits uploads as jobs, polls each until it ends, and fetches it."""

    fixed_count = 1
    wait_time = between(0.5, 2.5)

    def on_start(self) -> None:
        self.plan, self.key = job_key()
        self.headers = {"X-API-Key": self.key} if self.key else {}

    @task
    def submit_and_collect(self) -> None:
        assert PAYLOADS is not None
        chosen = (pick(SIZES), pick(FORMATS), "box")
        upload = PAYLOADS.valid[chosen]
        with (
            self.client.post(
                JOBS,
                data=upload.body,
                headers={**self.headers, "Content-Type": upload.content_type},
                name=NAME_JOB_SUBMIT,
                catch_response=True,
                timeout=OPTIONS.request_timeout,
                context={"plan": self.plan, "case": upload.label, "units": 1},
            ) as response,
            judged(response),
        ):
            judge(response, allowed_statuses(self.plan, 202))
            job = judge_job(response, submitted=True) if response.status_code == 202 else None
        if job is None:
            return
        ended = self._poll(job["id"])
        if ended is None or ended["status"] != "succeeded":
            return
        with (
            self.client.get(
                f"{JOBS}/{job['id']}/result",
                headers=self.headers,
                name=NAME_JOB_RESULT,
                catch_response=True,
                timeout=OPTIONS.request_timeout,
                context={"plan": self.plan, **upload_context(chosen)},
            ) as response,
            judged(response),
        ):
            judge(response, {200})
            assert upload.size is not None
            judge_image(response, upload.size)

    def _poll(self, job_id: str) -> dict[str, Any] | None:
        """The job once ended (its outcome in the request log), or None (a failure logged)."""
        deadline = time.monotonic() + OPTIONS.request_timeout
        while True:
            ended, polling = None, False
            with (
                self.client.get(
                    f"{JOBS}/{job_id}",
                    headers=self.headers,
                    name=NAME_JOB_STATUS,
                    catch_response=True,
                    timeout=30,
                    context={"plan": self.plan},
                ) as response,
                judged(response),
            ):
                judge(response, {200})
                body = judge_job(response)
                if body["status"] in ("queued", "running"):
                    if time.monotonic() > deadline:
                        raise Verdict(f"job still {body['status']} after the request timeout")
                    polling = True
                else:
                    outcome = "succeeded" if body["status"] == "succeeded" else "failed"
                    response.request_meta["context"]["job_outcome"] = {outcome: 1}
                    if body["status"] != "succeeded":
                        raise Verdict(f"job ended {body['status']}: {body['error']}")
                    ended = body
            if not polling:
                return ended
            time.sleep(JOB_POLL_S)


class BatchCustomer(HttpUser):
    """A customer who sends small batches, waits for each to complete, and fetches the ZIP."""

    fixed_count = 1
    wait_time = between(2.0, 5.0)

    def on_start(self) -> None:
        self.plan, self.key = job_key()
        self.headers = {"X-API-Key": self.key} if self.key else {}

    @task
    def submit_and_collect(self) -> None:
        assert PAYLOADS is not None and PAYLOADS.batch is not None
        upload = PAYLOADS.batch
        with (
            self.client.post(
                BATCH,
                data=upload.body,
                headers={**self.headers, "Content-Type": upload.content_type},
                name=NAME_BATCH_SUBMIT,
                catch_response=True,
                timeout=OPTIONS.request_timeout,
                context={"plan": self.plan, "case": upload.label, "units": BATCH_SIZE},
            ) as response,
            judged(response),
        ):
            judge(response, allowed_statuses(self.plan, 202))
            batch = judge_batch(response, BATCH_SIZE) if response.status_code == 202 else None
        if batch is None:
            return
        summary = self._poll(batch["id"])
        if summary is None:
            return
        with (
            self.client.get(
                f"{BATCH}/{batch['id']}/result",
                headers=self.headers,
                name=NAME_BATCH_RESULT,
                catch_response=True,
                timeout=OPTIONS.request_timeout,
                context={"plan": self.plan},
            ) as response,
            judged(response),
        ):
            judge(response, {200})
            judge_zip(response, summary["succeeded"])

    def _poll(self, batch_id: str) -> dict[str, int] | None:
        """The summary once completed (its outcome in the request log), or None."""
        deadline = time.monotonic() + OPTIONS.request_timeout
        while True:
            completed, polling = None, False
            with (
                self.client.get(
                    f"{BATCH}/{batch_id}",
                    headers=self.headers,
                    name=NAME_BATCH_STATUS,
                    catch_response=True,
                    timeout=30,
                    context={"plan": self.plan},
                ) as response,
                judged(response),
            ):
                judge(response, {200})
                body = judge_batch(response, BATCH_SIZE)
                summary = body["summary"]
                if body["status"] != "completed":
                    if time.monotonic() > deadline:
                        raise Verdict(f"batch still {body['status']} after the request timeout")
                    polling = True
                else:
                    response.request_meta["context"]["job_outcome"] = {
                        "succeeded": summary["succeeded"] + summary["expired"],
                        "failed": summary["failed"] + summary["canceled"],
                    }
                    if summary["succeeded"] != BATCH_SIZE:
                        raise Verdict(f"batch completed with {json.dumps(summary)}")
                    completed = summary
            if not polling:
                return completed
            time.sleep(JOB_POLL_S)
