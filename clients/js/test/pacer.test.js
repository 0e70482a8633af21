'use strict';
// The pacer against a simulated server bucket on a fake clock (the Python SDK's
// clients/python/tests/bucket_simulation.py, in small): no 429, close to the minimum.

const test = require('node:test');
const assert = require('node:assert/strict');

const { Pacer } = require('..');

const EPSILON = 1e-9;

function bucketOn(clock, burst, ratePerMinute, { quota = 1e9, initial = burst } = {}) {
  const perSecond = ratePerMinute / 60;
  let tokens = initial;
  let updated = clock.now;
  let used = 0;
  return {
    get used() { return used; },
    decide() {
      const now = clock.now;
      tokens = Math.min(burst, tokens + (now - updated) * perSecond);
      updated = now;
      let status = 200;
      let retryAfter = 0;
      if (quota - used < 1) {
        status = 429;
        retryAfter = 30000;
      } else if (tokens + EPSILON < 1) {
        status = 429;
        retryAfter = Math.max(1, Math.ceil((1 - tokens) / perSecond - EPSILON));
      } else {
        tokens -= 1;
        used += 1;
      }
      const headers = {
        'x-ratelimit-limit': String(burst),
        'x-ratelimit-remaining': String(Math.max(0, Math.min(Math.floor(tokens + EPSILON), quota - used))),
        'x-ratelimit-reset': String(Math.ceil(now + (burst - tokens) / perSecond)),
      };
      if (status === 429) headers['retry-after'] = String(retryAfter);
      return { status, headers };
    },
  };
}

/** N requests by `concurrency` workers through one pacer; decisions 10 ms after sending. */
function simulate({ burst, rate, requests, concurrency, processing, quota, initial }) {
  const clock = { now: 1764000000 };
  const bucket = bucketOn(clock, burst, rate, { quota, initial });
  const pacer = new Pacer(() => clock.now, () => clock.now);
  const events = [];
  let order = 0;
  const push = (at, kind, payload) => {
    events.push({ at, order: order++, kind, payload });
    events.sort((a, b) => a.at - b.at || a.order - b.order);
  };
  let pending = requests;
  const waiting = [];
  const holding = new Set();
  const result = { refusals: 0, completed: 0, quotaRefusals: 0, lastSend: 0 };
  const start = clock.now;
  const trySend = (worker) => {
    if (!holding.has(worker)) {
      if (!pending) return;
      pending -= 1;
      holding.add(worker);
    }
    const delay = pacer.delay();
    if (delay === null) {
      waiting.push(worker);
      return;
    }
    if (delay > 0 && delay <= 300) {
      push(clock.now + delay, 'wake', worker);
      return;
    }
    const ticket = pacer.grant();
    result.lastSend = clock.now - start;
    push(clock.now + 0.01, 'decide', { worker, ticket });
  };
  for (let worker = 0; worker < concurrency; worker += 1) push(clock.now, 'wake', worker);
  while (events.length) {
    const event = events.shift();
    clock.now = Math.max(clock.now, event.at);
    if (event.kind === 'wake') trySend(event.payload);
    else if (event.kind === 'decide') {
      const answer = bucket.decide();
      const took = answer.status === 200 ? processing : 0;
      if (answer.status === 200) answer.headers['x-processing-time'] = took.toFixed(3);
      push(clock.now + took + 0.01, 'respond', { ...event.payload, answer });
    } else {
      const { worker, ticket, answer } = event.payload;
      const quotaRefusal = answer.status === 429 && bucket.used >= (quota ?? Infinity);
      pacer.observe(ticket, answer.status, answer.headers, { quotaRefusal });
      if (answer.status === 429) {
        result.refusals += 1;
        if (quotaRefusal) {
          result.quotaRefusals += 1;
          holding.delete(worker);
        }
      } else {
        result.completed += 1;
        holding.delete(worker);
      }
      for (const other of [...waiting.splice(0), worker]) push(clock.now, 'wake', other);
    }
  }
  return { ...result, pacer };
}

const CASES = [
  { burst: 5, rate: 2, requests: 20, concurrency: 4, processing: 1, refusals: 0 },
  { burst: 5, rate: 2, requests: 20, concurrency: 8, processing: 8, refusals: 0 },
  { burst: 20, rate: 10, requests: 60, concurrency: 4, processing: 2, refusals: 0 },
  // A token a second: Reset's whole seconds hide the interval at first (a few 429s, waited out).
  { burst: 3, rate: 60, requests: 30, concurrency: 4, processing: 0.3, refusals: 3 },
];

for (const shape of CASES) {
  test(`burst ${shape.burst}, ${shape.rate}/min, ${shape.requests} requests: at most ${shape.refusals} 429s, near the minimum`, () => {
    const result = simulate(shape);
    const minimum = Math.max(0, shape.requests - shape.burst) * (60 / shape.rate);
    assert.equal(result.completed, shape.requests);
    assert.ok(result.refusals <= shape.refusals, `${result.refusals} refusals`);
    assert.ok(result.lastSend >= minimum, `${result.lastSend} < ${minimum}`);
    assert.ok(result.lastSend <= minimum * 1.1 + 2, `${result.lastSend} vs ${minimum}`);
    assert.ok(result.pacer.interval <= 60 / shape.rate);
  });
}

test('a drained bucket costs at most one refusal', () => {
  const result = simulate({ burst: 5, rate: 2, requests: 10, concurrency: 4, processing: 1, initial: 0 });
  assert.equal(result.completed, 10);
  assert.ok(result.refusals <= 1);
});

test('a spent quota is refused, not waited for', () => {
  const result = simulate({ burst: 5, rate: 2, requests: 10, concurrency: 4, processing: 1, quota: 7 });
  assert.equal(result.completed, 7);
  assert.equal(result.quotaRefusals, 3);
});
