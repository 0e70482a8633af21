'use strict';
/**
 * Client-side pacing: send a spending request only when the server's bucket has a token.
 * The same model as the Python SDK's `iopaint_sdk.pacing` (read its docstring for the why):
 *
 * - X-RateLimit-Limit L, X-RateLimit-Remaining R (whole tokens after this request),
 *   X-RateLimit-Reset T (Unix seconds, bucket full again), Retry-After on a 429;
 * - the seconds per token are bounded from T on every answer; the lower bound is used,
 *   counting back from T, which never predicts a token early;
 * - requests in flight when an answer arrives are assumed not counted in it, until a later
 *   answer (a larger T: decisions only move T forward) shows otherwise;
 * - a 429 holds every request until its Retry-After, then lets one go and waits for its
 *   headers; before anything is known one request
 *   goes alone; answers without any rate-limit headers turn pacing off.
 */

// The local clock is trusted unless the server's Date header disagrees by more than this
// (Date has whole seconds and servers cache it: it only corrects gross errors).
const CLOCK_SKEW_TOLERANCE_S = 30;
// Seconds Reset - now may overstate the real refill time (rounding, unnoticed skew).
const RESET_SLACK_S = 2;
const RESET_SLACK_FROM_DATE_S = 6;
const MIN_DELAY_S = 0.001;
const TOKEN_EPSILON = 1e-6;

function parseHeaders(headers) {
  const get = (name) => headers[name] ?? null;
  return {
    limit: int(get('x-ratelimit-limit')),
    remaining: int(get('x-ratelimit-remaining')),
    reset: float(get('x-ratelimit-reset')),
    retryAfter: float(get('retry-after')),
    serverDate: httpDate(get('date')),
    processingTime: float(get('x-processing-time')),
  };
}

class Pacer {
  /**
   * @param {() => number} [clock] monotonic seconds
   * @param {() => number} [wallClock] Unix seconds
   */
  constructor(clock = () => performance.now() / 1000, wallClock = () => Date.now() / 1000) {
    this.clock = clock;
    this.wallClock = wallClock;
    this.seq = 0;
    this.inFlight = new Map();
    this.anchor = null;
    this.debt = 0;
    this.blockedUntil = 0;
    this.intervalLow = 0;
    this.intervalHigh = Infinity;
    this.limit = null;
    this.headerless = false;
  }

  /** Seconds to wait before `cost` tokens are there: 0 = go now, null = wait for an answer. */
  delay(cost = 1) {
    const now = this.clock();
    if (this.blockedUntil > now) return Math.max(MIN_DELAY_S, this.blockedUntil - now);
    const anchor = this.anchor;
    if (anchor === null) {
      if (this.headerless) return 0;
      return this.inFlight.size ? null : 0;
    }
    if (cost > anchor.limit) return 0;
    const available = this.tokens(anchor, now) - this.debt;
    if (available + TOKEN_EPSILON >= cost) return 0;
    const interval = this.interval;
    if (interval === null || anchor.limit - this.debt + TOKEN_EPSILON < cost) {
      return this.inFlight.size ? null : 0;
    }
    return Math.max(MIN_DELAY_S, (cost - available) * interval);
  }

  grant(cost = 1) {
    this.seq += 1;
    const ticket = { seq: this.seq, cost, grantedAt: this.wallClock() };
    this.inFlight.set(ticket.seq, ticket);
    this.debt += cost;
    return ticket;
  }

  /** Learn from the answer to `ticket` (`headers`: lower-case names). */
  observe(ticket, status, headers, { quotaRefusal = false } = {}) {
    this.inFlight.delete(ticket.seq);
    const seen = parseHeaders(headers);
    if (status === 429) {
      this.observeRefusal(seen, quotaRefusal);
      return;
    }
    if (seen.limit === null || seen.remaining === null || seen.reset === null) {
      this.forget(ticket);
      this.headerless = this.anchor === null;
      return;
    }
    const anchor = this.anchor;
    const sentAfterAnchor = anchor === null || ticket.seq > anchor.horizon;
    if (!sentAfterAnchor && seen.reset <= anchor.reset) {
      if (anchor.uncovered.has(ticket.seq)) {
        anchor.uncovered.delete(ticket.seq);
        this.debt -= ticket.cost;
      }
      return;
    }
    this.restOn(ticket, seen);
  }

  /** The request got no answer: whether it spent is unknown; it stays counted as spent. */
  abandon(ticket) {
    this.inFlight.delete(ticket.seq);
  }

  get interval() {
    return this.intervalLow > 0 ? this.intervalLow : null;
  }

  snapshot() {
    const anchor = this.anchor;
    return {
      limit: this.limit,
      interval: this.interval,
      intervalUpper: Number.isFinite(this.intervalHigh) ? this.intervalHigh : null,
      remaining: anchor ? Math.max(0, this.tokens(anchor, this.clock()) - this.debt) : null,
    };
  }

