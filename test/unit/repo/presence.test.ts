// ObjectPresence (repo/presence.ts): a pull's tree walk learns which objects the repo has from one
// listing per objects/xx directory, and from one lstat per object where a directory is too large
// to list.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ObjectPresence, Repo } from '../../../src/repo/index.js';
import type { Checksum } from '../../../src/format/index.js';

const csum = (xx: string, n: number): Checksum => (xx + n.toString(16).padStart(62, '0')) as Checksum;

it('answers from listings, and object by object for a directory too large to list', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-presence-'));
  const repo = Repo.init(path.join(dir, 'repo'), { mode: 'bare-user' });
  const put = (c: Checksum, type: 'file' | 'dirtree'): void => {
    fs.mkdirSync(path.dirname(repo.objectPath(c, type)), { recursive: true });
    fs.writeFileSync(repo.objectPath(c, type), '');
  };
  put(csum('ab', 1), 'file');
  put(csum('ab', 2), 'dirtree');
  // 1,200 names make objects/cd larger than the 64 KiB listing limit
  for (let i = 0; i < 1200; i++) put(csum('cd', i), 'file');
  assert.ok(fs.statSync(path.join(repo.path, 'objects', 'cd')).size > 64 * 1024);

  const p = new ObjectPresence(repo);
  assert.equal(p.has(csum('ab', 1), 'file'), true);
  assert.equal(p.has(csum('ab', 1), 'dirtree'), false, 'the type is part of the name');
  assert.equal(p.has(csum('ab', 2), 'dirtree'), true);
  assert.equal(p.has(csum('ab', 3), 'file'), false);
  assert.equal(p.has(csum('ef', 1), 'file'), false, 'a directory that does not exist');
  assert.equal(p.has(csum('cd', 1199), 'file'), true);
  assert.equal(p.has(csum('cd', 1200), 'file'), false);
  // a snapshot for listed directories; object by object for the large one
  put(csum('ab', 3), 'file');
  put(csum('cd', 1200), 'file');
  put(csum('ef', 1), 'file');
  assert.equal(p.has(csum('ab', 3), 'file'), false, 'listed before it was written');
  assert.equal(p.has(csum('ef', 1), 'file'), false, 'its directory was found missing before');
  assert.equal(p.has(csum('cd', 1200), 'file'), true, 'the large directory is asked each time');
  assert.equal(new ObjectPresence(repo).has(csum('ab', 3), 'file'), true, 'a new walk sees it');
  fs.rmSync(dir, { recursive: true, force: true });
});
