"""Client-side pacing: send a spending request only when the server's bucket has a token.

The server limits each key with a token bucket (capacity = burst, refilled at a steady
rate) and says on every response where the bucket stands:

- ``X-RateLimit-Limit``: the capacity ``L``;
- ``X-RateLimit-Remaining``: whole tokens ``R`` left after this request;
- ``X-RateLimit-Reset``: Unix time ``T`` at which the bucket will be full again;
- ``Retry-After`` (on a 429): seconds until the next token.

`Pacer` keeps a model of that bucket from those headers alone, so it works for any plan:

- The time to refill one token, ``interval``, is learned from ``T``: the bucket lacks
  between ``L - R - 1`` and ``L - R`` tokens and is full ``T - now`` seconds from now (less
  a slack: ``T`` is rounded up, and the clocks may differ a little), which bounds
  ``interval`` on both sides. The
  bounds of successive responses are intersected; the lower bound is used, because the
  next token is predicted by counting back from ``T``: ``T - (L - R - 1) * interval``, and
  a smaller interval puts that moment later, never earlier.
- Requests still in flight when a response arrives may or may not be counted in it; they
  are assumed not to be (they will each take a token), until a later response shows they
  were.
- Responses can arrive out of order. The bucket's full time only moves forward as the
  server admits requests, so a response whose ``T`` is older than the one the model rests
  on is stale and only settles which in-flight requests the model already covers.
- ``T`` is on the server's clock; the local one stands in for it unless the ``Date``
  header disagrees by more than `CLOCK_SKEW_TOLERANCE_S` (machines kept by NTP agree far
  better than that).
- A 429 blocks everything until its ``Retry-After`` has passed; then one request goes, and
  the next waits for its headers.
- Before anything is known, one request goes alone (a probe); the others wait for its
  headers. Answers without any rate-limit headers turn pacing off until some arrive.

Limits: ``Reset`` has whole seconds (and the clocks may differ a little), so the interval
is only learned when a full bucket takes a few seconds to refill (burst x interval beyond
about two seconds: every named plan). For faster limits with a small burst, requests
meet 429s that are waited out (``Retry-After``) and retried, never surfaced while the
call's wait budget lasts.

`Pacer` is plain arithmetic on an injected clock; `client.py` and `async_client.py` wrap it
with a lock and the waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

# Below this disagreement with the server's Date header the local clock is trusted (NTP
# keeps machines far closer); above it the clocks are taken to be out of sync. Date is a
# poor clock: whole seconds, and servers cache it (uvicorn under load was seen seconds
# behind), so it only corrects gross errors.
CLOCK_SKEW_TOLERANCE_S = 30.0

# Seconds `X-RateLimit-Reset - now` may overstate the real refill time: Reset is rounded
# up (1 s), plus what the two clocks may disagree by unnoticed (1 s on the local clock; on
# a Date-corrected one, Date's rounding and staleness).
RESET_SLACK_S = 2.0
RESET_SLACK_FROM_DATE_S = 6.0

# Shortest wait `delay` returns: a wait that rounds to nothing would only spin.
MIN_DELAY_S = 0.001

# A small fraction of a token: predictions land at the exact moment a token arrives, and
# float arithmetic must not turn that into "not yet" forever.
TOKEN_EPSILON = 1e-6


@dataclass(frozen=True)
class RateLimitHeaders:
    """The rate-limit headers of one response (None where a header was absent)."""

    limit: int | None
    remaining: int | None
    reset: float | None  # Unix seconds, server clock
    retry_after: float | None
    server_date: float | None  # Unix seconds from the Date header
    processing_time: float | None  # X-Processing-Time: seconds the server spent after deciding

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        lowered = {name.lower(): value for name, value in headers.items()}
        return cls(
            limit=_int(lowered.get("x-ratelimit-limit")),
            remaining=_int(lowered.get("x-ratelimit-remaining")),
            reset=_float(lowered.get("x-ratelimit-reset")),
            retry_after=_float(lowered.get("retry-after")),
            server_date=_http_date(lowered.get("date")),
            processing_time=_float(lowered.get("x-processing-time")),
        )


@dataclass
class Ticket:
    """Permission to send one spending request; hand it back through `Pacer.observe`."""

    seq: int
    cost: int
    granted_at: float  # Unix seconds, local clock: no later than the server's decision


@dataclass
class _Anchor:
    """The bucket as one accepted response showed it."""

    at: float  # local monotonic seconds when the response arrived
    tokens: float  # estimated tokens at `at`, before `debt`
    limit: int
    reset: float  # the response's X-RateLimit-Reset (orders responses)
    horizon: int  # highest ticket seq granted when the response arrived
    uncovered: set[int] = field(default_factory=set)  # in-flight seqs it may not count
    refills: bool = True  # False after a 429: one token at its Retry-After, then wait for news


@dataclass(frozen=True)
class RateLimitSnapshot:
    """What the pacer has learned about the key's limit (None where it does not know)."""

    limit: int | None
    interval: float | None  # seconds per token (lower bound of what the headers allow)
    interval_upper: float | None
    remaining: float | None  # estimated tokens now, after requests in flight

    def minimum_seconds(self, requests: int) -> float | None:
        """Least time `requests` spending requests can take from a full bucket: (N - B) / rate."""
        if self.limit is None or self.interval is None:
            return None
        return max(0, requests - self.limit) * self.interval


