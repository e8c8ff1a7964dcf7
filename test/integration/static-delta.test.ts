// Static deltas against the real ostree 2022.7: cairn's deltas are accepted by
// `ostree static-delta apply-offline` and `ostree pull --require-static-deltas`; ostree's
// deltas (bsdiff and rollsum ops included) are applied by cairn; corrupt deltas are refused
// with one line and nothing stored; offline bundles carry fallbacks and signatures.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { pseudoRandom } from '../lib/trees.js';
import { parseSuperblock, serializeSuperblock, parsePartPayload, serializePartPayload } from '../../src/format/delta.js';
import { sha256 } from '../../src/format/index.js';

const execFileP = promisify(execFile);
const SK = 'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwfqSmxj4pxSCr71UHsTLsX5lUd2rr6+e5JCHuppFEbSLA==';
const PK = '6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=';
const OTHER_PK = 'J4YOnOvwXDxlCV3HdwlY37xG5l98JLF1fWKyUYhWHi8=';

let W: string;
let SRC: string; // archive repo with A and B, written by cairn
let A: string;
let B: string;

function write(root: string, rel: string, data: string | Buffer, mode = 0o644): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
  fs.chmodSync(p, mode);
}

/** v1 and v2 trees: modified binaries (so ostree picks rollsum and bsdiff), new, removed, symlinks. */
function makeTrees(): { t1: string; t2: string } {
  const t1 = path.join(W, 't1');
  const t2 = path.join(W, 't2');
  const bin = fs.readFileSync('/usr/bin/ostree');
  const xz = fs.readFileSync(fs.realpathSync('/usr/bin/xz'));
  write(t1, 'usr/bin/ostree', bin, 0o755);
  write(t1, 'usr/bin/xz', xz, 0o755);
  write(t1, 'etc/os-release', 'NAME=test\nVERSION=1\n');
  write(t1, 'etc/removed.conf', 'gone in v2\n');
  fs.symlinkSync('../usr/bin/xz', path.join(t1, 'etc/xz-link'));
  write(t1, 'usr/share/doc/a.txt', 'same in both\n'.repeat(100));
  for (let i = 0; i < 20; i++) write(t1, `usr/lib/mod/m${i}.so`, pseudoRandom(3000, `m${i}`));
  fs.cpSync(t1, t2, { recursive: true, verbatimSymlinks: true });
  // bsdiff-friendly: scattered small edits in the ostree binary
  const b2 = Buffer.from(bin);
  for (let off = 4096; off < b2.length; off += 8192) b2[off] ^= 0xff;
  write(t2, 'usr/bin/ostree', b2, 0o755);
  // rollsum-friendly: appended bytes
  write(t2, 'usr/bin/xz', Buffer.concat([xz, Buffer.from('appended in v2\n')]), 0o755);
  write(t2, 'etc/os-release', 'NAME=test\nVERSION=2\n');
  fs.rmSync(path.join(t2, 'etc/removed.conf'));
  write(t2, 'etc/new.conf', 'new in v2\n', 0o600);
  fs.symlinkSync('os-release', path.join(t2, 'etc/os-release.link'));
  write(t2, 'usr/lib/mod/m3.so', pseudoRandom(3100, 'm3-v2'));
  return { t1, t2 };
}

/** Tree of `rev` as checked out by the real ostree from `repo` (user mode). */
function ostreeTree(repo: string, rev: string): Map<string, ReturnType<typeof snapshotTree> extends Map<string, infer E> ? E : never> {
  const d = path.join(W, `co-${Math.random().toString(36).slice(2)}`);
  ok(ostree(['checkout', `--repo=${repo}`, '-U', rev, d]), 'ostree checkout');
  return snapshotTree(d, { ownership: false });
}

function objectsList(repo: string): string[] {
  const out: string[] = [];
  const root = path.join(repo, 'objects');
  for (const d of fs.readdirSync(root)) for (const f of fs.readdirSync(path.join(root, d))) out.push(`${d}/${f}`);
  return out.sort();
}

/** A bare-user repo holding commit A, pulled by ostree from SRC. */
function clientAtA(name: string, mode = 'bare-user', init: 'ostree' | 'cairn' = 'ostree'): string {
  const c = path.join(W, name);
  if (init === 'ostree') ok(ostree(['init', `--repo=${c}`, `--mode=${mode}`]), 'ostree init');
  else ok(cairn(['init', `--repo=${c}`, `--mode=${mode}`]), 'cairn init');
  ok(ostree(['pull-local', `--repo=${c}`, SRC, A]), 'pull-local A');
  return c;
}

function oneLine(stderr: string): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

