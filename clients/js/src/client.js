'use strict';
/**
 * IOPaintClient: the client of the IOPaint watermark-removal API, on Node 18+ built-ins
 * (fetch, FormData, Blob). Same methods, retry rules, pacing and errors as the Python SDK.
 */

const path = require('node:path');
const util = require('node:util');
const crypto = require('node:crypto');

const {
  APIConnectionError,
  APITimeoutError,
  IOPaintError,
  JobTimeoutError,
  RateLimitError,
  AuthenticationError,
  errorFromBody,
  errorFromJson,
} = require('./errors');
const { Pacer, minimumSeconds } = require('./pacer');
const { RetryPolicy } = require('./retry');
const { toUpload, writeOutput } = require('./inputs');

const VERSION = '0.1.0';
const API = '/api/v1';
const DEFAULT_BASE_URL = 'http://localhost:8080';
const MISSING_KEY_HINT = 'no API key configured: pass apiKey or set IOPAINT_API_KEY';
const MAX_PREFER_WAIT_S = 60;
const JOB_POLL_INITIAL_S = 0.5;
const JOB_POLL_MAX_S = 5;
const DEFAULT_JOB_WAIT_S = 600;
const TERMINAL_JOB_STATUSES = new Set(['succeeded', 'failed', 'canceled', 'expired']);

const monotonic = () => performance.now() / 1000;
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

class IOPaintClient {
  #apiKey;
  #pacer = new Pacer();
  #waiters = new Set();
  #queue = [];
  #fetch;

  /**
   * @param {object} [options]
   * @param {string} [options.apiKey] default: IOPAINT_API_KEY
   * @param {string} [options.baseUrl] default: IOPAINT_BASE_URL, else http://localhost:8080
   * @param {number} [options.timeout] seconds for one answer (120)
   * @param {RetryPolicy|object} [options.retry] attempts and waits
   * @param {number} [options.maxConcurrency] batchProcess's default concurrency (4)
   * @param {typeof fetch} [options.fetch] a fetch of your own (proxies, tests)
   */
  constructor({ apiKey, baseUrl, timeout = 120, retry, maxConcurrency = 4, fetch: fetchImpl } = {}) {
    const key = (apiKey ?? process.env.IOPAINT_API_KEY ?? '').trim();
    this.#apiKey = key || null;
    const url = (baseUrl || process.env.IOPAINT_BASE_URL || DEFAULT_BASE_URL).trim();
    if (!/^https?:\/\//.test(url)) throw new TypeError(`baseUrl must start with http:// or https://, not ${JSON.stringify(url)}`);
    if (!(maxConcurrency >= 1)) throw new RangeError('maxConcurrency must be at least 1');
    this.baseUrl = url.replace(/\/+$/, '');
    this.timeout = timeout;
    this.retry = retry instanceof RetryPolicy ? retry : new RetryPolicy(retry || {});
    this.maxConcurrency = maxConcurrency;
    this.#fetch = fetchImpl || globalThis.fetch;
    if (typeof this.#fetch !== 'function') throw new TypeError('fetch is not available: Node 18 or later is needed');
    const send = (call) => this.#send(call);
    this.jobs = new Jobs(send);
    this.batches = new Batches(send);
    this.watermarks = new Watermarks(send);
  }

  /**
   * Remove the watermark from `image`; the PNG and the answer's metadata.
   * `output`: also write the PNG to this path. Options: `mask` (white = remove; without one
   * the server detects the watermark), `watermark` (a watermark profile or its id: the
   * mark's blend is inverted; `result.removal` says how it went).
   */
  async removeWatermark(image, output, options) {
    ({ output, options } = outputAndOptions(output, options));
    const answer = await this.#send(await this.#removeCall(image, options.mask, options.watermark));
    return imageResult(answer, output);
  }

  /** Find watermark regions in `image`. */
  async detect(image) {
    const files = [['image', await toUpload(image, 'image')]];
    const answer = await this.#send({
      method: 'POST', path: `${API}/detect`, files, headers: { Accept: 'application/json' }, cost: 1,
    });
    return detectionResult(answer);
  }