  tokens(anchor, now) {
    const interval = this.interval;
    if (interval === null || !anchor.refills) return anchor.tokens;
    return Math.min(anchor.limit, anchor.tokens + (now - anchor.at) / interval);
  }

  serverOffset(serverDate) {
    if (serverDate === null) return 0;
    const offset = serverDate - this.wallClock();
    return Math.abs(offset) > CLOCK_SKEW_TOLERANCE_S ? offset : 0;
  }

  restOn(ticket, seen) {
    const { limit, remaining } = seen;
    if (limit !== this.limit) {
      this.limit = limit;
      this.intervalLow = 0;
      this.intervalHigh = Infinity;
    }
    const offset = this.serverOffset(seen.serverDate);
    const now = this.wallClock() + offset;
    const fullIn = Math.max(0, seen.reset - now);
    const processed = Math.max(0, seen.processingTime || 0);
    const fullInAtDecision = Math.max(0, seen.reset - (now - processed));
    const fullInFromSend = Math.max(0, seen.reset - (ticket.grantedAt + offset));
    const missing = limit - remaining;
    const slack = offset === 0 ? RESET_SLACK_S : RESET_SLACK_FROM_DATE_S;
    // The quota speaks, not the bucket: a full bucket with Remaining short of it, or a Reset
    // beyond the longest refill the bucket could need (a spent quota's next period).
    const cappedByQuota = (fullIn <= 1 && missing > 1) || fullIn > limit * this.intervalHigh + slack;
    if (missing > 0 && !cappedByQuota) {
      this.boundInterval(
        Math.max(0, (fullInAtDecision - slack) / missing),
        missing > 1 ? fullInFromSend / (missing - 1) : Infinity,
      );
    }
    const interval = this.interval;
    let tokens = remaining;
    if (interval !== null) tokens = Math.min(limit, Math.max(tokens, limit - fullIn / interval));
    this.anchor = {
      at: this.clock(),
      tokens,
      limit,
      reset: seen.reset,
      horizon: this.seq,
      uncovered: new Set(this.inFlight.keys()),
      refills: true,
    };
    this.debt = [...this.inFlight.values()].reduce((sum, t) => sum + t.cost, 0);
  }

  observeRefusal(seen, quotaRefusal) {
    const now = this.clock();
    const retryAfter = seen.retryAfter !== null ? seen.retryAfter : 1;
    this.blockedUntil = Math.max(this.blockedUntil, now + retryAfter);
    if (seen.limit !== null && seen.limit !== this.limit) {
      this.limit = seen.limit;
      this.intervalLow = 0;
      this.intervalHigh = Infinity;
    }
    if (seen.retryAfter !== null && retryAfter > 1 && !quotaRefusal) {
      this.boundInterval(retryAfter - 1, Infinity);
    }
    const limit = seen.limit || (this.anchor ? this.anchor.limit : 1);
    // Once Retry-After has passed one request goes; the next waits for its headers.
    this.anchor = {
      at: now,
      tokens: 1,
      limit,
      reset: this.anchor ? this.anchor.reset : -Infinity,
      horizon: this.seq,
      uncovered: new Set(this.inFlight.keys()),
      refills: false,
    };
    this.debt = [...this.inFlight.values()].reduce((sum, t) => sum + t.cost, 0);
  }

  forget(ticket) {
    const anchor = this.anchor;
    if (anchor === null || ticket.seq > anchor.horizon || anchor.uncovered.has(ticket.seq)) {
      this.debt = Math.max(0, this.debt - ticket.cost);
      if (anchor !== null) anchor.uncovered.delete(ticket.seq);
    }
  }

  boundInterval(low, high) {
    let newLow = Math.max(this.intervalLow, low);
    let newHigh = Math.min(this.intervalHigh, high);
    if (newLow > newHigh) {
      newLow = low;
      newHigh = high;
    }
    this.intervalLow = newLow;
    this.intervalHigh = newHigh;
  }
}

/** Least time `requests` spending requests take from a full bucket: (N - B) x interval. */
function minimumSeconds(snapshot, requests) {
  if (snapshot.limit === null || snapshot.interval === null) return null;
  return Math.max(0, requests - snapshot.limit) * snapshot.interval;
}

function float(value) {
  if (value === null || value === undefined || value === '') return null;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : null;
}

function int(value) {
  const parsed = float(value);
  return parsed === null ? null : Math.trunc(parsed);
}

function httpDate(value) {
  if (!value) return null;
  const parsed = Date.parse(value);
  return Number.isFinite(parsed) ? parsed / 1000 : null;
}

module.exports = { Pacer, minimumSeconds };
