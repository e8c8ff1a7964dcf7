// docs/errors.md must list every error code, and only those (fastify's errors-doc pattern).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CLASSES, IoError, NoSpaceError, describeError, noSpace } from '../../src/errors.js';
import { ROOT } from '../lib/helpers.js';

it('docs/errors.md lists exactly the codes in src/errors.ts', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  const codes = new Set(ERROR_CLASSES.map((c) => c.code as string));
  assert.deepEqual([...codes].filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md');
  assert.deepEqual([...documented].filter((c) => !codes.has(c!)), [], 'documented codes that do not exist');
});

it('noSpace: ENOSPC and EDQUOT become IO_NO_SPACE naming what was written; other errors pass unchanged', () => {
  const sys = (code: string, message: string): NodeJS.ErrnoException => Object.assign(new Error(message), { code });
  const full = noSpace(sys('ENOSPC', 'ENOSPC: no space left on device, write'), 'cannot store objects in /r', '/r');
  assert.ok(full instanceof NoSpaceError);
  assert.equal(full.code, 'IO_NO_SPACE');
  assert.equal(full.path, '/r');
  assert.equal(describeError(full), 'cannot store objects in /r: ENOSPC: no space left on device, write');
  assert.ok(noSpace(sys('EDQUOT', 'EDQUOT: disk quota exceeded, write'), 'x') instanceof NoSpaceError);
  const other = sys('EIO', 'EIO: i/o error, write');
  assert.equal(noSpace(other, 'x'), other);
  const typed = new IoError('already typed', { cause: sys('ENOSPC', 'ENOSPC') });
  assert.equal(noSpace(typed, 'x'), typed);
});
