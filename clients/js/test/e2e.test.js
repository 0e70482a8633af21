'use strict';
// The JS SDK against a real `bentoml serve`. tests/sdk/test_js_sdk.py starts the service,
// makes the keys and sample files, and runs this file with:
//   IOPAINT_TEST_BASE_URL, IOPAINT_TEST_API_KEY (no limit in the way),
//   IOPAINT_TEST_PACING_KEY (burst 2, 120/min), IOPAINT_TEST_QUOTA_KEY (quota 2),
//   IOPAINT_TEST_SAMPLES (a folder with image.jpg, img1.jpg, img2.jpg, mask.png).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { IOPaintClient, AuthenticationError, InvalidImageError, RateLimitError } = require('..');

const env = process.env;
const BASE_URL = env.IOPAINT_TEST_BASE_URL;
const SAMPLES = env.IOPAINT_TEST_SAMPLES;
const NO_SERVICE = BASE_URL ? false : 'needs a running service: run through tests/sdk/test_js_sdk.py';
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function sample(name) {
  return path.join(SAMPLES, name);
}

function scratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'iopaint-sdk-e2e-'));
}

function client(apiKey = env.IOPAINT_TEST_API_KEY, options = {}) {
  return new IOPaintClient({ apiKey, baseUrl: BASE_URL, ...options });
}

function pngSize(buffer) {
  assert.deepEqual(buffer.subarray(0, 8), PNG_SIGNATURE);
  return { width: buffer.readUInt32BE(16), height: buffer.readUInt32BE(20) };
}

test('health and stats', { skip: NO_SERVICE }, async () => {
  const c = client();
  const health = await c.health();
  assert.equal(health.healthy, true);
  assert.equal(health.model, 'opencv');
  const stats = await c.stats();
  assert.equal(stats.plan, 'enterprise');
  assert.equal(stats.total, stats.success + stats.failed);
});

test('removeWatermark writes result.png with the documented metadata', { skip: NO_SERVICE }, async () => {
  const out = path.join(scratch(), 'result.png');
  const result = await client().removeWatermark(sample('image.jpg'), out, { mask: sample('mask.png') });
  assert.deepEqual(pngSize(fs.readFileSync(out)), result.imageSize);
  assert.equal(result.model, 'opencv');
  assert.ok(result.processingTime >= 0 && result.requestId);
  assert.ok(result.rateLimit.limit > 0);
  const fromBuffers = await client().removeWatermark(fs.readFileSync(sample('image.jpg')), {
    mask: new Blob([fs.readFileSync(sample('mask.png'))], { type: 'image/png' }),
  });
  assert.deepEqual(fromBuffers.data, result.data);
});

test('documented errors become their classes, without the key', { skip: NO_SERVICE }, async () => {
  const junk = await client().removeWatermark(Buffer.from('not an image'), { mask: sample('mask.png') }).catch((e) => e);
  assert.ok(junk instanceof InvalidImageError);
  assert.match(junk.detail, /Invalid image format/);
  const wrong = `sk_live_${'C'.repeat(38)}`;
  const refused = await client(wrong).stats().catch((e) => e);
  assert.ok(refused instanceof AuthenticationError);
  assert.equal(refused.detail, 'Invalid API Key');
  assert.ok(!refused.message.includes(wrong) && !refused.message.includes(env.IOPAINT_TEST_API_KEY));
});

test('batchProcess reports each image', { skip: NO_SERVICE }, async () => {
  const dir = scratch();
  const broken = path.join(dir, 'broken.jpg');
  fs.writeFileSync(broken, 'not a jpeg');
  const results = await client().batchProcess([sample('img1.jpg'), broken, sample('img2.jpg')], path.join(dir, 'out'), {
    masks: sample('mask.png'),
  });
  assert.deepEqual(results.map((r) => r.ok), [true, false, true]);
  assert.ok(results[1].error instanceof InvalidImageError);
  assert.deepEqual(results.filter((r) => r.ok).map((r) => path.basename(r.output)), ['img1.png', 'img2.png']);
});

test('a tight limit is paced: no 429 reaches the caller', { skip: NO_SERVICE }, async () => {
  let refusals = 0;
  const counting = async (url, init) => {
    const response = await fetch(url, init);
    if (response.status === 429) refusals += 1;
    return response;
  };
  const c = client(env.IOPAINT_TEST_PACING_KEY, { fetch: counting });
  const started = performance.now();
  const results = await c.batchProcess(Array(8).fill(sample('img1.jpg')), scratch(), { masks: sample('mask.png') });
  const wall = (performance.now() - started) / 1000;
  assert.ok(results.every((r) => r.ok), results.filter((r) => !r.ok).map((r) => String(r.error)).join('; '));
  console.log(`8 images, burst 2, 120/min: ${wall.toFixed(1)} s (minimum 3.0 s); 429s seen ${refusals}, surfaced 0`);
});

test('a spent quota is thrown at once', { skip: NO_SERVICE }, async () => {
  let refusals = 0;
  const counting = async (url, init) => {
    const response = await fetch(url, init);
    if (response.status === 429) refusals += 1;
    return response;
  };
  const c = client(env.IOPAINT_TEST_QUOTA_KEY, { fetch: counting });
  for (let i = 0; i < 2; i += 1) await c.removeWatermark(sample('image.jpg'), { mask: sample('mask.png') });
  const refusal = await c.removeWatermark(sample('image.jpg'), { mask: sample('mask.png') }).catch((e) => e);
  assert.ok(refusal instanceof RateLimitError && refusal.quotaExceeded, String(refusal));
  assert.ok(refusal.retryAfter > 60);
  assert.equal(refusals, 1);
});

test('detect', { skip: NO_SERVICE }, async () => {
  const detection = await client().detect(sample('image.jpg'));
  assert.ok(detection.coverage >= 0 && detection.coverage <= 1);
  const mask = await client().detectMask(sample('image.jpg'));
  assert.deepEqual(pngSize(mask.data), detection.imageSize);
});

test('jobs', { skip: NO_SERVICE }, async () => {
  const c = client();
  const job = await c.jobs.submit(sample('image.jpg'), { mask: sample('mask.png'), idempotencyKey: 'js-e2e-1' });
  const again = await c.jobs.submit(sample('image.jpg'), { mask: sample('mask.png'), idempotencyKey: 'js-e2e-1' });
  assert.equal(again.id, job.id);
  const done = await c.jobs.wait(job, { timeout: 120 });
  assert.equal(done.status, 'succeeded');
  const result = await c.jobs.result(done);
  pngSize(result.data);
});
