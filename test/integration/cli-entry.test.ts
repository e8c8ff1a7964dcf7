// bin/cairn finds the bundle however it is started: through a symlink (as an npm bin link is),
// by a relative path, or as `sh cairn` from its own directory. The bundle loads the heavier
// Node built-ins on first use only, and a pull over http:// never loads HTTP/2 or TLS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CAIRN, cairn, ok, tmpdir } from '../lib/helpers.js';
import { TestServer } from '../lib/net.js';

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

  it('a pull from an http:// remote loads neither http2 nor tls', async () => {
    const dir = tmpdir();
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'hello'), 'hello\n');
    const src = path.join(dir, 'src');
    ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
    ok(cairn(['commit', `--repo=${src}`, '-b', 'main', `--tree=dir=${tree}`]));
    ok(cairn(['summary', `--repo=${src}`, '-u']));
    const server = await new TestServer(src).start();
    try {
      const dst = path.join(dir, 'dst');
      ok(cairn(['init', `--repo=${dst}`, '--mode=bare-user']));
      ok(cairn(['remote', 'add', `--repo=${dst}`, '--no-gpg-verify', 'origin', server.url]));
      const bundle = path.join(path.dirname(CAIRN), '..', 'dist', 'bundle', 'cairn.js');
      const probe = `process.on('exit', () => process.stderr.write(JSON.stringify(process.moduleLoadList)));
        process.argv = [process.argv[0], ${JSON.stringify(bundle)}, 'pull', '-q', ${JSON.stringify(`--repo=${dst}`)}, 'origin', 'main'];
        require(${JSON.stringify(bundle)});`;
      const r = await run(process.execPath, ['-e', probe]);
      assert.equal(r.status, 0, r.stderr);
      const loaded = new Set((JSON.parse(r.stderr) as string[]).map((m) => m.replace(/^NativeModule /, '')));
      assert.ok(loaded.has('http'), 'the probe sees what the pull loads');
      for (const m of ['http2', 'tls']) assert.ok(!loaded.has(m), `${m} is not loaded`);
      assert.equal(fs.readFileSync(path.join(dst, 'refs', 'remotes', 'origin', 'main'), 'utf8').trim().length, 64);
    } finally {
      await server.stop();
    }
  });
});

/** Runs a command without blocking this process's event loop (the test server lives in it). */
function run(cmd: string, args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}
