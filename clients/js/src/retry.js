'use strict';
/**
 * When a failed call is tried again (the same rules as the Python SDK):
 *
 * - 429: wait Retry-After (the pacer holds every spending request of the client until then);
 *   a quota refusal, or a Retry-After past what is left of `maxWait`, is thrown at once;
 * - 503 (and 502/504 from a proxy): Retry-After when sent, else exponential backoff with
 *   jitter;
 * - connection errors and timeouts: exponential backoff with jitter;
 * - every other status: never retried;
 * - at most `maxAttempts` attempts, and no wait ending past `maxWait` seconds after the start.
 */

const { RateLimitError } = require('./errors');

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);

class RetryPolicy {
  /**
   * @param {{maxAttempts?: number, maxWait?: number, backoffInitial?: number,
   *          backoffMax?: number, random?: () => number}} [options]
   */
  constructor({
    maxAttempts = 5,
    maxWait = 300,
    backoffInitial = 0.5,
    backoffMax = 20,
    random = Math.random,
  } = {}) {
    if (!(maxAttempts >= 1)) throw new RangeError('maxAttempts must be at least 1');
    if (maxWait < 0 || backoffInitial < 0 || backoffMax < 0) {
      throw new RangeError('waits must not be negative');
    }
    this.maxAttempts = maxAttempts;
    this.maxWait = maxWait;
    this.backoffInitial = backoffInitial;
    this.backoffMax = backoffMax;
    this.random = random;
  }

  /** Seconds after failed attempt `attempt` (1-based): half fixed (growing), half random. */
  backoff(attempt) {
    const ceiling = Math.min(this.backoffMax, this.backoffInitial * 2 ** (attempt - 1));
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  /** Seconds to wait before retrying after `error`, or null: do not retry. */
  delayAfterError(error, attempt) {
    if (!RETRIED_STATUSES.has(error.statusCode) || attempt >= this.maxAttempts) return null;
    if (error instanceof RateLimitError) {
      if (error.quotaExceeded) return null;
      return error.retryAfter !== null ? error.retryAfter : this.backoff(attempt);
    }
    const header = error.headers['retry-after'];
    const seconds = header === undefined ? NaN : Number(header);
    return Number.isFinite(seconds) && seconds >= 0 ? seconds : this.backoff(attempt);
  }

  delayAfterConnectionError(attempt) {
    return attempt >= this.maxAttempts ? null : this.backoff(attempt);
  }
}

module.exports = { RetryPolicy, RETRIED_STATUSES };
