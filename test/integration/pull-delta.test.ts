// Static deltas over HTTP, both directions with the real ostree: ostree pulls through deltas
// cairn generated and published; cairn pulls through deltas ostree generated, without fetching
// loose what the delta carries (spec §5.8); corrupt deltas are refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSuperblock } from '../../src/format/index.js';
import { Repo, fsck } from '../../src/repo/index.js';
import { addRemote } from '../../src/repo/remotes.js';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { makeAwkwardTree, pseudoRandom } from '../lib/trees.js';
import { cairnAsync, ostreeAsync, TestServer } from '../lib/net.js';

const TS = '--timestamp=2024-01-01T00:00:00Z';
// an ed25519 key pair in ostree's base64 forms (secret: seed and public key)
const SK = 'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwfqSmxj4pxSCr71UHsTLsX5lUd2rr6+e5JCHuppFEbSLA==';
const PK = '6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=';
const dir = tmpdir('cairn-delta-pull-');
const tree1 = path.join(dir, 'tree1');
const tree2 = path.join(dir, 'tree2');
const snap = (p: string) => snapshotTree(p, { ownership: false, xattrs: false, stripSetid: true });

function newRepo(name: string, mode: 'bare-user' | 'archive', url: string): string {
  const p = path.join(dir, name);
  addRemote(Repo.init(p, { mode, config: { fsync: 'false' } }), 'origin', url, { noGpgVerify: true });
  return p;
}

/** The directory of a repo's delta from a commit (its name has a '-'), not one from scratch. */
function fromToDeltaDir(repo: string): string {
  return fs.readdirSync(path.join(repo, 'deltas'), { recursive: true, withFileTypes: true })
    .find((e) => e.isFile() && e.name === 'superblock' && path.basename(e.parentPath).includes('-'))!.parentPath;
}

async function clean(repo: string): Promise<void> {
  assert.deepEqual((await fsck(Repo.open(repo))).problems.map((p) => p.message), []);
  ok(ostree(['fsck', `--repo=${repo}`]), 'ostree fsck');
}

before(() => {
  makeAwkwardTree(tree1, { manyFiles: 120, bigFile: 1 << 20, owners: false, xattrs: false });
  fs.writeFileSync(path.join(tree1, 'blob.bin'), pseudoRandom(300_000, 'a'));
  fs.cpSync(tree1, tree2, { recursive: true });
  const b = pseudoRandom(300_000, 'a');
  b.write('changed in the middle', 150_000);
  fs.writeFileSync(path.join(tree2, 'blob.bin'), b);
  fs.writeFileSync(path.join(tree2, 'etc/hostname'), 'v2\n');
  fs.writeFileSync(path.join(tree2, 'added'), pseudoRandom(50_000, 'b'));
  // a new x86-64 executable: cairn's generator gives executables parts of their own
  const elf = pseudoRandom(200_000, 'c');
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf);
  elf.writeUInt16LE(62, 18);
  fs.writeFileSync(path.join(tree2, 'tool'), elf, { mode: 0o755 });
});