  /** The detected watermark as a mask PNG (white = remove), written to `output` if given. */
  async detectMask(image, output) {
    const files = [['image', await toUpload(image, 'image')]];
    const answer = await this.#send({
      method: 'POST', path: `${API}/detect`, files, headers: { Accept: 'image/png' }, cost: 1,
    });
    return imageResult(answer, output);
  }

  async stats() {
    const answer = await this.#send({ method: 'GET', path: `${API}/stats` });
    const body = JSON.parse(answer.body.toString('utf8'));
    const quota = body.quota && typeof body.quota === 'object'
      ? { used: body.quota.used, limit: body.quota.limit, period: body.quota.period, resetsAt: body.quota.resets_at }
      : null;
    return {
      total: body.total,
      success: body.success,
      failed: body.failed,
      totalProcessingTime: body.total_processing_time,
      avgProcessingTime: body.avg_processing_time,
      plan: body.plan ?? null,
      quota,
      rateLimited: body.rate_limited ?? null,
      rateLimit: rateLimitOf(answer.headers),
      raw: body,
    };
  }

  /** Whether the service is up: status "healthy", or "unhealthy" with a detail (no key needed). */
  async health() {
    const answer = await this.#send({ method: 'GET', path: `${API}/health`, retry: false, acceptStatuses: [503] });
    const body = JSON.parse(answer.body.toString('utf8'));
    return {
      status: body.status,
      healthy: body.status === 'healthy',
      model: body.model ?? null,
      device: body.device ?? null,
      gpuAvailable: body.gpu_available ?? null,
      detail: body.detail ?? null,
      raw: body,
    };
  }

  /**
   * Remove watermarks from many images into `outputDir`: one result per image, in order,
   * `{path, ok, error, output, processingTime}`. At most `concurrency` requests at once, and
   * never faster than the key's rate limit (the client waits for tokens instead of
   * collecting 429s). A refused key or a spent quota leaves the images not yet sent failed.
   * Options: `masks` (one for all, an array by position, or an object/Map by path or file
   * name), `concurrency`, `progress` (a bar on stderr; default when stderr is a terminal).
   */
  async batchProcess(images, outputDir, { masks = null, concurrency, progress } = {}) {
    if (!Array.isArray(images)) throw new TypeError('images must be an array');
    const entries = planBatch(images, outputDir, masks);
    const slots = new Slots(Math.max(1, Math.min(concurrency || this.maxConcurrency, entries.length || 1)));
    const bar = new ProgressBar(entries.length, progress);
    const results = new Array(entries.length);
    const failed = (entry, error) => ({ path: entry.label, ok: false, error, output: null, processingTime: null });
    const finish = (index, item) => {
      results[index] = item;
      bar.advance(item.ok);
    };
    let stop = null;
    const sending = [];
    await this.#learnLimits();
    // Turns are taken here, in order (a free slot, then the pacer's token); the sends run
    // alongside. So images go in order, and a spent quota or a refused key stops the rest.
    try {
      for (const [index, entry] of entries.entries()) {
        await slots.acquire();
        let call = null;
        if (stop) finish(index, failed(entry, stop));
        else {
          try {
            call = await this.#removeCall(entry.image, entry.mask);
          } catch (error) {
            finish(index, failed(entry, error)); // an unreadable file or unsupported input
          }
        }
        if (call === null) {
          slots.release();
          continue;
        }
        const ticket = await this.#takeTicket(call.cost, monotonic() + this.retry.maxWait, 1);
        sending.push(
          (async () => {
            try {
              const result = await imageResult(await this.#send(call, ticket), entry.output);
              finish(index, { path: entry.label, ok: true, error: null, output: entry.output, processingTime: result.processingTime });
            } catch (error) {
              if (error instanceof AuthenticationError || (error instanceof RateLimitError && error.quotaExceeded)) {
                stop = stop || error;
              }
              finish(index, failed(entry, error));
            } finally {
              slots.release();
            }
          })(),
        );
      }
      await Promise.all(sending);
    } finally {
      bar.close();
    }
    return results;
  }

  /** What the client has learned of the key's rate limit: {limit, interval, intervalUpper, remaining}. */
  get rateLimit() {
    return this.#pacer.snapshot();
  }

  /** Least seconds `requests` spending requests take under the learned limit (null: unknown). */
  minimumSeconds(requests) {
    return minimumSeconds(this.#pacer.snapshot(), requests);
  }

  toJSON() {
    return { baseUrl: this.baseUrl, apiKey: describeKey(this.#apiKey) };
  }

  [util.inspect.custom]() {
    const key = this.#apiKey ? `'${describeKey(this.#apiKey)}'` : 'null';
    return `IOPaintClient { baseUrl: '${this.baseUrl}', apiKey: ${key} }`;
  }

  async #learnLimits() {
    if (this.#pacer.snapshot().limit !== null || !this.#apiKey) return;
    try {
      await this.#send({ method: 'GET', path: `${API}/stats`, cost: 0 });
    } catch (error) {
      // Stats may be disabled or the key refused: then the first image will say so.
      if (!(error instanceof IOPaintError)) throw error;
    }
  }

  async #removeCall(image, mask, watermark) {
    const files = [['image', await toUpload(image, 'image')]];
    if (mask !== undefined && mask !== null) files.push(['mask', await toUpload(mask, 'mask')]);
    return { method: 'POST', path: `${API}/remove-watermark`, files, fields: formFields({ watermark }), cost: 1 };
  }

  /** Send `call` with retries and pacing (`firstTicket`: its first turn, already taken). */
  async #send(call, firstTicket = null) {
    const deadline = monotonic() + this.retry.maxWait;
    const where = `${call.method} ${this.baseUrl}${call.path}`;
    for (let attempt = 1; ; attempt += 1) {
      const paced = call.cost !== undefined && call.cost !== null;
      let ticket = null;
      if (paced) ticket = attempt === 1 && firstTicket ? firstTicket : await this.#takeTicket(call.cost, deadline, attempt);
      let answer;
      try {
        answer = await this.#fetchOnce(call);
      } catch (failure) {
        if (ticket) this.#settle(ticket, null);
        const delay = call.retry === false ? null : this.retry.delayAfterConnectionError(attempt);
        if (delay === null || monotonic() + delay > deadline) throw connectionError(failure, where);
        await sleep(delay);
        continue;
      }
      if (ticket) this.#settle(ticket, answer);
      if ((answer.status >= 200 && answer.status < 300) || (call.acceptStatuses || []).includes(answer.status)) {
        return answer;
      }
      const hint = answer.status === 401 && !this.#apiKey ? MISSING_KEY_HINT : null;
      const error = errorFromBody(
        answer.status, answer.statusText, answer.body.toString('utf8'), answer.headers, hint, `${call.method} ${call.path}`,
      );
      const delay = call.retry === false ? null : this.retry.delayAfterError(error, attempt);
      if (delay === null || monotonic() + delay > deadline) throw error;
      // After a 429 the pacer itself holds the next attempt until Retry-After.
      if (!ticket || !(error instanceof RateLimitError)) await sleep(delay);
    }
  }

  async #fetchOnce(call) {
    const headers = { 'User-Agent': `iopaint-sdk-js/${VERSION} (Node ${process.version})`, ...(call.headers || {}) };
    if (this.#apiKey) headers['X-API-Key'] = this.#apiKey;
    let body;
    if (call.files) {
      body = new FormData();
      for (const [name, upload] of call.files) {
        body.append(name, new Blob([upload.content], { type: upload.contentType }), upload.filename);
      }
      for (const [name, value] of Object.entries(call.fields || {})) body.append(name, value);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new TimeoutSignal()), this.timeout * 1000);
    try {
      const response = await this.#fetch(this.baseUrl + call.path, {
        method: call.method, headers, body, signal: controller.signal,
      });
      const content = Buffer.from(await response.arrayBuffer());
      return { status: response.status, statusText: response.statusText, headers: plainHeaders(response.headers), body: content };
    } catch (failure) {
      if (controller.signal.aborted) throw new TimeoutSignal();
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  }

  async #takeTicket(cost, deadline, attempt) {
    // First come, first served: only the head of the queue may take the next token, so a
    // batch's images are sent in order and none is starved by later ones.
    const me = {};
    if (attempt > 1) this.#queue.unshift(me); // a retry keeps its turn
    else this.#queue.push(me);
    try {
      for (;;) {
        if (this.#queue[0] !== me) {
          await this.#waitForChange(null);
          continue;
        }
        const delay = this.#pacer.delay(cost);
        const left = deadline - monotonic();
        if (delay === 0 || left <= 0 || (delay !== null && delay > left)) return this.#pacer.grant(cost);
        await this.#waitForChange(delay !== null ? Math.min(delay, left) : left);
      }
    } finally {
      this.#queue.splice(this.#queue.indexOf(me), 1);
      this.#wakeAll();
    }
  }

  /** Until an answer or a queue change wakes us, or `seconds` pass (null: no time limit). */
  #waitForChange(seconds) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = seconds === null ? undefined : setTimeout(done, seconds * 1000);
      this.#waiters.add(done);
    });
  }

  #wakeAll() {
    for (const wake of [...this.#waiters]) wake();
  }

  #settle(ticket, answer) {
    if (answer === null) {
      this.#pacer.abandon(ticket);
    } else {
      const quotaRefusal = answer.status === 429 && answer.body.toString('utf8').toLowerCase().includes('quota');
      this.#pacer.observe(ticket, answer.status, answer.headers, { quotaRefusal });
    }
    this.#wakeAll();
  }
}

