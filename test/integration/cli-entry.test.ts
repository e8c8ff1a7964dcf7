// bin/cairn finds the bundle however it is started: through a symlink (as an npm bin link is),
// by a relative path, or as `sh cairn` from its own directory. The bundle loads the heavier
// Node built-ins on first use only.
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

  it('a command that needs neither network, compression, hashing nor workers loads none of their built-ins', () => {
    const dir = tmpdir();
    const repo = path.join(dir, 'repo');
    assert.equal(spawnSync(CAIRN, ['init', `--repo=${repo}`, '--mode=bare-user']).status, 0);
    const bundle = path.join(path.dirname(CAIRN), '..', 'dist', 'bundle', 'cairn.js');
    const probe = `process.on('exit', () => process.stderr.write(JSON.stringify(process.moduleLoadList)));
      process.argv = [process.argv[0], ${JSON.stringify(bundle)}, 'refs', ${JSON.stringify(`--repo=${repo}`)}];
      require(${JSON.stringify(bundle)});`;
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const loaded = new Set((JSON.parse(r.stderr) as string[]).map((m) => m.replace(/^NativeModule /, '')));
    assert.ok(loaded.has('fs'));
    for (const m of ['zlib', 'crypto', 'http', 'child_process', 'worker_threads']) assert.ok(!loaded.has(m), `${m} is not loaded`);
  });
});