for (const publisher of ['cairn', 'ostree'] as const) {
  describe(`deltas generated and published by ${publisher}`, () => {
    const src = path.join(dir, `${publisher}-src`);
    let server: TestServer;
    let c1 = '';
    let c2 = '';
    const tool = publisher === 'cairn' ? cairn : ostree;
    before(async () => {
      ok(tool(['init', `--repo=${src}`, '--mode=archive']));
      c1 = ok(tool(['commit', `--repo=${src}`, '-b', 'os/main', TS, '-s', 'one', tree1]));
      c2 = ok(tool(['commit', `--repo=${src}`, '-b', 'os/main', TS, '-s', 'two', tree2]));
      ok(tool(['static-delta', 'generate', `--repo=${src}`, `--from=${c1}`, `--to=${c2}`]), 'generate from-to');
      ok(tool(['static-delta', 'generate', `--repo=${src}`, '--empty', `--to=${c1}`]), 'generate scratch');
      ok(tool(['summary', `--repo=${src}`, '-u']));
      server = await new TestServer(src).start();
    });
    after(() => server.stop());

    it('ostree pull --require-static-deltas: scratch then from→to; fsck clean, identical tree', async () => {
      const dst = path.join(dir, `${publisher}-o-dst`);
      ok(ostree(['init', `--repo=${dst}`, '--mode=bare-user']));
      ok(ostree(['remote', 'add', `--repo=${dst}`, '--no-gpg-verify', 'origin', server.url]));
      // ostree must run asynchronously: the server lives in this process
      ok(await ostreeAsync(['pull', `--repo=${dst}`, '--require-static-deltas', 'origin', `os/main@${c1}`]), 'scratch delta');
      ok(await ostreeAsync(['pull', `--repo=${dst}`, '--require-static-deltas', 'origin', 'os/main']), 'from-to delta');
      ok(ostree(['fsck', `--repo=${dst}`]));
      ok(ostree(['checkout', `--repo=${dst}`, '-U', c2, path.join(dir, `${publisher}-o-co`)]));
      assert.deepEqual(treeDiff(snap(tree2), snap(path.join(dir, `${publisher}-o-co`))), []);
    });

    it('cairn pull --require-static-deltas: scratch then from→to; no loose fetch of delta-covered objects', async () => {
      const dst = newRepo(`${publisher}-c-dst`, 'bare-user', server.url);
      let h0 = server.hits.length;
      let r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', `os/main@${c1}`]);
      assert.equal(r.status, 0, r.stderr);
      let hits = server.hits.slice(h0).map((h) => h.path);
      assert.ok(hits.some((p) => /^deltas\/.+\/0$/.test(p)), 'a part was fetched');
      assert.ok(hits.some((p) => p.startsWith('delta-indexes/')), 'from scratch, the delta index is read');
      assert.deepEqual(hits.filter((p) => p.startsWith('objects/') && !p.endsWith('.commitmeta')), [], 'nothing loose');
      await clean(dst);
      h0 = server.hits.length;
      r = await cairnAsync(['pull', `--repo=${dst}`, '--json', '--require-static-deltas', 'origin', 'os/main']);
      assert.equal(r.status, 0, r.stderr);
      hits = server.hits.slice(h0).map((h) => h.path);
      assert.ok(hits.some((p) => /^deltas\/.+-.+\/superblock$/.test(p)), 'the from→to delta was used');
      // the summary lists the delta from the commit the repo is at: its index is not fetched
      assert.deepEqual(hits.filter((p) => p.startsWith('delta-indexes/')), [], 'no delta index fetched');
      assert.ok(hits.includes('summary') && !hits.includes('summary.sig'), 'summary.sig only where summaries are verified');
      // the progress accounts for every object: the commit carried by the superblock included
      const done = JSON.parse(r.stderr.trim().split('\n').pop()!) as { event: string; fetched: number; requested: number };
      assert.equal(done.event, 'done');
      assert.ok(done.requested > 1 && done.fetched === done.requested, `fetched ${done.fetched} of ${done.requested}`);
      assert.deepEqual(hits.filter((p) => p.startsWith('objects/') && !p.endsWith('.commitmeta')), [], 'nothing loose');
      await clean(dst);
      ok(cairn(['checkout', `--repo=${dst}`, '--user-mode', 'origin:os/main', path.join(dir, `${publisher}-c-co`)]));
      assert.deepEqual(treeDiff(snap(tree2), snap(path.join(dir, `${publisher}-c-co`))), []);
    });

    it('--disable-static-deltas pulls loose objects; deltas are never used into archive repos', async () => {
      const dst = newRepo(`${publisher}-c-nodelta`, 'bare-user', server.url);
      const h0 = server.hits.length;
      const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--disable-static-deltas', 'origin', 'os/main']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!server.hits.slice(h0).some((h) => h.path.startsWith('deltas/')));
      const arch = newRepo(`${publisher}-c-arch`, 'archive', server.url);
      const r2 = await cairnAsync(['pull', `--repo=${arch}`, '-q', 'origin', 'os/main']);
      assert.equal(r2.status, 0, r2.stderr);
      const r3 = await cairnAsync(['pull', `--repo=${arch}`, '-q', '--require-static-deltas', 'origin', 'os/main']);
      assert.equal(r3.status, 1);
      assert.match(r3.stderr, /^error: .*static deltas cannot be used in an archive repository\n$/);
      await clean(arch);
    });
  });
}