class Jobs {
  #send;

  constructor(send) {
    this.#send = send;
  }

  /**
   * Queue a removal; the job. Options: `mask`, `callbackUrl`, `wait` (let the server hold
   * the answer up to N s, N <= 60), `idempotencyKey` (random unless given; the same on every
   * attempt of this call, so a retried submit never makes a second job).
   */
  async submit(image, { mask, callbackUrl, wait, idempotencyKey, watermark } = {}) {
    const files = [['image', await toUpload(image, 'image')]];
    if (mask !== undefined && mask !== null) files.push(['mask', await toUpload(mask, 'mask')]);
    const answer = await this.#send({
      method: 'POST',
      path: `${API}/jobs`,
      files,
      fields: formFields({ callbackUrl, watermark }),
      headers: submitHeaders(wait, idempotencyKey),
      cost: 1,
    });
    return jobOf(JSON.parse(answer.body.toString('utf8')));
  }

  async get(job) {
    const answer = await this.#send({ method: 'GET', path: `${API}/jobs/${segment(idOf(job))}` });
    return jobOf(JSON.parse(answer.body.toString('utf8')));
  }

  /** Poll until the job is final (succeeded, failed, canceled, expired); the final job. */
  async wait(job, { timeout = DEFAULT_JOB_WAIT_S } = {}) {
    let current = typeof job === 'string' ? await this.get(job) : job;
    const deadline = timeout === null ? Infinity : monotonic() + timeout;
    let pause = JOB_POLL_INITIAL_S;
    while (!current.done) {
      if (monotonic() + pause > deadline) {
        throw new JobTimeoutError(`job ${current.id} still ${current.status} after ${timeout} s`);
      }
      await sleep(pause);
      pause = Math.min(JOB_POLL_MAX_S, pause * 2);
      current = await this.get(current.id);
    }
    return current;
  }

  /** The finished job's PNG (ConflictError before it has finished), written to `output` if given. */
  async result(job, output) {
    const answer = await this.#send({ method: 'GET', path: `${API}/jobs/${segment(idOf(job))}/result` });
    return imageResult(answer, output);
  }

  async cancel(job) {
    const answer = await this.#send({ method: 'POST', path: `${API}/jobs/${segment(idOf(job))}/cancel` });
    return jobOf(JSON.parse(answer.body.toString('utf8')));
  }

  async delete(job) {
    await this.#send({ method: 'DELETE', path: `${API}/jobs/${segment(idOf(job))}` });
  }
}

