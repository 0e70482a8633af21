'use strict';
// A scripted stand-in for the API: a fetch that answers each call with the next reply.

const zlib = require('node:zlib');

const KEY = 'sk_live_4eC39HqLyjWDarjtT1zdp7dcX9qLm2Pb0a3ZkQ';
const BASE_URL = 'http://api.test';
const FAST_RETRY = { maxAttempts: 4, maxWait: 30, backoffInitial: 0.001, backoffMax: 0.004 };

/** A real, tiny RGB PNG (width x height of one colour). */
function png(width = 8, height = 6, [r, g, b] = [200, 30, 30]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const byte of bytes) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([length, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(width).fill([r, g, b]).flat())]);
  const pixels = zlib.deflateSync(Buffer.concat(Array(height).fill(row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', pixels),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const PHRASES = {
  400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 410: 'Gone',
  413: 'Payload Too Large', 422: 'Unprocessable Entity', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

function error(status, detail, headers = {}) {
  return new Response(JSON.stringify({ error: PHRASES[status], detail, status_code: status }), {
    status,
    headers: { 'content-type': 'application/json', 'x-request-id': `req-${status}`, ...headers },
  });
}

function image(content = png(), headers = {}) {
  return new Response(content, {
    status: 200,
    headers: {
      'content-type': 'image/png',
      'x-processing-time': '0.125',
      'x-image-size': '8x6',
      'x-model': 'opencv',
      'x-request-id': 'req-ok',
      ...headers,
    },
  });
}

function json(body, status = 200, headers = {}) {
  return new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A fetch answering with `replies` in turn (a Response, an Error to throw, or a function). */
function fakeApi(replies = [], fallback = null) {
  const calls = [];
  const fetch = async (url, init) => {
    const call = { url: new URL(url), method: init.method, headers: init.headers, body: init.body };
    calls.push(call);
    const reply = replies.length ? replies.shift() : fallback;
    if (reply === null) throw new Error(`unexpected request ${init.method} ${url}`);
    if (reply instanceof Error) throw reply;
    return typeof reply === 'function' ? reply(call) : reply;
  };
  return { fetch, calls };
}

/** The form parts of a recorded call: [{name, filename, type, bytes}] in order. */
async function parts(call) {
  const found = [];
  for (const [name, value] of call.body.entries()) {
    if (typeof value === 'string') found.push({ name, filename: null, type: null, bytes: Buffer.from(value) });
    else found.push({ name, filename: value.name, type: value.type, bytes: Buffer.from(await value.arrayBuffer()) });
  }
  return found;
}

function connectionRefused() {
  const failure = new TypeError('fetch failed');
  failure.cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  return failure;
}

module.exports = { KEY, BASE_URL, FAST_RETRY, png, error, image, json, fakeApi, parts, connectionRefused };
