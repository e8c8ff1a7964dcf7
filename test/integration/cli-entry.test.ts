// bin/cairn finds the bundle however it is started: through a symlink (as an npm bin link is),
// by a relative path, or as `sh cairn` from its own directory.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CAIRN, tmpdir } from '../lib/helpers.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(path.dirname(CAIRN), '..', 'package.json'), 'utf8')) as { version: string }).version;

function version(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('bin/cairn', () => {
  it('runs through a symlink, a chain of symlinks, a relative path and sh', () => {
    const dir = tmpdir();
    fs.symlinkSync(CAIRN, path.join(dir, 'cairn'));
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.symlinkSync('../cairn', path.join(dir, 'bin', 'cairn'));
    assert.equal(version(path.join(dir, 'cairn'), ['--version'], dir), VERSION);
    assert.equal(version(path.join(dir, 'bin', 'cairn'), ['--version'], dir), VERSION);
    assert.equal(version('./cairn', ['--version'], path.dirname(CAIRN)), VERSION);
    assert.equal(version('sh', ['cairn', '--version'], path.dirname(CAIRN)), VERSION);
    assert.equal(version(CAIRN, ['--version'], dir), VERSION);
  });
});
