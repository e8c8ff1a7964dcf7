// docs/errors.md must list every error code, and only those (fastify's errors-doc pattern).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CLASSES } from '../../src/errors.js';
import { ROOT } from '../lib/helpers.js';

it('docs/errors.md lists exactly the codes in src/errors.ts', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  const codes = new Set(ERROR_CLASSES.map((c) => c.code as string));
  assert.deepEqual([...codes].filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md');
  assert.deepEqual([...documented].filter((c) => !codes.has(c!)), [], 'documented codes that do not exist');
});