class Batches {
  #send;

  constructor(send) {
    this.#send = send;
  }

  /** One request for many images, all admitted or none (it needs a token per image at once). */
  async submit(images, { masks, callbackUrl, idempotencyKey, watermark } = {}) {
    const files = [];
    for (const [index, image] of images.entries()) files.push(['image', await toUpload(image, `image-${index + 1}`)]);
    for (const [index, mask] of (masks || []).entries()) files.push(['mask', await toUpload(mask, `mask-${index + 1}`)]);
    const answer = await this.#send({
      method: 'POST',
      path: `${API}/batch`,
      files,
      fields: formFields({ callbackUrl, watermark }),
      headers: submitHeaders(undefined, idempotencyKey),
      cost: images.length,
    });
    return batchOf(JSON.parse(answer.body.toString('utf8')));
  }

  async get(batch) {
    const answer = await this.#send({ method: 'GET', path: `${API}/batch/${segment(idOf(batch))}` });
    return batchOf(JSON.parse(answer.body.toString('utf8')));
  }

  async wait(batch, { timeout = DEFAULT_JOB_WAIT_S } = {}) {
    let current = typeof batch === 'string' ? await this.get(batch) : batch;
    const deadline = timeout === null ? Infinity : monotonic() + timeout;
    let pause = JOB_POLL_INITIAL_S;
    while (!current.done) {
      if (monotonic() + pause > deadline) throw new JobTimeoutError(`batch ${current.id} not finished after ${timeout} s`);
      await sleep(pause);
      pause = Math.min(JOB_POLL_MAX_S, pause * 2);
      current = await this.get(current.id);
    }
    return current;
  }

  /** The finished PNGs as a zip archive (a Buffer), written to `output` if given. */
  async result(batch, output) {
    const answer = await this.#send({ method: 'GET', path: `${API}/batch/${segment(idOf(batch))}/result` });
    if (output) await writeOutput(answer.body, output);
    return answer.body;
  }
}

