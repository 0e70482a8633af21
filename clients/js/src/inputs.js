'use strict';
/**
 * What a caller may pass as an image or mask: a file path, a Buffer / Uint8Array /
 * ArrayBuffer, or a Blob. Each becomes an in-memory upload, so a retry can send it again.
 */

const fs = require('node:fs/promises');
const path = require('node:path');

const SIGNATURES = [
  [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'image/png', '.png'],
  [[0xff, 0xd8, 0xff], 'image/jpeg', '.jpg'],
  [[0x47, 0x49, 0x46, 0x38], 'image/gif', '.gif'],
  [[0x42, 0x4d], 'image/bmp', '.bmp'],
];

const BY_SUFFIX = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
};

/**
 * @returns {Promise<{filename: string, content: Uint8Array, contentType: string}>}
 */
async function toUpload(value, defaultName) {
  if (typeof value === 'string' || value instanceof URL) {
    const content = new Uint8Array(await fs.readFile(value));
    const filename = path.basename(value instanceof URL ? value.pathname : value);
    return { filename, content, contentType: contentType(filename, content) };
  }
  let content = null;
  if (value instanceof Uint8Array) content = new Uint8Array(value);
  else if (value instanceof ArrayBuffer) content = new Uint8Array(value.slice(0));
  else if (typeof Blob !== 'undefined' && value instanceof Blob) {
    content = new Uint8Array(await value.arrayBuffer());
    const name = typeof value.name === 'string' && value.name ? value.name : sniffName(defaultName, content);
    return { filename: name, content, contentType: value.type || contentType(name, content) };
  }
  if (content === null) {
    const kind = value === null ? 'null' : typeof value === 'object' ? value.constructor?.name : typeof value;
    throw new TypeError(
      `cannot send ${kind} as an image: pass a file path, a Buffer/Uint8Array/ArrayBuffer or a Blob`,
    );
  }
  return { filename: sniffName(defaultName, content), content, contentType: contentType('', content) };
}

/** Write `content` to the file `target` (parent folders are created). */
async function writeOutput(content, target) {
  await fs.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  await fs.writeFile(target, content);
  return target;
}

function matches(content, signature) {
  return signature.every((byte, index) => content[index] === byte);
}

function isWebp(content) {
  const text = (start, end) => String.fromCharCode(...content.subarray(start, end));
  return content.length >= 12 && text(0, 4) === 'RIFF' && text(8, 12) === 'WEBP';
}

function contentType(filename, content) {
  for (const [signature, type] of SIGNATURES) if (matches(content, signature)) return type;
  if (isWebp(content)) return 'image/webp';
  return BY_SUFFIX[path.extname(filename).toLowerCase()] || 'application/octet-stream';
}

function sniffName(defaultName, content) {
  for (const [signature, , suffix] of SIGNATURES) {
    if (matches(content, signature)) return defaultName + suffix;
  }
  return isWebp(content) ? `${defaultName}.webp` : defaultName;
}

module.exports = { toUpload, writeOutput };