before(() => {
  W = tmpdir('cairn-delta-');
  const { t1, t2 } = makeTrees();
  SRC = path.join(W, 'src');
  ok(cairn(['init', `--repo=${SRC}`, '--mode=archive']));
  A = ok(cairn(['commit', `--repo=${SRC}`, '-b', 'main', '--timestamp=2024-01-01T00:00:00Z', '-s', 'v1', `--tree=dir=${t1}`]));
  B = ok(cairn(['commit', `--repo=${SRC}`, '-b', 'main', '--timestamp=2024-02-01T00:00:00Z', '-s', 'v2', `--tree=dir=${t2}`]));
});

describe('static deltas with the real ostree', () => {
  it('ostree apply-offline accepts a cairn delta (bsdiff included) into bare-user; fsck clean, same tree', () => {
    const r = cairn(['static-delta', 'generate', `--repo=${SRC}`, `--from=${A}`, `--to=${B}`, '--json']);
    const info = JSON.parse(ok(r));
    assert.ok(info.bsdiff >= 1, 'at least one bsdiff op');
    assert.equal(info.fallbacks, 0);
    assert.match(ok(cairn(['static-delta', 'list', `--repo=${SRC}`])), new RegExp(`${A}-${B}`));
    const c = clientAtA('c-ostree');
    ok(ostree(['static-delta', 'apply-offline', `--repo=${c}`, path.join(SRC, relDir(A, B))]), 'ostree apply-offline');
    ok(ostree(['fsck', `--repo=${c}`]), 'ostree fsck');
    assert.deepEqual(treeDiff(ostreeTree(SRC, B), ostreeTree(c, B)), []);
  });

  it('ostree apply-offline accepts a cairn from-scratch delta into a bare repo', () => {
    ok(cairn(['static-delta', 'generate', `--repo=${SRC}`, '--empty', `--to=${A}`]));
    const c = path.join(W, 'c-bare');
    ok(ostree(['init', `--repo=${c}`, '--mode=bare']));
    const sb = path.join(SRC, relDir(null, A), 'superblock');
    ok(ostree(['static-delta', 'apply-offline', `--repo=${c}`, sb]), 'ostree apply-offline');
    ok(ostree(['fsck', `--repo=${c}`]), 'ostree fsck');
    assert.deepEqual(treeDiff(ostreeTree(SRC, A), ostreeTree(c, A)), []);
  });

  it('ostree pull --require-static-deltas fetches a cairn delta over HTTP', async () => {
    ok(ostree(['summary', '-u', `--repo=${SRC}`]), 'ostree summary -u');
    const served: string[] = [];
    const server = http.createServer((req, res) => {
      const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
      served.push(rel);
      const p = path.join(SRC, rel);
      if (!p.startsWith(SRC) || !fs.existsSync(p) || !fs.statSync(p).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': fs.statSync(p).size });
      fs.createReadStream(p).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const c = path.join(W, 'c-pull');
      ok(ostree(['init', `--repo=${c}`, '--mode=bare-user']));
      ok(ostree(['remote', 'add', `--repo=${c}`, '--no-gpg-verify', 'origin', `http://127.0.0.1:${port}`]));
      await execFileP('ostree', ['pull', `--repo=${c}`, 'origin', `main@${A}`]);
      served.length = 0;
      await execFileP('ostree', ['pull', `--repo=${c}`, '--require-static-deltas', 'origin', 'main']);
      assert.ok(served.some((s) => s.startsWith('deltas/') && s.endsWith('/superblock')), `superblock fetched: ${served.join(' ')}`);
      assert.ok(served.some((s) => /^deltas\/.+\/0$/.test(s)), 'part 0 fetched');
      assert.equal(ok(ostree(['rev-parse', `--repo=${c}`, 'origin:main'])), B);
      ok(ostree(['fsck', `--repo=${c}`]), 'ostree fsck');
      assert.deepEqual(treeDiff(ostreeTree(SRC, B), ostreeTree(c, B)), []);
    } finally {
      server.close();
    }
  });

  it('cairn apply-offline applies an ostree-generated delta with rollsum and bsdiff ops', () => {
    const src2 = path.join(W, 'src2');
    ok(ostree(['init', `--repo=${src2}`, '--mode=archive']));
    ok(ostree(['pull-local', '--depth=1', `--repo=${src2}`, SRC, 'main']));
    ok(ostree(['static-delta', 'generate', `--repo=${src2}`, `--from=${A}`, `--to=${B}`, '--min-fallback-size=0']), 'ostree generate');
    const show = ok(ostree(['static-delta', 'show', `--repo=${src2}`, `${A}-${B}`]));
    assert.match(show, /bspatch=[1-9]/, 'ostree used bsdiff');
    assert.match(show, /write=[1-9]/, 'ostree used rollsum');
    const c = clientAtA('c-cairn', 'bare-user', 'cairn');
    const dir = path.join(src2, relDir(A, B));
    const r = cairn(['static-delta', 'apply-offline', `--repo=${c}`, '--ref=main', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), B);
    ok(cairn(['fsck', `--repo=${c}`]), 'cairn fsck');
    ok(ostree(['fsck', `--repo=${c}`]), 'ostree fsck');
    assert.deepEqual(treeDiff(ostreeTree(SRC, B), ostreeTree(c, 'main')), []);
  });
});

describe('applying into an archive repository', () => {
  it('cairn apply-offline stores the objects compressed, as archive objects; fsck clean, same tree', () => {
    const c = clientAtA('c-archive', 'archive', 'cairn');
    const r = cairn(['static-delta', 'apply-offline', `--repo=${c}`, '--ref=main', path.join(SRC, relDir(A, B))]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), B);
    ok(cairn(['fsck', `--repo=${c}`]), 'cairn fsck');
    ok(ostree(['fsck', `--repo=${c}`]), 'ostree fsck');
    assert.deepEqual(treeDiff(ostreeTree(SRC, B), ostreeTree(c, 'main')), []);
  });
});

describe('ostree delta variants', () => {
  it('cairn applies an ostree delta with inline parts and big-endian sizes, given its superblock path', () => {
    const src4 = path.join(W, 'src4');
    ok(ostree(['init', `--repo=${src4}`, '--mode=archive']));
    ok(ostree(['pull-local', '--depth=1', `--repo=${src4}`, SRC, 'main']));
    ok(ostree(['static-delta', 'generate', `--repo=${src4}`, `--from=${A}`, `--to=${B}`, '--inline', '--swap-endianness', '--min-fallback-size=0']));
    const dir = path.join(src4, relDir(A, B));
    assert.deepEqual(fs.readdirSync(dir), ['superblock']);
    const c = clientAtA('c-inline', 'bare-user', 'cairn');
    const r = cairn(['static-delta', 'apply-offline', `--repo=${c}`, '--ref=main', path.join(dir, 'superblock')]);
    assert.equal(r.status, 0, r.stderr);
    ok(ostree(['fsck', `--repo=${c}`]), 'ostree fsck');
    assert.deepEqual(treeDiff(ostreeTree(SRC, B), ostreeTree(c, 'main')), []);
  });
});

function relDir(from: string | null, to: string): string {
  const mb64 = (c: string): string => Buffer.from(c, 'hex').toString('base64').replace(/\//g, '_').replace(/=+$/, '');
  const t = mb64(to);
  if (!from) return `deltas/${t.slice(0, 2)}/${t.slice(2)}`;
  const f = mb64(from);
  return `deltas/${f.slice(0, 2)}/${f.slice(2)}-${t}`;
}

describe('refusing bad deltas', () => {
  let good: string;
  before(() => {
    ok(cairn(['static-delta', 'generate', `--repo=${SRC}`, `--from=${A}`, `--to=${B}`]));
    good = path.join(SRC, relDir(A, B));
  });
  const copyDelta = (name: string): string => {
    const d = path.join(W, name);
    fs.cpSync(good, d, { recursive: true });
    return d;
  };
  const expectRefused = (dir: string, code: RegExp, client: string): void => {
    const before = objectsList(client);
    const r = cairn(['static-delta', 'apply-offline', `--repo=${client}`, dir]);
    assert.notEqual(r.status, 0);
    oneLine(r.stderr);
    assert.match(r.stderr, code);
    assert.deepEqual(objectsList(client), before, 'nothing stored');
    assert.deepEqual(fs.readdirSync(path.join(client, 'tmp')).filter((f) => f.startsWith('staging-')), []);
  };

  it('refuses a part with a flipped byte, a truncated superblock and a missing part', () => {
    const c = clientAtA('c-bad', 'bare-user', 'cairn');
    const d1 = copyDelta('bad1');
    const part = fs.readFileSync(path.join(d1, '0'));
    part[Math.floor(part.length / 2)] ^= 1;
    fs.writeFileSync(path.join(d1, '0'), part);
    expectRefused(d1, /delta part 0: checksum/, c);
    const d2 = copyDelta('bad2');
    const sb = fs.readFileSync(path.join(d2, 'superblock'));
    fs.writeFileSync(path.join(d2, 'superblock'), sb.subarray(0, sb.length - 10));
    expectRefused(d2, /invalid delta superblock/, c);
    const d3 = copyDelta('bad3');
    fs.rmSync(path.join(d3, '0'));
    expectRefused(d3, /part 0 is missing/, c);
    expectRefused(path.join(W, 'no-such-delta'), /no such file/, c);
  });

  it('refuses a delta whose part checksum is right but whose ops produce a wrong object', async () => {
    const c = clientAtA('c-bad2', 'bare-user', 'cairn');
    const d = copyDelta('bad-object');
    const sb = parseSuperblock(fs.readFileSync(path.join(d, 'superblock')));
    const { stdout } = await execFileP('xz', ['-dc', path.join(d, '0')], { encoding: 'buffer', maxBuffer: 1 << 30 }).catch(async () => {
      const raw = fs.readFileSync(path.join(d, '0')).subarray(1);
      fs.writeFileSync(path.join(W, 'p.xz'), raw);
      return execFileP('xz', ['-dc', path.join(W, 'p.xz')], { encoding: 'buffer', maxBuffer: 1 << 30 });
    });
    const payload = parsePartPayload(stdout);
    const blob = Buffer.from(payload.blob);
    blob[blob.length - 3] ^= 0x20; // inside the last object's bytes
    const newPart = Buffer.concat([Buffer.from([0]), serializePartPayload({ ...payload, blob })]);
    fs.writeFileSync(path.join(d, '0'), newPart);
    const parts = sb.parts.map((p, i) => (i === 0 ? { ...p, checksum: sha256(newPart), size: newPart.length } : p));
    fs.writeFileSync(path.join(d, 'superblock'), serializeSuperblock({ ...sb, parts }));
    expectRefused(d, /has checksum/, c);
  });

  it('refuses a delta whose from-commit is missing', () => {
    const c = path.join(W, 'c-empty');
    ok(cairn(['init', `--repo=${c}`, '--mode=bare-user']));
    expectRefused(good, /not in/, c);
  });
});

describe('offline update bundle and signatures', () => {
  let src3: string;
  let a3: string;
  let b3: string;
  before(() => {
    // a target with a big new file (becomes a fallback) and a signed commit
    src3 = path.join(W, 'src3');
    ok(cairn(['init', `--repo=${src3}`, '--mode=bare-user']));
    const t3 = path.join(W, 't3');
    fs.cpSync(path.join(W, 't2'), t3, { recursive: true, verbatimSymlinks: true });
    write(t3, 'usr/share/big.bin', pseudoRandom(5 * 1024 * 1024, 'big'));
    a3 = ok(cairn(['commit', `--repo=${src3}`, '-b', 'os', '--timestamp=2024-01-01T00:00:00Z', `--tree=dir=${path.join(W, 't1')}`]));
    b3 = ok(cairn(['commit', `--repo=${src3}`, '-b', 'os', '--timestamp=2024-03-01T00:00:00Z', `--tree=dir=${t3}`]));
    ok(cairn(['sign', `--repo=${src3}`, b3, SK]), 'cairn sign');
  });

  it('sign / --verify / wrong key / --delete through the CLI', () => {
    ok(cairn(['sign', `--repo=${src3}`, '--verify', b3, PK]), 'verify');
    const keys = path.join(W, 'trusted.ed25519');
    fs.writeFileSync(keys, `${OTHER_PK}\n${PK}\n`);
    ok(cairn(['sign', `--repo=${src3}`, '--verify', `--keys-file=${keys}`, b3]), 'verify with keys file');
    const bad = cairn(['sign', `--repo=${src3}`, '--verify', b3, OTHER_PK]);
    assert.equal(bad.status, 1);
    oneLine(bad.stderr);
    const unsigned = cairn(['sign', `--repo=${src3}`, '--verify', a3, PK]);
    assert.equal(unsigned.status, 1);
    assert.match(unsigned.stderr, /no ed25519 signature/);
    ok(cairn(['sign', `--repo=${src3}`, a3, SK]));
    ok(cairn(['sign', `--repo=${src3}`, '--verify', a3, PK]));
    assert.match(ok(cairn(['sign', `--repo=${src3}`, '--delete', a3, PK])), /Deleted 1 signature/);
    assert.equal(cairn(['sign', `--repo=${src3}`, '--verify', a3, PK]).status, 1);
    const badKey = cairn(['sign', `--repo=${src3}`, a3, 'bm90IGEga2V5']);
    assert.notEqual(badKey.status, 0);
    oneLine(badKey.stderr);
  });

  it('one file carries delta, fallback and signature; applied offline with --sign-verify and --ref', () => {
    const file = path.join(W, 'update.cairn');
    const r = cairn(['static-delta', 'export', `--repo=${src3}`, `--from=${a3}`, `--to=${b3}`, `--file=${file}`, '--json']);
    const info = JSON.parse(ok(r, 'export'));
    assert.equal(info.fallbacks, 1);
    const host = path.join(W, 'host');
    ok(cairn(['init', `--repo=${host}`, '--mode=bare-user']));
    ok(ostree(['pull-local', `--repo=${host}`, src3, a3]));
    // wrong key: refused, nothing stored
    const before = objectsList(host);
    const bad = cairn(['static-delta', 'apply-offline', `--repo=${host}`, `--sign-verify=${OTHER_PK}`, file]);
    assert.equal(bad.status, 1);
    oneLine(bad.stderr);
    assert.match(bad.stderr, /no signature from a trusted key/);
    assert.deepEqual(objectsList(host), before);
    // right key
    const good = cairn(['static-delta', 'apply-offline', `--repo=${host}`, `--sign-verify=${PK}`, '--ref=os', file]);
    assert.equal(good.status, 0, good.stderr);
    assert.equal(ok(cairn(['rev-parse', `--repo=${host}`, 'os'])), b3);
    ok(cairn(['fsck', `--repo=${host}`]), 'cairn fsck');
    ok(ostree(['fsck', `--repo=${host}`]), 'ostree fsck');
    ok(cairn(['sign', `--repo=${host}`, '--verify', b3, PK]), 'signature travelled');
    assert.deepEqual(treeDiff(ostreeTree(src3, b3), ostreeTree(host, b3)), []);
    // a truncated bundle is refused
    const cut = path.join(W, 'cut.cairn');
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 5000));
    const host2 = clientAtA('host2', 'bare-user', 'cairn');
    const tr = cairn(['static-delta', 'apply-offline', `--repo=${host2}`, cut]);
    assert.notEqual(tr.status, 0);
    oneLine(tr.stderr);
  });

  it('a delta directory without its fallback object is refused as incomplete', () => {
    ok(cairn(['static-delta', 'generate', `--repo=${src3}`, `--from=${a3}`, `--to=${b3}`]));
    const host = path.join(W, 'host3');
    ok(cairn(['init', `--repo=${host}`, '--mode=bare-user']));
    ok(ostree(['pull-local', `--repo=${host}`, src3, a3]));
    const r = cairn(['static-delta', 'apply-offline', `--repo=${host}`, path.join(src3, relDir(a3, b3))]);
    assert.notEqual(r.status, 0);
    oneLine(r.stderr);
    assert.match(r.stderr, /fallback object/);
    assert.ok(!fs.existsSync(path.join(host, 'objects', b3.slice(0, 2), `${b3.slice(2)}.commit`)));
  });

  it('signed superblocks: generate --sign, show, apply-offline --sign-verify', () => {
    ok(cairn(['static-delta', 'generate', `--repo=${src3}`, '--empty', `--to=${a3}`, `--sign=${SK}`]));
    assert.match(ok(cairn(['static-delta', 'show', `--repo=${src3}`, a3])), /Signed: yes/);
    const dir = path.join(src3, relDir(null, a3));
    const h1 = path.join(W, 'h-signed');
    ok(cairn(['init', `--repo=${h1}`, '--mode=bare-user']));
    const bad = cairn(['static-delta', 'apply-offline', `--repo=${h1}`, `--sign-verify=${OTHER_PK}`, dir]);
    assert.equal(bad.status, 1);
    oneLine(bad.stderr);
    assert.deepEqual(objectsList(h1), []);
    ok(cairn(['static-delta', 'apply-offline', `--repo=${h1}`, `--sign-verify=${PK}`, '--ref=os', dir]), 'apply signed');
    // ostree (without ed25519) unwraps a signed superblock and applies it
    const h2 = path.join(W, 'h-signed-ostree');
    ok(ostree(['init', `--repo=${h2}`, '--mode=bare-user']));
    ok(ostree(['static-delta', 'apply-offline', `--repo=${h2}`, dir]), 'ostree applies a signed superblock');
    ok(ostree(['fsck', `--repo=${h2}`]));
    const notDelta = cairn(['static-delta', 'apply-offline', `--repo=${h1}`, path.join(W, 'keys-not-a-delta')]);
    assert.notEqual(notDelta.status, 0);
    oneLine(notDelta.stderr);
    ok(cairn(['fsck', `--repo=${h1}`]));
    ok(cairn(['static-delta', 'delete', `--repo=${src3}`, a3]));
    assert.doesNotMatch(ok(cairn(['static-delta', 'list', `--repo=${src3}`])), new RegExp(`^${a3}$`, 'm'));
  });
});

