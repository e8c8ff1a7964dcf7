// A hostile or broken server: every misbehaviour is refused with one clear error line and a
// non-zero exit, nothing unverified reaches objects/ (cairn and ostree fsck clean), and a later
// pull from a well-behaved server completes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { type Checksum, sha256 } from '../../src/format/index.js';
import { serializeSummary } from '../../src/format/summary.js';
import { Repo, fsck } from '../../src/repo/index.js';
import { addRemote } from '../../src/repo/remotes.js';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { makeAwkwardTree } from '../lib/trees.js';
import { cairnAsync, objectFiles, serveFile, TestServer } from '../lib/net.js';

const dir = tmpdir('cairn-hostile-');
const tree = path.join(dir, 'tree');
const src = path.join(dir, 'src');
let server: TestServer;
let commit = '';
let smallFilez = '';
let bigFilez = '';
let aDirtree = '';
let n = 0;

type Hook = NonNullable<TestServer['hook']>;

async function expectRefused(hook: Hook, pattern: RegExp, extra: string[] = [], mode = 'archive'): Promise<string> {
  const dst = path.join(dir, `dst-${n++}`);
  const repo = Repo.init(dst, { mode: mode as 'archive', config: { fsync: 'false' } });
  addRemote(repo, 'origin', server.url, { noGpgVerify: true });
  server.hook = hook;
  const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--idle-timeout=2', ...extra, 'origin', 'main'], { timeoutMs: 60_000 });
  server.hook = null;
  assert.equal(r.status, 1, `expected exit 1, got ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern);
  assert.ok(!fs.existsSync(path.join(dst, 'refs/remotes/origin/main')), 'no ref written');
  // nothing unverified was stored: both fscks are clean, every object is one the source has
  const f = await fsck(Repo.open(dst));
  assert.deepEqual(f.problems.map((p) => p.message), []);
  ok(ostree(['fsck', `--repo=${dst}`]), 'ostree fsck');
  const good = new Set(objectFiles(src).map((x) => x.replace(/\.filez$/, '')));
  for (const o of objectFiles(dst)) assert.ok(good.has(o.replace(/\.(filez|file)$/, '')), `unexpected object ${o}`);
  // and the same repo completes from a well-behaved server
  const r2 = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
  assert.equal(r2.status, 0, r2.stderr);
  return dst;
}

const on = (rel: string, fn: (req: http.IncomingMessage, res: http.ServerResponse, file: string) => void): Hook =>
  (req, res, file, r) => {
    if (r !== rel) return false;
    fn(req, res, file);
    return true;
  };

before(async () => {
  makeAwkwardTree(tree, { manyFiles: 40, bigFile: 2 << 20, owners: false, xattrs: false });
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  commit = ok(cairn(['commit', `--repo=${src}`, '-b', 'main', tree]));
  ok(cairn(['summary', `--repo=${src}`, '-u']));
  const objs = objectFiles(src);
  const sized = objs.filter((o) => o.endsWith('.filez')).map((o) => ({ o, size: fs.statSync(path.join(src, 'objects', o)).size }));
  sized.sort((a, b) => a.size - b.size);
  smallFilez = `objects/${sized.find((x) => x.size > 200)!.o}`;
  bigFilez = `objects/${sized.at(-1)!.o}`;
  aDirtree = `objects/${objs.find((o) => o.endsWith('.dirtree') && fs.statSync(path.join(src, 'objects', o)).size > 100)!}`;
  server = await new TestServer(src).start();
});
after(() => server.stop());

describe('hostile server', () => {
  it('corrupted content object (flipped byte)', async () => {
    await expectRefused(on(smallFilez, (_q, res, file) => {
      const b = fs.readFileSync(file);
      // flip the whole compressed tail (a single flipped bit can land in unused deflate bits)
      for (let i = b.length >> 1; i < b.length; i++) b[i]! ^= 0x55;
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
    }), /file object [0-9a-f]{64} from the remote is corrupt/);
  });

  it('corrupted metadata object (dirtree with a flipped byte) into bare-user', async () => {
    await expectRefused(on(aDirtree, (_q, res, file) => {
      const b = fs.readFileSync(file);
      b[5]! ^= 0x01;
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
    }), /dirtree object [0-9a-f]{64} from the remote is corrupt: its bytes hash to/, [], 'bare-user');
  });

  it('content object with trailing garbage after the deflate stream', async () => {
    await expectRefused(on(smallFilez, (_q, res, file) => {
      const b = Buffer.concat([fs.readFileSync(file), Buffer.from('garbage')]);
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
    }), /trailing bytes after the compressed content/);
  });

  // a large object into a bare-family repo is inflated, hashed and written in one pass
  it('large content object into bare-user: corrupted, and with trailing garbage', async () => {
    await expectRefused(on(bigFilez, (_q, res, file) => {
      const b = fs.readFileSync(file);
      for (let i = b.length - 4096; i < b.length; i++) b[i]! ^= 0x55;
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
    }), /file object [0-9a-f]{64} from the remote is corrupt/, [], 'bare-user');
    await expectRefused(on(bigFilez, (_q, res, file) => {
      const b = Buffer.concat([fs.readFileSync(file), Buffer.from('garbage')]);
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
    }), /file object [0-9a-f]{64} from the remote is corrupt: trailing bytes after the compressed content/, [], 'bare-user');
  });

  it('truncated body (connection closed mid-object), retries exhausted', async () => {
    await expectRefused(on(bigFilez, (_q, res, file) => {
      const b = fs.readFileSync(file);
      res.writeHead(200, { 'Content-Length': b.length });
      res.write(b.subarray(0, b.length >> 1), () => res.destroy());
    }), /closed early|Content-Length/, ['--network-retries=1']);
  });

  it('Content-Length larger than the body', async () => {
    await expectRefused(on(smallFilez, (req, _res, file) => {
      const b = fs.readFileSync(file);
      req.socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length + 100}\r\nConnection: close\r\n\r\n`), b]));
    }), /closed early|Content-Length/, ['--network-retries=0']);
  });

  it('Content-Length smaller than the object', async () => {
    await expectRefused(on(smallFilez, (req, _res, file) => {
      const b = fs.readFileSync(file);
      req.socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length - 10}\r\nConnection: close\r\n\r\n`), b]));
    }), /corrupt|closed early|Content-Length/, ['--network-retries=0']);
  });

  it('a summary that lies about a ref', async () => {
    const liar = ('f'.repeat(64)) as Checksum;
    const lying = serializeSummary({
      refs: [{ name: 'main', commit: liar, commitSize: 100, timestamp: 0n }], lastModified: 0n, mode: 'archive-z2', tombstoneCommits: false,
    });
    const real = `objects/${commit.slice(0, 2)}/${commit.slice(2)}.commit`;
    await expectRefused((_q, res, _f, rel) => {
      if (rel === 'summary') {
        res.writeHead(200, { 'Content-Length': lying.length });
        res.end(lying);
        return true;
      }
      if (rel === `objects/ff/${'f'.repeat(62)}.commit`) {
        serveFile(_q, res, path.join(src, real));
        return true;
      }
      return false;
    }, /commit object f{64} from the remote is corrupt: its bytes hash to/);
    assert.equal(sha256(fs.readFileSync(path.join(src, real))), commit);
  });

  it('endless metadata body is cut at its cap', async () => {
    await expectRefused(on(aDirtree, (_q, res) => {
      res.writeHead(200, {});
      const chunk = Buffer.alloc(1 << 16, 7);
      const pump = (): void => {
        while (res.write(chunk)) { /* fill */ }
        res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    }), /larger than the \d+-byte limit/);
  });

  it('endless content body is cut at deflateBound(declared size)', async () => {
    await expectRefused(on(smallFilez, (_q, res, file) => {
      const b = fs.readFileSync(file);
      res.writeHead(200, {});
      res.write(b);
      const chunk = Buffer.alloc(1 << 16, 1);
      const pump = (): void => {
        while (res.write(chunk)) { /* fill */ }
        res.once('drain', pump);
      };
      pump();
    }), /larger than the \d+-byte limit/);
  });

  it('redirect loop is refused; a bounded redirect chain is followed', async () => {
    await expectRefused((_q, res, _f, rel) => {
      if (rel === aDirtree || rel === 'loop-a' || rel === 'loop-b') {
        res.writeHead(302, { Location: rel === 'loop-a' ? '/loop-b' : '/loop-a', 'Content-Length': 0 });
        res.end();
        return true;
      }
      return false;
    }, /redirect loop/);
    await expectRefused((_q, res, _f, rel) => {
      const m = /^hop(\d+)$/.exec(rel);
      if (rel === aDirtree || m) {
        res.writeHead(301, { Location: `/hop${m ? Number(m[1]) + 1 : 0}`, 'Content-Length': 0 });
        res.end();
        return true;
      }
      return false;
    }, /more than 5 redirects/);
    // a good redirect: summary lives elsewhere
    const dst = path.join(dir, 'redir-ok');
    const repo = Repo.init(dst, { mode: 'archive', config: { fsync: 'false' } });
    addRemote(repo, 'origin', server.url, { noGpgVerify: true });
    server.hook = (req, res, _f, rel) => {
      if (rel === 'summary') {
        res.writeHead(302, { Location: '/moved/summary', 'Content-Length': 0 });
        res.end();
        return true;
      }
      if (rel === 'moved/summary') {
        serveFile(req, res, path.join(src, 'summary'));
        return true;
      }
      return false;
    };
    const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
    server.hook = null;
    assert.equal(r.status, 0, r.stderr);
  });

  it('slow drip trips the low-speed limit; a stalled body trips the idle timeout', async () => {
    await expectRefused(on(aDirtree, (_q, res, file) => {
      const b = fs.readFileSync(file);
      res.writeHead(200, { 'Content-Length': b.length });
      let i = 0;
      const t = setInterval(() => {
        if (i >= b.length || res.destroyed) return clearInterval(t);
        res.write(b.subarray(i, ++i));
      }, 100);
      res.on('close', () => clearInterval(t));
    }), /slower than 100 bytes\/s/, ['--low-speed-limit=100', '--low-speed-time=1', '--network-retries=0']);
    await expectRefused(on(aDirtree, (_q, res) => {
      res.writeHead(200, { 'Content-Length': 1000 });
      res.write('x');
    }), /no data from the server/, ['--idle-timeout=1', '--network-retries=0']);
  });

  it('HTTP 500 and 404 for a needed object', async () => {
    await expectRefused(on(aDirtree, (_q, res) => {
      res.writeHead(500, { 'Content-Length': 0 });
      res.end();
    }), /HTTP 500/, ['--network-retries=1']);
    await expectRefused(on(smallFilez, (_q, res) => {
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
    }), /not found on the server \(HTTP 404\)/);
  });

  it('after all that, a pull from the honest server gives the identical tree', async () => {
    const dst = path.join(dir, 'final');
    const repo = Repo.init(dst, { mode: 'bare-user' });
    addRemote(repo, 'origin', server.url, { noGpgVerify: true });
    const r = await cairnAsync(['pull', `--repo=${dst}`, 'origin', 'main']);
    assert.equal(r.status, 0, r.stderr);
    ok(cairn(['checkout', `--repo=${dst}`, '--user-mode', 'origin:main', path.join(dir, 'co')]));
    const snap = (p: string) => snapshotTree(p, { ownership: false, stripSetid: true });
    assert.deepEqual(treeDiff(snap(tree), snap(path.join(dir, 'co'))), []);
  });
});