/** The key's watermark profiles: `client.watermarks.create/list/get/png/delete`. */
class Watermarks {
  #send;

  constructor(send) {
    this.#send = send;
  }

  /**
   * Keep a profile: `watermark` is the mark as an RGBA PNG (alpha = its opacity), or
   * `{ images: [...] }` (8 or more, one size) carry the same mark and the server estimates
   * it (one request per image). Options: `name`. Not retried: a create whose answer was lost
   * would otherwise keep two profiles.
   */
  async create(watermark, options) {
    if (watermark && typeof watermark === 'object' && Array.isArray(watermark.images) && options === undefined) {
      options = watermark;
      watermark = null;
    }
    const { images, name } = options || {};
    const hasMark = watermark !== undefined && watermark !== null;
    if (hasMark === Boolean(images && images.length)) {
      throw new TypeError('give either the watermark\'s PNG or images that carry it, not both');
    }
    const files = [];
    if (hasMark) files.push(['watermark', await toUpload(watermark, 'watermark.png')]);
    for (const [index, image] of (images || []).entries()) files.push(['image', await toUpload(image, `image-${index + 1}`)]);
    const answer = await this.#send({
      method: 'POST',
      path: `${API}/watermarks`,
      files,
      fields: name ? { name } : {},
      cost: hasMark ? 1 : files.length,
      retry: false,
    });
    return profileOf(JSON.parse(answer.body.toString('utf8')));
  }

  /** The key's profiles, oldest first. */
  async list() {
    const answer = await this.#send({ method: 'GET', path: `${API}/watermarks` });
    return JSON.parse(answer.body.toString('utf8')).watermarks.map(profileOf);
  }

  async get(profile) {
    const answer = await this.#send({
      method: 'GET', path: `${API}/watermarks/${segment(idOf(profile))}`, headers: { Accept: 'application/json' },
    });
    return profileOf(JSON.parse(answer.body.toString('utf8')));
  }

  /** The profile's RGBA PNG (a Buffer), written to `output` if given. */
  async png(profile, output) {
    const answer = await this.#send({
      method: 'GET', path: `${API}/watermarks/${segment(idOf(profile))}`, headers: { Accept: 'image/png' },
    });
    if (output) await writeOutput(answer.body, output);
    return answer.body;
  }

  async delete(profile) {
    await this.#send({ method: 'DELETE', path: `${API}/watermarks/${segment(idOf(profile))}` });
  }
}

