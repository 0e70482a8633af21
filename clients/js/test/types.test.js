'use strict';
// The hand-written type declarations compile against real uses (tsc --noEmit, strict).
// Skipped with the reason when TypeScript is not installed (npm install in clients/js).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const MISSING = fs.existsSync(TSC) ? false : 'TypeScript is not installed: run `npm install` in clients/js';

test('index.d.ts and index.d.mts type-check real uses', { skip: MISSING }, () => {
  const run = spawnSync(process.execPath, [TSC, '-p', path.join(__dirname, 'types', 'tsconfig.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
