'use strict';
// Watermark profiles in the JS client: the requests each call sends and what it makes of answers.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { IOPaintClient, NotFoundError, ServiceUnavailableError } = require('..');
const { KEY, BASE_URL, FAST_RETRY, png, error, image, json, fakeApi, parts } = require('../testing/fake-api');

const PROFILE = {
  id: `wm_${'ab'.repeat(16)}`,
  name: 'logo.png',
  width: 120,
  height: 40,
  source: 'upload',
  created_at: '2026-12-02T01:00:00Z',
  urls: { self: `/api/v1/watermarks/wm_${'ab'.repeat(16)}` },
};

function client(api) {
  return new IOPaintClient({ apiKey: KEY, baseUrl: BASE_URL, retry: FAST_RETRY, fetch: api.fetch });
}

test('watermarks.create(png, {name}) sends the watermark field and parses the profile', async () => {
  const api = fakeApi([json(PROFILE, 201)]);
  const profile = await client(api).watermarks.create(png(), { name: 'Studio' });
  const [call] = api.calls;
  assert.equal(call.method, 'POST');
  assert.equal(call.url.href, `${BASE_URL}/api/v1/watermarks`);
  const sent = await parts(call);
  assert.deepEqual(sent.map((p) => p.name), ['watermark', 'name']);
  assert.equal(sent[1].bytes.toString(), 'Studio');
  assert.deepEqual(
    { id: profile.id, width: profile.width, height: profile.height, source: profile.source, createdAt: profile.createdAt },
    { id: PROFILE.id, width: 120, height: 40, source: 'upload', createdAt: PROFILE.created_at },
  );
  assert.equal(profile.seenAt, null);
});

test('watermarks.create({images}) sends every image for an estimate', async () => {
  const seen = { x: 12, y: 30, image_width: 640, image_height: 480 };
  const api = fakeApi([json({ ...PROFILE, source: 'estimated', seen_at: seen }, 201)]);
  const profile = await client(api).watermarks.create({ images: [png(), png(), png()] });
  assert.deepEqual((await parts(api.calls[0])).map((p) => p.name), ['image', 'image', 'image']);
  assert.equal(profile.source, 'estimated');
  assert.deepEqual(profile.seenAt, { x: 12, y: 30, imageWidth: 640, imageHeight: 480 });
});

test('watermarks.create wants a PNG or images, not both, and is not retried', async () => {
  const api = fakeApi([error(503, 'busy', { 'retry-after': '0' }), json(PROFILE, 201)]);
  const c = client(api);
  await assert.rejects(c.watermarks.create(), TypeError);
  await assert.rejects(c.watermarks.create(png(), { images: [png(), png()] }), TypeError);
  assert.equal(api.calls.length, 0);
  await assert.rejects(c.watermarks.create(png()), ServiceUnavailableError);
  assert.equal(api.calls.length, 1);
});

test('watermarks.list/get/png/delete', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iopaint-sdk-'));
  const mark = png(12, 4);
  const api = fakeApi([
    json({ watermarks: [PROFILE] }),
    json(PROFILE),
    new Response(mark, { status: 200, headers: { 'content-type': 'image/png' } }),
    new Response(null, { status: 204 }),
  ]);
  const c = client(api);
  const [listed] = await c.watermarks.list();
  const got = await c.watermarks.get(listed);
  const content = await c.watermarks.png(got.id, path.join(dir, 'mark.png'));
  await c.watermarks.delete(got);
  assert.equal(listed.id, PROFILE.id);
  assert.deepEqual(content, mark);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'mark.png')), mark);
  const where = `/api/v1/watermarks/${PROFILE.id}`;
  assert.deepEqual(
    api.calls.map((call) => [call.method, call.url.pathname, (call.headers || {}).Accept ?? null]),
    [['GET', '/api/v1/watermarks', null], ['GET', where, 'application/json'], ['GET', where, 'image/png'], ['DELETE', where, null]],
  );
});

test('an unknown profile is a NotFoundError', async () => {
  const api = fakeApi([error(404, 'No watermark profile wm_x')]);
  await assert.rejects(client(api).watermarks.get('wm_x'), NotFoundError);
});

test('removeWatermark, jobs.submit and batches.submit send the profile id; result.removal', async () => {
  const job = { id: 'job_1', status: 'queued', urls: {} };
  const batch = { id: 'batch_1', status: 'queued', jobs: [], urls: {} };
  const api = fakeApi([image(png(), { 'x-removal': 'deblend', 'x-mask-source': 'profile' }), json(job, 202), json(batch, 202)]);
  const c = client(api);
  const result = await c.removeWatermark(png(), { watermark: PROFILE });
  await c.jobs.submit(png(), { watermark: PROFILE.id });
  await c.batches.submit([png()], { watermark: PROFILE });
  assert.equal(result.removal, 'deblend');
  assert.equal(result.maskSource, 'profile');
  for (const call of api.calls) {
    const texts = (await parts(call)).filter((p) => p.filename === null || p.type === null);
    assert.deepEqual(texts.map((p) => [p.name, p.bytes.toString()]), [['watermark', PROFILE.id]]);
  }
});

test('without a profile no watermark field is sent', async () => {
  const api = fakeApi([image(png(), { 'x-removal': 'inpaint' })]);
  const result = await client(api).removeWatermark(png());
  assert.equal(result.removal, 'inpaint');
  assert.deepEqual((await parts(api.calls[0])).map((p) => p.name), ['image']);
});