// -- helpers -----------------------------------------------------------------------------

/** Thrown by the per-request timer, turned into APITimeoutError. */
class TimeoutSignal extends Error {}

function connectionError(failure, where) {
  // Built from the failure's text only: nothing of the request (its headers hold the key).
  if (failure instanceof TimeoutSignal) return new APITimeoutError(`${where}: timed out`);
  const cause = failure && failure.cause ? `: ${failure.cause.code || failure.cause.message || failure.cause}` : '';
  const reason = failure && failure.message ? failure.message : String(failure);
  return new APIConnectionError(`${where}: could not connect (${reason}${cause})`);
}

function outputAndOptions(output, options) {
  const isOptions = output !== null && typeof output === 'object' && !(output instanceof URL) && options === undefined;
  if (isOptions) return { output: undefined, options: output };
  return { output, options: options || {} };
}

function plainHeaders(headers) {
  const plain = {};
  headers.forEach((value, name) => {
    plain[name.toLowerCase()] = value;
  });
  return plain;
}

function rateLimitOf(headers) {
  const int = (name) => (headers[name] === undefined ? null : Math.trunc(Number(headers[name])));
  return { limit: int('x-ratelimit-limit'), remaining: int('x-ratelimit-remaining'), reset: int('x-ratelimit-reset') };
}

async function imageResult(answer, output) {
  const { headers } = answer;
  const number = (name) => (headers[name] === undefined ? null : Number(headers[name]));
  const size = /^(\d+)x(\d+)$/.exec(headers['x-image-size'] || '');
  const result = {
    data: answer.body,
    processingTime: number('x-processing-time'),
    imageSize: size ? { width: Number(size[1]), height: Number(size[2]) } : null,
    model: headers['x-model'] ?? null,
    requestId: headers['x-request-id'] ?? null,
    maskSource: headers['x-mask-source'] ?? null,
    detectedRegions: number('x-detected-regions'),
    removal: headers['x-removal'] ?? null,
    rateLimit: rateLimitOf(headers),
    path: null,
  };
  if (output) result.path = await writeOutput(answer.body, output);
  return result;
}

function detectionResult(answer) {
  const body = JSON.parse(answer.body.toString('utf8'));
  return {
    regions: (body.regions || []).map((region) => ({
      kind: region.kind,
      box: { x: region.box.x, y: region.box.y, width: region.box.width, height: region.box.height },
      outline: region.outline || [],
      score: region.score,
      text: region.text ?? null,
    })),
    coverage: body.coverage,
    imageSize: body.image_size,
    processingTime: body.processing_time,
    maskUrl: body.mask_url ?? null,
    requestId: answer.headers['x-request-id'] ?? null,
    raw: body,
  };
}

function jobOf(body) {
  return {
    id: body.id,
    status: body.status,
    createdAt: body.created_at ?? null,
    startedAt: body.started_at ?? null,
    finishedAt: body.finished_at ?? null,
    error: body.error && typeof body.error === 'object' ? errorFromJson(body.error) : null,
    batchId: body.batch_id ?? null,
    urls: body.urls || {},
    done: TERMINAL_JOB_STATUSES.has(body.status),
    raw: body,
  };
}

function batchOf(body) {
  const jobs = (body.jobs || []).map(jobOf);
  return {
    id: body.id,
    status: body.status,
    createdAt: body.created_at ?? null,
    jobs,
    summary: body.summary || {},
    urls: body.urls || {},
    done: jobs.length > 0 && jobs.every((job) => job.done),
    raw: body,
  };
}

function profileOf(body) {
  return {
    id: body.id,
    name: body.name,
    width: body.width,
    height: body.height,
    source: body.source,
    seenAt: seenAtOf(body.seen_at),
    createdAt: body.created_at ?? null,
    raw: body,
  };
}

function seenAtOf(seen) {
  if (!seen || typeof seen !== 'object') return null;
  return { x: seen.x, y: seen.y, imageWidth: seen.image_width, imageHeight: seen.image_height };
}

