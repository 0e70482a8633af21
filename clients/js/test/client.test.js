'use strict';
// The client against a scripted fetch: requests, results, errors, retries, pacing, batches.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');

const sdk = require('..');
const { KEY, BASE_URL, FAST_RETRY, png, error, image, json, fakeApi, parts, connectionRefused } = require('../testing/fake-api');

const {
  IOPaintClient, RetryPolicy, APIError, IOPaintError, InvalidImageError, PayloadTooLargeError,
  AuthenticationError, NotFoundError, ConflictError, GoneError, UnprocessableError, RateLimitError,
  InternalServerError, ServiceUnavailableError, APIConnectionError, APITimeoutError, JobTimeoutError,
} = sdk;

function client(api, options = {}) {
  return new IOPaintClient({ apiKey: KEY, baseUrl: BASE_URL, retry: FAST_RETRY, fetch: api.fetch, ...options });
}

function scratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iopaint-sdk-'));
}

test('removeWatermark(image, output, {mask}) sends both files and the key, writes the PNG', async () => {
  const dir = scratch();
  fs.writeFileSync(path.join(dir, 'image.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
  fs.writeFileSync(path.join(dir, 'mask.png'), png());
  const api = fakeApi([image()]);
  const result = await client(api).removeWatermark(path.join(dir, 'image.jpg'), path.join(dir, 'result.png'), {
    mask: path.join(dir, 'mask.png'),
  });
  const [call] = api.calls;
  assert.equal(call.method, 'POST');
  assert.equal(call.url.href, `${BASE_URL}/api/v1/remove-watermark`);
  assert.equal(call.headers['X-API-Key'], KEY);
  assert.match(call.headers['User-Agent'], /^iopaint-sdk-js\//);
  const sent = await parts(call);
  assert.deepEqual(sent.map((p) => [p.name, p.filename, p.type]), [
    ['image', 'image.jpg', 'image/jpeg'],
    ['mask', 'mask.png', 'image/png'],
  ]);
  assert.deepEqual(sent[1].bytes, png());
  assert.deepEqual(fs.readFileSync(path.join(dir, 'result.png')), result.data);
  assert.equal(result.processingTime, 0.125);
  assert.deepEqual(result.imageSize, { width: 8, height: 6 });
  assert.equal(result.model, 'opencv');
  assert.equal(result.requestId, 'req-ok');
  assert.equal(result.path, path.join(dir, 'result.png'));
});

test('inputs: Buffer, Uint8Array, ArrayBuffer and Blob; options without an output', async () => {
  const api = fakeApi([], () => image());
  const c = client(api);
  const bytes = png();
  await c.removeWatermark(bytes);
  await c.removeWatermark(new Uint8Array(bytes), { mask: bytes });
  await c.removeWatermark(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  await c.removeWatermark(new Blob([bytes], { type: 'image/png' }));
  for (const call of api.calls) {
    const [first] = await parts(call);
    assert.deepEqual(first.bytes, bytes);
    assert.equal(first.type, 'image/png');
    assert.equal(first.filename, 'image.png');
  }
  assert.deepEqual((await parts(api.calls[1])).map((p) => p.name), ['image', 'mask']);
  await assert.rejects(c.removeWatermark(42), /cannot send number/);
  await assert.rejects(c.removeWatermark('/no/such/file.jpg'), { code: 'ENOENT' });
  assert.equal(api.calls.length, 4);
});

test('key and base URL come from the environment; the key never shows', async () => {
  const saved = { ...process.env };
  try {
    process.env.IOPAINT_API_KEY = KEY;
    process.env.IOPAINT_BASE_URL = 'http://env.test:9000/';
    const api = fakeApi([json({ status: 'healthy' })]);
    const c = new IOPaintClient({ fetch: api.fetch });
    await c.health();
    assert.equal(api.calls[0].url.href, 'http://env.test:9000/api/v1/health');
    assert.equal(api.calls[0].headers['X-API-Key'], KEY);
    for (const text of [util.inspect(c), util.inspect(c, { showHidden: true, depth: 5 }), JSON.stringify(c), String(Object.keys(c))]) {
      assert.ok(!text.includes(KEY) && !text.includes(KEY.slice(8, 20)), text);
    }
    assert.match(util.inspect(c), /sk_live_\*\*\*/);
    delete process.env.IOPAINT_BASE_URL;
    assert.equal(new IOPaintClient({ fetch: api.fetch }).baseUrl, 'http://localhost:8080');
  } finally {
    process.env = saved;
  }
});

test('a missing key is not sent, and the 401 says how to give one', async () => {
  const saved = process.env.IOPAINT_API_KEY;
  delete process.env.IOPAINT_API_KEY;
  try {
    const api = fakeApi([error(401, 'Missing API Key. Please provide X-API-Key header.')]);
    const c = new IOPaintClient({ baseUrl: BASE_URL, fetch: api.fetch });
    await assert.rejects(c.stats(), (e) => e instanceof AuthenticationError && /IOPAINT_API_KEY/.test(e.message));
    assert.equal(api.calls[0].headers['X-API-Key'], undefined);
  } finally {
    if (saved !== undefined) process.env.IOPAINT_API_KEY = saved;
  }
});

const STATUSES = [
  [400, InvalidImageError], [401, AuthenticationError], [404, NotFoundError], [409, ConflictError],
  [410, GoneError], [413, PayloadTooLargeError], [422, UnprocessableError], [500, InternalServerError],
];

for (const [status, Cls] of STATUSES) {
  test(`${status} throws ${Cls.name}, not retried`, async () => {
    const api = fakeApi([], () => error(status, `detail for ${status}`));
    const caught = await client(api).removeWatermark(png()).catch((e) => e);
    assert.ok(caught instanceof Cls && caught instanceof APIError && caught instanceof IOPaintError);
    assert.equal(caught.name, Cls.name);
    assert.equal(caught.statusCode, status);
    assert.equal(caught.detail, `detail for ${status}`);
    assert.equal(caught.requestId, `req-${status}`);
    assert.equal(api.calls.length, 1);
    assert.ok(!caught.message.includes(KEY) && !util.inspect(caught).includes(KEY));
  });
}

test('PayloadTooLargeError is an InvalidImageError', () => {
  assert.ok(new PayloadTooLargeError(413, 'Payload Too Large', 'x') instanceof InvalidImageError);
});

test('a quota 429 carries the headers and is thrown at once', async () => {
  const api = fakeApi([
    error(429, 'Daily quota of 10 requests exceeded; resets at 2025-11-25T00:00:00Z.', {
      'retry-after': '28800', 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1764028800',
    }),
  ]);
  const caught = await client(api).removeWatermark(png()).catch((e) => e);
  assert.ok(caught instanceof RateLimitError);
  assert.deepEqual([caught.retryAfter, caught.limit, caught.remaining, caught.reset], [28800, 5, 0, 1764028800]);
  assert.equal(caught.quotaExceeded, true);
  assert.equal(api.calls.length, 1);
});

test('429 waits Retry-After then succeeds; past the wait budget it is thrown', async () => {
  const api = fakeApi([error(429, 'Rate limit exceeded.', { 'retry-after': '0.3', 'x-ratelimit-limit': '5' }), image()]);
  const started = performance.now();
  await client(api).removeWatermark(png());
  assert.ok(performance.now() - started >= 300);
  assert.equal(api.calls.length, 2);

  const slow = fakeApi([error(429, 'Rate limit exceeded.', { 'retry-after': '120' })]);
  const caught = await client(slow, { retry: { maxWait: 60 } }).removeWatermark(png()).catch((e) => e);
  assert.ok(caught instanceof RateLimitError && !caught.quotaExceeded && caught.retryAfter === 120);
  assert.equal(slow.calls.length, 1);
});

test('503 is retried with backoff, bounded by maxAttempts', async () => {
  const recovering = fakeApi([error(503, 'busy'), error(503, 'busy', { 'retry-after': '0.01' }), image()]);
  await client(recovering).removeWatermark(png());
  assert.equal(recovering.calls.length, 3);

  const down = fakeApi([], () => error(503, 'down'));
  await assert.rejects(client(down).stats(), ServiceUnavailableError);
  assert.equal(down.calls.length, FAST_RETRY.maxAttempts);
});

test('backoff grows, is capped, and is jittered', () => {
  const policy = new RetryPolicy({ backoffInitial: 1, backoffMax: 8 });
  const samples = Array.from({ length: 200 }, () => policy.backoff(3));
  assert.ok(samples.every((s) => s >= 2 && s <= 4));
  assert.ok(new Set(samples.map((s) => s.toFixed(6))).size > 150);
  assert.ok(Array.from({ length: 50 }, () => policy.backoff(10)).every((s) => s >= 4 && s <= 8));
  assert.throws(() => new RetryPolicy({ maxAttempts: 0 }), RangeError);
});

test('connection errors are retried, then reported without the request', async () => {
  const flaky = fakeApi([connectionRefused(), image()]);
  await client(flaky).removeWatermark(png());
  assert.equal(flaky.calls.length, 2);

  const gone = fakeApi([], () => {
    throw connectionRefused();
  });
  const caught = await client(gone).stats().catch((e) => e);
  assert.ok(caught instanceof APIConnectionError);
  assert.match(caught.message, /could not connect .*ECONNREFUSED/);
  assert.equal(caught.cause, undefined);
  assert.equal(gone.calls.length, FAST_RETRY.maxAttempts);
});

test('a request past the timeout becomes APITimeoutError', async () => {
  const calls = [];
  // Never answers; only the client's own timer ends the wait.
  const hangingFetch = (url, init) => new Promise((resolve, reject) => {
    calls.push(url);
    init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
  });
  const c = new IOPaintClient({
    apiKey: KEY, baseUrl: BASE_URL, timeout: 0.05, retry: { maxAttempts: 2, backoffInitial: 0.001 }, fetch: hangingFetch,
  });
  await assert.rejects(c.stats(), (e) => e instanceof APITimeoutError && /timed out/.test(e.message));
  assert.equal(calls.length, 2);
});

test('health reports unhealthy without retrying; stats are typed', async () => {
  const api = fakeApi([
    json({ status: 'unhealthy', model: 'lama', device: 'cpu', gpu_available: false, detail: 'loading' }, 503),
    json(
      { total: 3, success: 2, failed: 1, total_processing_time: 2.5, avg_processing_time: 1.25, plan: 'free',
        quota: { used: 3, limit: 10, period: 'day', resets_at: 1764028800 }, rate_limited: 4 },
      200,
      { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '2' },
    ),
  ]);
  const c = client(api);
  const health = await c.health();
  assert.equal(health.healthy, false);
  assert.equal(health.detail, 'loading');
  const stats = await c.stats();
  assert.equal(stats.plan, 'free');
  assert.deepEqual(stats.quota, { used: 3, limit: 10, period: 'day', resetsAt: 1764028800 });
  assert.deepEqual(stats.rateLimit, { limit: 5, remaining: 2, reset: null });
  assert.equal(api.calls.length, 2);
});

test('detect parses regions; detectMask asks for a PNG', async () => {
  const detection = {
    regions: [{ kind: 'text', box: { x: 1, y: 2, width: 30, height: 8 }, outline: [[1, 2], [31, 2]], score: 0.9, text: 'SAMPLE' }],
    coverage: 0.04, image_size: { width: 64, height: 48 }, processing_time: 0.2, mask_url: null,
  };
  const api = fakeApi([json(detection), image(png(64, 48, [255, 255, 255]))]);
  const c = client(api);
  const found = await c.detect(png());
  assert.equal(found.regions[0].text, 'SAMPLE');
  assert.equal(found.regions[0].box.width, 30);
  assert.deepEqual(found.imageSize, { width: 64, height: 48 });
  const mask = await c.detectMask(png());
  assert.deepEqual(mask.data, png(64, 48, [255, 255, 255]));
  assert.equal(api.calls[0].headers.Accept, 'application/json');
  assert.equal(api.calls[1].headers.Accept, 'image/png');
});

test('jobs: one idempotency key per submit, reused on retry; wait, result, cancel, delete', async () => {
  const body = (status) => ({ id: 'job_1', status, created_at: '2025-11-24T16:00:00Z', urls: {} });
  const api = fakeApi([
    connectionRefused(),
    error(503, 'busy'),
    json(body('queued'), 202),
    json(body('running')),
    json(body('succeeded')),
    image(),
    json(body('canceled')),
    json(null, 204),
    json(body('queued'), 202),
  ]);
  const c = client(api);
  const job = await c.jobs.submit(png(), { mask: png(), callbackUrl: 'https://example.test/hook', wait: 10 });
  assert.equal(job.status, 'queued');
  const done = await c.jobs.wait(job);
  assert.equal(done.done, true);
  const result = await c.jobs.result(done);
  assert.equal(result.model, 'opencv');
  assert.equal((await c.jobs.cancel('job_1')).status, 'canceled');
  await c.jobs.delete('job_1');
  await c.jobs.submit(png(), { idempotencyKey: 'order-42' });
  const keys = api.calls.map((call) => call.headers['Idempotency-Key']);
  assert.ok(keys[0].startsWith('iopaint-sdk-') && keys[0] === keys[1] && keys[1] === keys[2]);
  assert.equal(keys[8], 'order-42');
  assert.equal(api.calls[0].headers.Prefer, 'wait=10');
  assert.deepEqual((await parts(api.calls[2])).map((p) => p.name), ['image', 'mask', 'callback_url']);
  assert.deepEqual(api.calls.slice(3).map((call) => `${call.method} ${call.url.pathname}`), [
    'GET /api/v1/jobs/job_1', 'GET /api/v1/jobs/job_1', 'GET /api/v1/jobs/job_1/result',
    'POST /api/v1/jobs/job_1/cancel', 'DELETE /api/v1/jobs/job_1', 'POST /api/v1/jobs',
  ]);
  await assert.rejects(c.jobs.submit(png(), { wait: 61 }), RangeError);
  await assert.rejects(c.jobs.get('../stats'), TypeError);
});

test('jobs.wait gives up after its timeout', async () => {
  const api = fakeApi([], () => json({ id: 'job_2', status: 'running', urls: {} }));
  await assert.rejects(client(api).jobs.wait('job_2', { timeout: 0.6 }), JobTimeoutError);
});

test('a failed job carries its error as the matching class', async () => {
  const api = fakeApi([json({ id: 'j', status: 'failed', error: { error: 'Bad Request', detail: 'Invalid image format', status_code: 400 } })]);
  const job = await client(api).jobs.get('j');
  assert.ok(job.done && job.error instanceof InvalidImageError && job.error.detail === 'Invalid image format');
});

test('batchProcess: per-image results, unique names, a bad image fails alone', async () => {
  const dir = scratch();
  const images = ['a.png', 'bad.png', 'a.jpg'].map((name) => {
    fs.writeFileSync(path.join(dir, name), png());
    return path.join(dir, name);
  });
  const api = fakeApi([], async (call) => {
    if (call.url.pathname.endsWith('/stats')) return json({});
    const [first] = await parts(call);
    return first.filename === 'bad.png' ? error(400, 'Invalid image format') : image(first.bytes);
  });
  const results = await client(api).batchProcess(images, path.join(dir, 'out'), { masks: png(), progress: false });
  assert.deepEqual(results.map((r) => [path.basename(r.path), r.ok]), [['a.png', true], ['bad.png', false], ['a.jpg', true]]);
  assert.ok(results[1].error instanceof InvalidImageError);
  assert.deepEqual(results.map((r) => r.output && path.basename(r.output)), ['a.png', null, 'a-2.png']);
  assert.deepEqual(fs.readFileSync(results[0].output), png());
  assert.ok(api.calls.slice(1).every((call) => [...call.body.keys()].includes('mask')));
});

test('batchProcess stops sending once the key is refused', async () => {
  const api = fakeApi([], () => error(401, 'Invalid API Key'));
  const results = await client(api, { maxConcurrency: 1 }).batchProcess([png(), png(), png(), png()], scratch());
  assert.ok(results.every((r) => r.error instanceof AuthenticationError));
  assert.equal(api.calls.length, 2); // the stats read and the first image
  assert.deepEqual(results.map((r) => r.path), ['#1', '#2', '#3', '#4']);
});

test('batchProcess bounds concurrency', async () => {
  let active = 0;
  let peak = 0;
  const api = fakeApi([], async (call) => {
    if (call.url.pathname.endsWith('/stats')) return json({});
    active += 1;
    peak = Math.max(peak, active);
    await new Promise((resolve) => setTimeout(resolve, 30));
    active -= 1;
    return image();
  });
  const results = await client(api).batchProcess(Array(10).fill(png()), scratch(), { concurrency: 3 });
  assert.ok(results.every((r) => r.ok));
  assert.equal(peak, 3);
});

test('ESM import gives the same classes', async () => {
  const esm = await import('../src/index.mjs');
  assert.equal(esm.IOPaintClient, IOPaintClient);
  assert.equal(esm.RateLimitError, RateLimitError);
  assert.equal(esm.default.IOPaintClient, IOPaintClient);
  // By its package name too (a package may import itself through its "exports").
  const byName = await import('iopaint-sdk');
  assert.equal(byName.IOPaintClient, IOPaintClient);
  assert.equal(require('iopaint-sdk').IOPaintClient, IOPaintClient);
});

test('batchProcess paces a tight bucket in order and surfaces no 429', async () => {
  // The service's bucket on the real clock: burst 1, 120/min (a token every 0.5 s).
  const burst = 1;
  const perSecond = 2;
  let tokens = burst;
  let updated = Date.now() / 1000;
  let refusals = 0;
  const sent = [];
  const api = fakeApi([], async (call) => {
    const now = Date.now() / 1000;
    tokens = Math.min(burst, tokens + (now - updated) * perSecond);
    updated = now;
    const spends = call.url.pathname.endsWith('/remove-watermark');
    const refused = spends && tokens + 1e-9 < 1;
    if (spends && !refused) {
      tokens -= 1;
      sent.push((await parts(call))[0].bytes.readUInt32BE(20)); // the PNG's height tells them apart
    }
    const headers = {
      'x-ratelimit-limit': String(burst),
      'x-ratelimit-remaining': String(Math.floor(tokens + 1e-9)),
      'x-ratelimit-reset': String(Math.ceil(now + (burst - tokens) / perSecond)),
    };
    if (refused) {
      refusals += 1;
      return error(429, 'Rate limit exceeded.', { ...headers, 'retry-after': String(Math.max(1, Math.ceil((1 - tokens) / perSecond))) });
    }
    return spends ? image(png(), headers) : json({}, 200, headers);
  });
  const images = [1, 2, 3, 4, 5].map((height) => png(4, height));
  const results = await client(api).batchProcess(images, scratch(), { concurrency: 4 });
  assert.ok(results.every((r) => r.ok), results.map((r) => String(r.error)).join('; '));
  assert.deepEqual(sent, [1, 2, 3, 4, 5]);
  console.log(`5 images, burst 1, 120/min: 429s seen ${refusals}, surfaced 0`);
});