describe('broken deltas', () => {
  it('a corrupt part or a superblock that does not match the summary is refused; fsck stays clean', async () => {
    const src = path.join(dir, 'cairn-src');
    const copy = path.join(dir, 'broken-src');
    fs.cpSync(src, copy, { recursive: true });
    const server = await new TestServer(copy).start();
    try {
      const parts = (d: string): string[] => fs.readdirSync(d, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && /^\d+$/.test(e.name)).map((e) => path.join(e.parentPath, e.name));
      const part = parts(path.join(copy, 'deltas')).find((p) => path.basename(path.dirname(p)).includes('-'))!;
      server.hook = (_q, res, file) => {
        if (file !== part) return false;
        const b = fs.readFileSync(file);
        b[b.length >> 1]! ^= 0xff;
        res.writeHead(200, { 'Content-Length': b.length });
        res.end(b);
        return true;
      };
      const dst = newRepo('broken-dst', 'bare-user', server.url);
      const c1 = ok(cairn(['rev-parse', `--repo=${src}`, 'os/main^']));
      let r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--disable-static-deltas', 'origin', `os/main@${c1}`]);
      assert.equal(r.status, 0, r.stderr);
      r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'os/main']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^error: static delta .* part 0: .*checksum/);
      await clean(dst);
      server.hook = (_q, res, file) => {
        if (!file.endsWith('superblock')) return false;
        const b = Buffer.concat([fs.readFileSync(file)]);
        b[b.length - 1]! ^= 0x01;
        res.writeHead(200, { 'Content-Length': b.length });
        res.end(b);
        return true;
      };
      r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'os/main']);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^error: static delta superblock .* does not match the checksum the remote advertised\n$/);
      server.hook = null;
      r = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'os/main']);
      assert.equal(r.status, 0, r.stderr);
      await clean(dst);
    } finally {
      await server.stop();
    }
  });
});

