'use strict';
/**
 * Errors raised by the SDK: one class per documented error, the same tree as the Python SDK.
 *
 *   IOPaintError                      everything this package throws on purpose
 *   ├── APIConnectionError            no HTTP answer, after the retries
 *   │   └── APITimeoutError           the answer did not come within the timeout
 *   ├── JobTimeoutError               jobs.wait / batches.wait gave up
 *   └── APIError                      the server answered with an error:
 *       │                             statusCode, error, detail, requestId, headers
 *       ├── InvalidImageError         400 bad image or mask
 *       │   └── PayloadTooLargeError  413 body far over the size limit
 *       ├── AuthenticationError       401 missing, unknown or revoked API key
 *       ├── NotFoundError             404 no such route, job or batch
 *       ├── ConflictError             409 the job has not finished
 *       ├── GoneError                 410 the job's result has expired
 *       ├── UnprocessableError        422 nothing detected; Idempotency-Key reused
 *       ├── RateLimitError            429 retryAfter, limit, remaining, reset, quotaExceeded
 *       ├── InternalServerError       500 processing failed on this input
 *       └── ServiceUnavailableError   503 starting, overloaded or unreachable (retried first)
 *
 * Messages are built from the response body, the status and the URL path: never the key.
 */

class IOPaintError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

class APIConnectionError extends IOPaintError {}

class APITimeoutError extends APIConnectionError {}

class JobTimeoutError extends IOPaintError {}

class APIError extends IOPaintError {
  /**
   * @param {number} statusCode
   * @param {string} error the reason phrase
   * @param {string} detail for humans
   * @param {{requestId?: string|null, headers?: Record<string,string>, hint?: string|null}} [extra]
   */
  constructor(statusCode, error, detail, { requestId = null, headers = {}, hint = null } = {}) {
    let message = `${statusCode} ${error}: ${detail}`;
    if (hint) message += ` (${hint})`;
    if (requestId) message += ` [request ${requestId}]`;
    super(message);
    this.statusCode = statusCode;
    this.error = error;
    this.detail = detail;
    this.requestId = requestId;
    this.headers = { ...headers };
  }
}

class InvalidImageError extends APIError {}
class PayloadTooLargeError extends InvalidImageError {}
class AuthenticationError extends APIError {}
class NotFoundError extends APIError {}
class ConflictError extends APIError {}
class GoneError extends APIError {}
class UnprocessableError extends APIError {}
class InternalServerError extends APIError {}
class ServiceUnavailableError extends APIError {}

class RateLimitError extends APIError {
  constructor(statusCode, error, detail, extra = {}) {
    super(statusCode, error, detail, extra);
    const lowered = lowerKeys(this.headers);
    this.retryAfter = number(lowered['retry-after']);
    this.limit = integer(lowered['x-ratelimit-limit']);
    this.remaining = integer(lowered['x-ratelimit-remaining']);
    this.reset = integer(lowered['x-ratelimit-reset']);
  }

  /** True when the quota (not the rate) refused: waiting means hours, not seconds. */
  get quotaExceeded() {
    return this.detail.toLowerCase().includes('quota');
  }
}

const ERROR_CLASSES = {
  400: InvalidImageError,
  401: AuthenticationError,
  404: NotFoundError,
  409: ConflictError,
  410: GoneError,
  413: PayloadTooLargeError,
  422: UnprocessableError,
  429: RateLimitError,
  500: InternalServerError,
  503: ServiceUnavailableError,
};

/** The error for `status`, from an error envelope (or what the body holds). */
function errorFromBody(status, reasonPhrase, bodyText, headers, hint, fallbackDetail) {
  let error = reasonPhrase || 'Error';
  let detail = '';
  try {
    const body = JSON.parse(bodyText);
    if (body && typeof body === 'object') {
      error = String(body.error || error);
      detail = String(body.detail || '');
    }
  } catch {
    // Not our envelope (a proxy, a load balancer): a short excerpt below.
  }
  if (!detail) detail = bodyText.slice(0, 200).trim() || fallbackDetail;
  const Cls = ERROR_CLASSES[status] || APIError;
  return new Cls(status, error, detail, {
    requestId: headers['x-request-id'] || null,
    headers,
    hint,
  });
}

/** An error for a job's `error` field. */
function errorFromJson(body) {
  const status = Number(body.status_code) || 500;
  const Cls = ERROR_CLASSES[status] || APIError;
  return new Cls(status, String(body.error || 'Error'), String(body.detail || ''));
}

function lowerKeys(headers) {
  const lowered = {};
  for (const [name, value] of Object.entries(headers || {})) lowered[name.toLowerCase()] = value;
  return lowered;
}

function number(value) {
  if (value === undefined || value === null || value === '') return null;
  const parsed = Number(value);
  return Number.isFinite(parsed) && parsed >= 0 ? parsed : null;
}

function integer(value) {
  const parsed = number(value);
  return parsed === null ? null : Math.trunc(parsed);
}

module.exports = {
  IOPaintError,
  APIConnectionError,
  APITimeoutError,
  JobTimeoutError,
  APIError,
  InvalidImageError,
  PayloadTooLargeError,
  AuthenticationError,
  NotFoundError,
  ConflictError,
  GoneError,
  UnprocessableError,
  RateLimitError,
  InternalServerError,
  ServiceUnavailableError,
  ERROR_CLASSES,
  errorFromBody,
  errorFromJson,
};
