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

/** The built bundle, and the entry point bin/cairn runs. */
const BUILT = path.join(path.dirname(CAIRN), '..', 'dist', 'bundle');
const ENTRY = path.join(BUILT, 'cairn.js');
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

  it("hands glibc's malloc its tunables, with the caller's own after them (the last one set wins)", () => {
    // a `node` first on PATH that prints what bin/cairn hands it
    const dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\nprintf "%s" "$GLIBC_TUNABLES"\n', { mode: 0o755 });
    const tunables = (caller: string | undefined): string => {
      const r = spawnSync(CAIRN, ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, GLIBC_TUNABLES: caller } });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const ours = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=134217728';
    assert.equal(tunables(undefined), ours);
    assert.equal(tunables(''), ours);
    assert.equal(tunables('glibc.malloc.hugetlb=0'), `${ours}:glibc.malloc.hugetlb=0`);
    // and glibc takes them: a 40 MiB allocation comes from the heap, not from a mapping of its own
    const probe = spawnSync('python3', ['-c', "b = bytearray(40 << 20); print(any(l.rstrip().endswith('[heap]') and int(l.split('-')[1].split()[0], 16) - int(l.split('-')[0], 16) >= 40 << 20 for l in open('/proc/self/maps')))"], {
      encoding: 'utf8', env: { ...process.env, GLIBC_TUNABLES: ours },
    });
    assert.equal(probe.stdout.trim(), 'True', probe.stderr);
  });

  it('a command that needs neither network, compression, hashing nor workers loads none of their built-ins', () => {
    const dir = tmpdir();
    const repo = path.join(dir, 'repo');
    assert.equal(spawnSync(CAIRN, ['init', `--repo=${repo}`, '--mode=bare-user']).status, 0);
    const probe = `process.on('exit', () => process.stderr.write(JSON.stringify(process.moduleLoadList)));
      process.argv = [process.argv[0], ${JSON.stringify(ENTRY)}, 'refs', ${JSON.stringify(`--repo=${repo}`)}];
      require(${JSON.stringify(ENTRY)});`;
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const loaded = new Set((JSON.parse(r.stderr) as string[]).map((m) => m.replace(/^NativeModule /, '')));
    assert.ok(loaded.has('fs'));
    for (const m of ['zlib', 'crypto', 'http', 'child_process', 'worker_threads', 'vm']) assert.ok(!loaded.has(m), `${m} is not loaded`);
  });

  it('a pull from an http:// remote loads neither http2 nor tls', async () => {
    const { dir, src } = sourceRepo();
    ok(cairn(['summary', `--repo=${src}`, '-u']));
    const server = await new TestServer(src).start();
    try {
      const dst = clientRepo(path.join(dir, 'dst'), server.url);
      const probe = `process.on('exit', () => process.stderr.write(JSON.stringify(process.moduleLoadList)));
        process.argv = [process.argv[0], ${JSON.stringify(ENTRY)}, 'pull', '-q', ${JSON.stringify(`--repo=${dst}`)}, 'origin', 'main'];
        require(${JSON.stringify(ENTRY)});`;
      const r = await run(process.execPath, ['-e', probe]);
      assert.equal(r.status, 0, r.stderr);
      const loaded = new Set((JSON.parse(r.stderr) as string[]).map((m) => m.replace(/^NativeModule /, '')));
      assert.ok(loaded.has('http'), 'the probe sees what the pull loads');
      for (const m of ['http2', 'tls']) assert.ok(!loaded.has(m), `${m} is not loaded`);
      assert.equal(fs.readFileSync(path.join(dst, 'refs', 'remotes', 'origin', 'main'), 'utf8').trim().length, 64);
      // through bin/cairn, both bundle files come with the code caches the build made
      const again = clientRepo(path.join(dir, 'again'), server.url);
      const p = await run(CAIRN, ['pull', '-q', `--repo=${again}`, 'origin', 'main'], { CAIRN_CODE_CACHE_STATUS: '1' });
      assert.equal(p.status, 0, p.stderr);
      assert.match(p.stderr, /^code cache: \{"cli\.js":"used","undici-agent\.js":"used"\}$/m);
    } finally {
      await server.stop();
    }
  });

  it("a pull keeps undici's WebAssembly HTTP parser at its baseline code (the first fetcher sets V8's --liftoff-only)", async () => {
    // enough responses for V8 to recompile the parser with TurboFan without the flag
    const { dir, src } = sourceRepo(300);
    ok(cairn(['summary', `--repo=${src}`, '-u']));
    const server = await new TestServer(src).start();
    try {
      const dst = clientRepo(path.join(dir, 'dst'), server.url);
      const r = await run(process.execPath, ['--trace-wasm-compilation-times', ENTRY, 'pull', '-q', `--repo=${dst}`, 'origin', 'main']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(fs.readFileSync(path.join(dst, 'refs', 'remotes', 'origin', 'main'), 'utf8').trim().length, 64);
      // (V8 writes its traces to stdout)
      const tiers = new Set([...r.stdout.matchAll(/^Compiled function .* using (\w+)/gm)].map((m) => m[1]));
      assert.deepEqual([...tiers], ['Liftoff'], r.stdout.slice(0, 2000));
    } finally {
      await server.stop();
    }
  });

  it('only a pull uses the code cache; one that is stale, damaged, missing or made under other V8 flags is not used, and the pull runs', () => {
    const { dir, src } = sourceRepo();
    const copy = path.join(dir, 'bundle');
    fs.cpSync(BUILT, copy, { recursive: true });
    fs.symlinkSync(path.join(BUILT, '..', '..', 'node_modules'), path.join(dir, 'node_modules')); // what the bundle requires
    let n = 0;
    /** The code cache's status for cli.js in a pull (file:// remote) run by the copy. */
    const pull = (flags: string[], cmd = 'pull'): string => {
      const repo = clientRepo(path.join(dir, `repo-${n++}`), `file://${src}`);
      const args = cmd === 'pull' ? ['pull', '-q', `--repo=${repo}`, 'origin', 'main'] : ['refs', `--repo=${repo}`];
      const r = spawnSync(process.execPath, [...flags, path.join(copy, 'cairn.js'), ...args], {
        encoding: 'utf8', env: { ...process.env, CAIRN_CODE_CACHE_STATUS: '1' },
      });
      assert.equal(r.status, 0, r.stderr);
      const status = /^code cache: (\{.*\})$/m.exec(r.stderr)?.[1];
      assert.ok(status, `no status in: ${r.stderr}`);
      return (JSON.parse(status) as Record<string, string>)['cli.js'] ?? 'not loaded';
    };
    assert.equal(pull([]), 'used', 'a copied bundle keeps its cache');
    assert.equal(pull([], 'refs'), 'not loaded', 'a short command compiles what it needs');
    assert.equal(pull(['--liftoff-only']), 'rejected', 'V8 refuses a cache made under other flags');
    const cacheFile = path.join(copy, 'cli.js.cache');
    const good = fs.readFileSync(cacheFile);
    const bad = Buffer.from(good);
    for (let i = bad.length >> 1; i < (bad.length >> 1) + 256; i++) bad[i] = bad[i]! ^ 0x5a;
    fs.writeFileSync(cacheFile, bad);
    assert.equal(pull([]), 'damaged', 'V8 would stop the process on damaged data');
    fs.writeFileSync(cacheFile, good.subarray(0, good.length >> 1));
    assert.equal(pull([]), 'damaged');
    fs.writeFileSync(cacheFile, good);
    fs.appendFileSync(path.join(copy, 'cli.js'), '\n// another build\n');
    assert.equal(pull([]), 'stale');
    fs.rmSync(cacheFile);
    assert.equal(pull([]), 'none');
  });
});

/** A temporary directory with an archive repo `src` holding one commit on `main`: `hello`, and `files` more. */
function sourceRepo(files = 0): { dir: string; src: string } {
  const dir = tmpdir();
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'hello'), 'hello\n');
  for (let i = 0; i < files; i++) fs.writeFileSync(path.join(tree, `f${i}`), `file ${i}\n`);
  const src = path.join(dir, 'src');
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  ok(cairn(['commit', `--repo=${src}`, '-b', 'main', `--tree=dir=${tree}`]));
  return { dir, src };
}

/** A new bare-user repo at `repo` with the remote `origin` at `url` (no GPG). */
function clientRepo(repo: string, url: string): string {
  ok(cairn(['init', `--repo=${repo}`, '--mode=bare-user']));
  ok(cairn(['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', url]));
  return repo;
}

/** Runs a command without blocking this process's event loop (the test server lives in it). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