class Pacer:
    """Model of the server's token bucket for one API key (see the module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._seq = 0
        self._in_flight: dict[int, Ticket] = {}
        self._anchor: _Anchor | None = None
        self._debt = 0  # tokens that requests granted since the anchor will take
        self._blocked_until = 0.0
        self._interval_low = 0.0
        self._interval_high = math.inf
        self._limit: int | None = None
        self._headerless = False  # an answer came without rate-limit headers, none with

    # -- deciding ------------------------------------------------------------------------

    def delay(self, cost: int = 1) -> float | None:
        """Seconds to wait before `cost` tokens are there: 0 = go now, None = wait for a response.

        None only while a request is in flight whose answer will tell more; with nothing in
        flight the answer is always a number, so a caller can never wait forever.
        """
        now = self._clock()
        if self._blocked_until > now:
            return max(MIN_DELAY_S, self._blocked_until - now)
        anchor = self._anchor
        if anchor is None:
            if self._headerless:
                return 0.0  # answers carry no rate-limit headers: nothing to pace by
            return None if self._in_flight else 0.0
        if cost > anchor.limit:
            return 0.0  # can never be covered: let the server decide
        available = self._tokens(anchor, now) - self._debt
        if available + TOKEN_EPSILON >= cost:
            return 0.0
        interval = self.interval
        capacity_left = anchor.limit - self._debt
        if interval is None or capacity_left + TOKEN_EPSILON < cost:
            # Refill alone cannot get there (or its speed is unknown): an answer in flight
            # will; with none in flight, ask the server.
            return None if self._in_flight else 0.0
        return max(MIN_DELAY_S, (cost - available) * interval)

    def grant(self, cost: int = 1) -> Ticket:
        """Record that a spending request is being sent now."""
        self._seq += 1
        ticket = Ticket(self._seq, cost, self._wall_clock())
        self._in_flight[ticket.seq] = ticket
        self._debt += cost
        return ticket

    # -- learning ------------------------------------------------------------------------

    def observe(
        self,
        ticket: Ticket,
        status_code: int,
        headers: Mapping[str, str],
        *,
        quota_refusal: bool = False,
    ) -> None:
        """Learn from the response to `ticket`'s request.

        `quota_refusal`: the response is a 429 from the quota (its Retry-After is the start
        of the next quota period and says nothing about the bucket).
        """
        self._in_flight.pop(ticket.seq, None)
        seen = RateLimitHeaders.parse(headers)
        if status_code == 429:
            self._observe_refusal(seen, quota_refusal=quota_refusal)
            return
        if seen.limit is None or seen.remaining is None or seen.reset is None:
            # No headers: refused before the limiter ran (no token taken), or a server or
            # proxy that sends none.
            self._forget(ticket)
            self._headerless = self._anchor is None
            return
        anchor = self._anchor
        sent_after_anchor = anchor is None or ticket.seq > anchor.horizon
        if not sent_after_anchor and anchor is not None and seen.reset <= anchor.reset:
            # Decided no later than the anchor's own request: the anchor already counts it.
            if ticket.seq in anchor.uncovered:
                anchor.uncovered.discard(ticket.seq)
                self._debt -= ticket.cost
            return
        self._rest_on(ticket, seen)

    def abandon(self, ticket: Ticket) -> None:
        """The request got no response (a connection error): whether it spent is unknown.

        Its token stays counted as spent until a later response says otherwise.
        """
        self._in_flight.pop(ticket.seq, None)

    def snapshot(self) -> RateLimitSnapshot:
        anchor = self._anchor
        remaining = None
        if anchor is not None:
            remaining = max(0.0, self._tokens(anchor, self._clock()) - self._debt)
        return RateLimitSnapshot(
            limit=self._limit,
            interval=self.interval,
            interval_upper=None if math.isinf(self._interval_high) else self._interval_high,
            remaining=remaining,
        )

    @property
    def interval(self) -> float | None:
        """Seconds per token, as far as the headers tell (None until they do)."""
        return self._interval_low if self._interval_low > 0 else None

    # -- internals -----------------------------------------------------------------------

    def _tokens(self, anchor: _Anchor, now: float) -> float:
        interval = self.interval
        if interval is None or not anchor.refills:
            return anchor.tokens
        return min(float(anchor.limit), anchor.tokens + (now - anchor.at) / interval)

    def _server_offset(self, server_date: float | None) -> float:
        """Seconds the server's clock is ahead of ours (0 while they agree)."""
        if server_date is None:
            return 0.0
        offset = server_date - self._wall_clock()
        return offset if abs(offset) > CLOCK_SKEW_TOLERANCE_S else 0.0

    def _rest_on(self, ticket: Ticket, seen: RateLimitHeaders) -> None:
        assert seen.limit is not None and seen.remaining is not None and seen.reset is not None
        limit, remaining = seen.limit, seen.remaining
        if limit != self._limit:
            self._limit = limit  # a new plan: what was learned about the old one is void
            self._interval_low, self._interval_high = 0.0, math.inf
        # Seconds until full, counted from the response's arrival (the server decided
        # earlier, at least its processing time earlier: short of the truth) and from the
        # request's sending (long of it).
        offset = self._server_offset(seen.server_date)
        full_in = max(0.0, seen.reset - (self._wall_clock() + offset))
        processed = max(0.0, seen.processing_time or 0.0)
        full_in_at_decision = max(0.0, seen.reset - (self._wall_clock() + offset - processed))
        full_in_from_send = max(0.0, seen.reset - (ticket.granted_at + offset))
        missing = limit - remaining
        slack = RESET_SLACK_S if offset == 0.0 else RESET_SLACK_FROM_DATE_S
        # The quota, not the bucket, speaks when the bucket is full but Remaining is short
        # of it, or when Reset lies beyond the longest refill the bucket could need (a spent
        # quota's Reset is the start of the next quota period).
        capped_by_quota = (full_in <= 1.0 and missing > 1) or (
            full_in > limit * self._interval_high + slack
        )
        if missing > 0 and not capped_by_quota:
            # The bucket lacks between missing - 1 and missing tokens at the decision.
            self._bound_interval(
                low=max(0.0, (full_in_at_decision - slack) / missing),
                high=full_in_from_send / (missing - 1) if missing > 1 else math.inf,
            )
        interval = self.interval
        tokens = float(remaining)
        if interval is not None:
            tokens = min(float(limit), max(tokens, limit - full_in / interval))
        self._anchor = _Anchor(
            at=self._clock(),
            tokens=tokens,
            limit=limit,
            reset=seen.reset,
            horizon=self._seq,
            uncovered=set(self._in_flight),
        )
        self._debt = sum(ticket.cost for ticket in self._in_flight.values())

    def _observe_refusal(self, seen: RateLimitHeaders, *, quota_refusal: bool) -> None:
        now = self._clock()
        retry_after = seen.retry_after if seen.retry_after is not None else 1.0
        self._blocked_until = max(self._blocked_until, now + retry_after)
        if seen.limit is not None and seen.limit != self._limit:
            self._limit = seen.limit
            self._interval_low, self._interval_high = 0.0, math.inf
        if seen.retry_after is not None and retry_after > 1 and not quota_refusal:
            # Retry-After = ceil((1 - tokens) * interval) with tokens in [0, 1): the interval
            # is longer than Retry-After - 1 (a quota refusal's hours say nothing about it).
            self._bound_interval(low=retry_after - 1.0, high=math.inf)
        limit = seen.limit or (self._anchor.limit if self._anchor else 1)
        previous_reset = self._anchor.reset if self._anchor else -math.inf
        # The model was too hopeful: once Retry-After has passed, one request goes, and the
        # next waits for the headers of an admitted one (the interval may be off; a refill
        # estimated from it could send several into another 429).
        self._anchor = _Anchor(
            at=now,
            tokens=1.0,
            limit=limit,
            reset=previous_reset,  # a 429's Reset may be "now + Retry-After": not an order key
            horizon=self._seq,
            uncovered=set(self._in_flight),
            refills=False,
        )
        self._debt = sum(t.cost for t in self._in_flight.values())

    def _forget(self, ticket: Ticket) -> None:
        anchor = self._anchor
        if anchor is None or ticket.seq > anchor.horizon or ticket.seq in anchor.uncovered:
            self._debt = max(0, self._debt - ticket.cost)
            if anchor is not None:
                anchor.uncovered.discard(ticket.seq)

    def _bound_interval(self, *, low: float, high: float) -> None:
        new_low = max(self._interval_low, low)
        new_high = min(self._interval_high, high)
        if new_low > new_high:
            # The bounds contradict (the plan changed under the same burst, or the clocks
            # jumped): trust the newest response alone.
            new_low, new_high = low, high
        self._interval_low, self._interval_high = new_low, new_high


def _int(value: str | None) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