describe('a part that comes late', () => {
  // Once the parts that carry the new commit's directories are applied, the tree walk runs while
  // the others are still on their way (instead of after the last one): it must take what they
  // list as coming, fetch none of it loose, and a late part that is corrupt still fails the pull.
  it('the walk runs before it: nothing fetched loose, fsck clean, same tree; a corrupt late part fails the pull and moves no ref', async () => {
    const src = path.join(dir, 'late-part-src');
    fs.cpSync(path.join(dir, 'cairn-src'), src, { recursive: true });
    const c1 = ok(cairn(['rev-parse', `--repo=${src}`, 'os/main^']));
    const c2 = ok(cairn(['rev-parse', `--repo=${src}`, 'os/main']));
    // signed after the delta was made: its superblock does not carry the commitmeta, which the
    // pull fetches beside the parts (it waits for it only when it checks signatures)
    ok(cairn(['sign', `--repo=${src}`, c2, SK]));
    const commitmeta = path.join('objects', c2.slice(0, 2), `${c2.slice(2)}.commitmeta`);
    const deltaDir = fromToDeltaDir(src);
    const sb = parseSuperblock(fs.readFileSync(path.join(deltaDir, 'superblock')));
    assert.equal(sb.to, c2);
    const late = sb.parts.findIndex((p) => p.objects.every((o) => o.type === 'file'));
    assert.ok(sb.parts.length >= 2 && late >= 0 && sb.parts.some((p) => p.objects.some((o) => o.type !== 'file')), 'a part of content only, and one with the directories');
    const lateFile = path.join(deltaDir, String(late));
    const server = await new TestServer(src).start();
    let corrupt = false;
    server.hook = async (_q, res, file) => {
      if (file !== lateFile) return false;
      await new Promise((r) => setTimeout(r, 400));
      const b = fs.readFileSync(file);
      if (corrupt) b[b.length >> 1]! ^= 0xff;
      res.writeHead(200, { 'Content-Length': b.length });
      res.end(b);
      return true;
    };
    try {
      const dst = newRepo('late-part-dst', 'bare-user', server.url);
      const fresh = newRepo('late-part-dst2', 'bare-user', server.url);
      let r: Awaited<ReturnType<typeof cairnAsync>>;
      for (const repo of [dst, fresh]) {
        r = await cairnAsync(['pull', `--repo=${repo}`, '-q', '--disable-static-deltas', 'origin', `os/main@${c1}`]);
        assert.equal(r.status, 0, r.stderr);
      }
      // a corrupt late part: the pull fails, the ref stays, the repo is sound, and the next pull completes
      corrupt = true;
      r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'os/main']);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: static delta .* part ${late}: .*checksum`));
      assert.equal(ok(cairn(['rev-parse', `--repo=${dst}`, 'origin:os/main'])), c1);
      await clean(dst);
      corrupt = false;
      // a late part that is sound: every object came through the delta
      const h0 = server.hits.length;
      r = await cairnAsync(['pull', `--repo=${fresh}`, '--json', '--require-static-deltas', 'origin', 'os/main']);
      assert.equal(r.status, 0, r.stderr);
      const hits = server.hits.slice(h0).map((h) => h.path);
      assert.deepEqual(hits.filter((p) => p.startsWith('objects/') && !p.endsWith('.commitmeta')), [], 'nothing loose');
      const done = JSON.parse(r.stderr.trim().split('\n').pop()!) as { event: string; fetched: number; requested: number };
      assert.ok(done.event === 'done' && done.fetched === done.requested, `fetched ${done.fetched} of ${done.requested}`);
      await clean(fresh);
      assert.ok(fs.readFileSync(path.join(fresh, commitmeta)).equals(fs.readFileSync(path.join(src, commitmeta))), 'the commitmeta is stored');
      ok(cairn(['sign', `--repo=${fresh}`, '--verify', c2, PK]));
      ok(cairn(['checkout', `--repo=${fresh}`, '--user-mode', 'origin:os/main', path.join(dir, 'late-part-co')]));
      assert.deepEqual(treeDiff(snap(tree2), snap(path.join(dir, 'late-part-co'))), []);
      r = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'os/main']);
      assert.equal(r.status, 0, r.stderr);
      await clean(dst);
    } finally {
      await server.stop();
    }
  });
});

describe('a part decodes while it downloads', () => {
  // xz starts on a part's first bytes, not its last: with the end of the part held back, its
  // decode is already writing output. What it decodes is used only once the whole part is in
  // and matches the superblock; a part whose download breaks off and is fetched again is
  // decoded from the bytes of the second download.
  it('output before the last byte is in; a download that breaks off half way is fetched again and decoded whole; same tree, fsck clean, nothing left in TMPDIR', async () => {
    const src = path.join(dir, 'early-decode-src');
    fs.cpSync(path.join(dir, 'cairn-src'), src, { recursive: true });
    const c1 = ok(cairn(['rev-parse', `--repo=${src}`, 'os/main^']));
    const deltaDir = fromToDeltaDir(src);
    const sb = parseSuperblock(fs.readFileSync(path.join(deltaDir, 'superblock')));
    const biggest = sb.parts.reduce((m, p, i) => (p.size > sb.parts[m]!.size ? i : m), 0);
    const partFile = path.join(deltaDir, String(biggest));
    const part = fs.readFileSync(partFile);
    assert.ok(part.length > 64 * 1024 && part[0] === 'x'.charCodeAt(0), 'an xz part of some size');
    const scratch = path.join(dir, 'early-decode-tmp'); // the pull's $TMPDIR: where its xz writes
    fs.mkdirSync(scratch);
    const decoding = (): boolean => fs.readdirSync(scratch).some((d) => (fs.statSync(path.join(scratch, d, 'out'), { throwIfNoEntry: false })?.size ?? 0) > 0);
    const server = await new TestServer(src).start();
    let mode: 'hold' | 'break' = 'hold';
    let early = false;
    let requests = 0;
    server.hook = async (_q, res, file) => {
      if (file !== partFile) return false;
      requests++;
      res.writeHead(200, { 'Content-Length': part.length });
      const cut = mode === 'hold' ? part.length - 4096 : part.length >> 1;
      await new Promise<void>((r) => res.write(part.subarray(0, cut), () => r()));
      if (mode === 'break' && requests === 1) {
        res.destroy();
        return true;
      }
      if (mode === 'hold') {
        for (let i = 0; i < 500 && !(early = decoding()); i++) await new Promise((r) => setTimeout(r, 20));
      }
      res.end(part.subarray(cut));
      return true;
    };
    try {
      const env = { ...process.env, TMPDIR: scratch };
      for (const m of ['hold', 'break'] as const) {
        mode = m;
        requests = 0;
        const dst = newRepo(`early-decode-${m}`, 'bare-user', server.url);
        let r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--disable-static-deltas', 'origin', `os/main@${c1}`]);
        assert.equal(r.status, 0, r.stderr);
        r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'os/main'], { env });
        assert.equal(r.status, 0, r.stderr);
        if (m === 'hold') assert.ok(early, 'the part was decoding before its last bytes were sent');
        else assert.equal(requests, 2, 'the broken download was fetched again');
        assert.deepEqual(fs.readdirSync(scratch), [], 'nothing left in TMPDIR');
        await clean(dst);
        const co = path.join(dir, `early-decode-${m}-co`);
        ok(cairn(['checkout', `--repo=${dst}`, '--user-mode', 'origin:os/main', co]));
        assert.deepEqual(treeDiff(snap(tree2), snap(co)), []);
      }
    } finally {
      await server.stop();
    }
  });
});

describe('ref bindings', () => {
  // A server whose os/main points at a commit bound to os/other (ostree.ref-binding, which
  // `commit -b` writes) must not get it taken for os/main: loose or through a delta, as ostree
  // refuses it too. Nothing of it is stored and the ref stays.
  it('a commit bound to another branch is refused, loose and through a delta, as ostree refuses it', async () => {
    const src = path.join(dir, 'bind-src');
    ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
    const a = ok(cairn(['commit', `--repo=${src}`, '-b', 'os/main', TS, tree1]));
    const b = ok(cairn(['commit', `--repo=${src}`, '-b', 'os/other', TS, tree2]));
    fs.writeFileSync(path.join(src, 'refs', 'heads', 'os', 'main'), `${b}\n`);
    ok(cairn(['static-delta', 'generate', `--repo=${src}`, `--from=${a}`, `--to=${b}`]));
    ok(cairn(['summary', `--repo=${src}`, '-u']));
    const server = await new TestServer(src).start();
    try {
      for (const mode of ['--disable-static-deltas', '--require-static-deltas']) {
        const dst = newRepo(`bind-dst${mode}`, 'bare-user', server.url);
        let r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--disable-static-deltas', 'origin', `os/main@${a}`]);
        assert.equal(r.status, 0, r.stderr);
        r = await cairnAsync(['pull', `--repo=${dst}`, '-q', mode, 'origin', 'os/main']);
        assert.equal(r.status, 1, `${mode}: ${r.stderr}`);
        assert.equal(r.stderr, `error: commit ${b} is bound to "os/other", not to the requested ref "os/main"\n`);
        assert.equal(ok(cairn(['rev-parse', `--repo=${dst}`, 'origin:os/main'])), a);
        assert.ok(!fs.existsSync(path.join(dst, 'objects', b.slice(0, 2), `${b.slice(2)}.commit`)), 'the commit is not stored');
        await clean(dst);
        // the real ostree, the same way
        const o = path.join(dir, `bind-ostree${mode}`);
        ok(ostree(['init', `--repo=${o}`, '--mode=bare-user']));
        ok(ostree(['remote', 'add', `--repo=${o}`, '--no-gpg-verify', 'origin', server.url]));
        ok(await ostreeAsync(['pull', `--repo=${o}`, '--disable-static-deltas', 'origin', `os/main@${a}`]));
        const or = await ostreeAsync(['pull', `--repo=${o}`, mode, 'origin', 'os/main']);
        assert.notEqual(or.status, 0, 'ostree refuses it');
        assert.match(or.stderr, /ref binding/);
      }
    } finally {
      await server.stop();
    }
  });
});

describe('fallback objects', () => {
  for (const publisher of ['cairn', 'ostree'] as const) {
    it(`${publisher}'s delta with a fallback: fetched loose once, after the parts are in; fsck clean, identical tree`, async () => {
      const tool = publisher === 'cairn' ? cairn : ostree;
      const src = path.join(dir, `fallback-${publisher}-src`);
      const tree3 = path.join(dir, `fallback-${publisher}-tree`);
      fs.cpSync(tree2, tree3, { recursive: true });
      fs.writeFileSync(path.join(tree3, 'firmware.bin'), pseudoRandom(1_500_000, 'fallback'));
      ok(tool(['init', `--repo=${src}`, '--mode=archive']));
      const from = ok(tool(['commit', `--repo=${src}`, '-b', 'os/main', TS, '-s', 'two', tree2]));
      const to = ok(tool(['commit', `--repo=${src}`, '-b', 'os/main', TS, '-s', 'three', tree3]));
      ok(tool(['static-delta', 'generate', `--repo=${src}`, `--from=${from}`, `--to=${to}`, '--min-fallback-size=1']));
      ok(tool(['summary', `--repo=${src}`, '-u']));
      const server = await new TestServer(src).start();
      try {
        const dst = newRepo(`fallback-${publisher}-dst`, 'bare-user', server.url);
        let r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--disable-static-deltas', 'origin', `os/main@${from}`]);
        assert.equal(r.status, 0, r.stderr);
        const h0 = server.hits.length;
        r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'os/main']);
        assert.equal(r.status, 0, r.stderr);
        const hits = server.hits.slice(h0).map((h) => h.path);
        const loose = hits.filter((p) => p.startsWith('objects/') && !p.endsWith('.commitmeta'));
        assert.equal(loose.length, 1, `one fallback object fetched loose: ${loose.join(', ')}`);
        assert.match(loose[0]!, /\.filez$/);
        const parts = hits.flatMap((p, i) => (/^deltas\/.+\/\d+$/.test(p) ? [i] : []));
        assert.ok(parts.length > 0, 'parts fetched');
        assert.ok(hits.indexOf(loose[0]!) > Math.max(...parts), 'the fallback is requested once the parts are in');
        await clean(dst);
        const co = path.join(dir, `fallback-${publisher}-co`);
        ok(cairn(['checkout', `--repo=${dst}`, '--user-mode', 'origin:os/main', co]));
        assert.deepEqual(treeDiff(snap(tree3), snap(co)), []);
      } finally {
        await server.stop();
      }
    });
  }
});