/** The text fields of a form, leaving out those not given. */
function formFields({ callbackUrl, watermark }) {
  const fields = {};
  if (callbackUrl) fields.callback_url = callbackUrl;
  const profileId = watermark && typeof watermark === 'object' ? watermark.id : watermark;
  if (profileId) fields.watermark = profileId;
  return fields;
}

function submitHeaders(wait, idempotencyKey) {
  // One key per submit call, the same on every retry of it.
  const headers = { 'Idempotency-Key': idempotencyKey || `iopaint-sdk-${crypto.randomUUID()}` };
  if (wait !== undefined && wait !== null) {
    if (!(wait >= 0 && wait <= MAX_PREFER_WAIT_S)) throw new RangeError(`wait must lie in 0..${MAX_PREFER_WAIT_S} seconds`);
    headers.Prefer = `wait=${Math.trunc(wait)}`;
  }
  return headers;
}

function idOf(item) {
  return typeof item === 'string' ? item : item.id;
}

function segment(id) {
  if (!id || id.includes('/')) throw new TypeError(`not a job, batch or watermark id: ${JSON.stringify(id)}`);
  return encodeURIComponent(id);
}

/** A printable stand-in for the key: its kind (sk_live_/sk_test_), never its secret. */
function describeKey(key) {
  if (!key) return null;
  for (const prefix of ['sk_live_', 'sk_test_']) if (key.startsWith(prefix)) return `${prefix}***`;
  return '***';
}

function planBatch(images, outputDir, masks) {
  const taken = new Set();
  return images.map((image, index) => {
    const isPath = typeof image === 'string';
    const stem = isPath ? path.parse(image).name : `image-${index + 1}`;
    let name = `${stem}.png`;
    for (let number = 2; taken.has(name); number += 1) name = `${stem}-${number}.png`;
    taken.add(name);
    return {
      label: isPath ? image : `#${index + 1}`,
      image,
      mask: maskFor(index, image, images.length, masks),
      output: path.join(outputDir, name),
    };
  });
}

function maskFor(index, image, count, masks) {
  if (masks === null || masks === undefined) return null;
  if (Array.isArray(masks)) {
    if (masks.length !== count) throw new RangeError(`${masks.length} masks for ${count} images: give one per image`);
    return masks[index];
  }
  const isMap = masks instanceof Map;
  if (isMap || Object.getPrototypeOf(masks) === Object.prototype) {
    if (typeof image !== 'string') throw new TypeError('masks given as a map need images given as paths');
    const lookup = (key) => (isMap ? masks.get(key) : Object.hasOwn(masks, key) ? masks[key] : undefined);
    for (const key of [image, path.basename(image), path.parse(image).name]) {
      const found = lookup(key);
      if (found !== undefined) return found;
    }
    return null;
  }
  return masks; // one mask for every image
}

/** A counting semaphore: at most `size` holders at once, the others wait in order. */
class Slots {
  constructor(size) {
    this.free = size;
    this.waiting = [];
  }

  acquire() {
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release() {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

class ProgressBar {
  constructor(total, enabled) {
    this.total = total;
    this.enabled = enabled === undefined ? Boolean(process.stderr.isTTY) : Boolean(enabled);
    this.ok = 0;
    this.failed = 0;
    this.started = monotonic();
    this.draw();
  }

  advance(ok) {
    if (ok) this.ok += 1;
    else this.failed += 1;
    this.draw();
  }

  close() {
    if (this.enabled) process.stderr.write('\n');
    this.enabled = false;
  }

  draw() {
    if (!this.enabled) return;
    const done = this.ok + this.failed;
    const share = this.total ? done / this.total : 1;
    const filled = Math.round(24 * share);
    const elapsed = Math.trunc(monotonic() - this.started);
    const clock = `${Math.trunc(elapsed / 60)}m${String(elapsed % 60).padStart(2, '0')}s`;
    process.stderr.write(
      `\r${done}/${this.total} [${'#'.repeat(filled)}${'-'.repeat(24 - filled)}] ` +
        `${Math.round(share * 100)}% ok ${this.ok} failed ${this.failed} ${clock}`,
    );
  }
}

module.exports = { IOPaintClient, Jobs, Batches, Watermarks, VERSION };
