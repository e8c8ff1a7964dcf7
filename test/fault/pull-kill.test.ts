// SIGKILL a pull at random points: every time the repo fscks clean (cairn and ostree), holds only
// objects the source has, and the next pull completes with an identical tree, fetching only
// what is missing.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Repo, fsck } from '../../src/repo/index.js';
import { addRemote } from '../../src/repo/remotes.js';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { makeAwkwardTree, prng, pseudoRandom } from '../lib/trees.js';
import { cairnAsync, cairnSpawn, objectFiles, sendInSlices, serveFile, TestServer } from '../lib/net.js';

const TRIALS = Number(process.env.CAIRN_KILL_TRIALS ?? 30);
const GROUP = 5; // trials on the same repo before a completing pull
const dir = tmpdir('cairn-kill-');
const tree = path.join(dir, 'tree');
const src = path.join(dir, 'src');
let server: TestServer;

before(async () => {
  makeAwkwardTree(tree, { manyFiles: 250, bigFile: 1 << 20, owners: false, xattrs: false });
  fs.writeFileSync(path.join(tree, 'random.bin'), pseudoRandom(3 << 20, 'kill-test'));
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  ok(cairn(['commit', `--repo=${src}`, '-b', 'main', tree]));
  ok(cairn(['summary', `--repo=${src}`, '-u']));
  server = await new TestServer(src).start();
  // a little latency per request, and large bodies in slices, so kills land mid-walk and mid-body
  server.hook = async (req, res, file) => {
    await new Promise((r) => setTimeout(r, 2));
    let size = 0;
    try {
      size = fs.statSync(file).size;
    } catch {
      return false;
    }
    if (size < 512 * 1024 || req.headers.range) return false;
    await sendInSlices(res, fs.readFileSync(file), 256 * 1024, 40);
    return true;
  };
});
after(() => server.stop());

it(`${TRIALS} random SIGKILLs during pull: fsck clean each time, next pull completes identically`, async () => {
  const seed = Number(process.env.CAIRN_KILL_SEED ?? Date.now() % 100000);
  const rand = prng(seed);
  const good = new Set(objectFiles(src).map((x) => x.replace(/\.filez$/, '')));
  // the kill window follows the real duration of a complete pull on this machine right now
  const probe = path.join(dir, 'probe');
  addRemote(Repo.init(probe, { mode: 'bare-user' }), 'origin', server.url, { noGpgVerify: true });
  const t0 = Date.now();
  const full = await cairnAsync(['pull', `--repo=${probe}`, '-q', 'origin', 'main']);
  assert.equal(full.status, 0, full.stderr);
  const window = Date.now() - t0;
  let dst = '';
  let killedMidway = 0;
  // up to GROUP kills pile up on one repo; a pull that completes on its own ends the group early
  // (the next ones would have nothing left to fetch)
  let inGroup = 0;
  let groups = 0;
  for (let t = 0; t < TRIALS; t++) {
    if (inGroup === 0) {
      dst = path.join(dir, `dst-${t}`);
      const repo = Repo.init(dst, { mode: groups++ % 2 === 0 ? 'bare-user' : 'archive' });
      addRemote(repo, 'origin', server.url, { noGpgVerify: true });
    }
    const delay = 50 + Math.floor(rand() * window * 0.9);
    const child = cairnSpawn(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), delay);
    const code = await exited;
    clearTimeout(timer);
    if (code === null) killedMidway++;
    const msg = `trial ${t} (seed ${seed}, delay ${delay} of ${window} ms, ${code === null ? 'killed' : `exited ${code}`})`;
    const f = await fsck(Repo.open(dst));
    assert.deepEqual(f.problems.map((p) => p.message), [], msg);
    ok(ostree(['fsck', `--repo=${dst}`]), `ostree fsck, ${msg}`);
    for (const o of objectFiles(dst)) assert.ok(good.has(o.replace(/\.(filez|file)$/, '')), `${msg}: unexpected object ${o}`);
    inGroup++;
    if (inGroup === GROUP || code === 0 || t === TRIALS - 1) {
      inGroup = 0;
      const before = new Set(objectFiles(dst).map((x) => x.replace(/\.(filez|file)$/, '')));
      const hitsBefore = server.hits.length;
      const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
      assert.equal(r.status, 0, `${msg}: completing pull failed: ${r.stderr}`);
      const refetched = server.hits.slice(hitsBefore).filter((h) => h.path.startsWith('objects/') && before.has(h.path.slice(8).replace(/\.(filez|file)$/, '')) && !h.path.endsWith('.commitmeta'));
      assert.deepEqual(refetched.map((h) => h.path), [], `${msg}: objects already present were fetched again`);
      const co = path.join(dir, `co-${t}`);
      const user = Repo.open(dst).mode === 'archive' ? [] : ['--user-mode'];
      ok(cairn(['checkout', `--repo=${dst}`, ...user, 'origin:main', co]));
      const snap = (p: string) => snapshotTree(p, { ownership: false, stripSetid: true });
      assert.deepEqual(treeDiff(snap(tree), snap(co)), [], msg);
      fs.rmSync(co, { recursive: true });
      ok(ostree(['fsck', `--repo=${dst}`]));
    }
  }
  assert.ok(killedMidway >= TRIALS / 2, `most trials should be killed mid-pull (${killedMidway}/${TRIALS})`);
});

it('a large object killed mid-body is resumed with a Range request', async () => {
  const dst = path.join(dir, 'resume-kill');
  const repo = Repo.init(dst, { mode: 'bare-user' });
  addRemote(repo, 'origin', server.url, { noGpgVerify: true });
  const child = cairnSpawn(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // wait until a partial download holds some bytes, then kill
  const partDir = path.join(dst, 'tmp/cairn-pull');
  let part = '';
  for (let i = 0; i < 400 && !part; i++) {
    await new Promise((r) => setTimeout(r, 20));
    if (fs.existsSync(partDir)) part = fs.readdirSync(partDir).find((f) => fs.statSync(path.join(partDir, f)).size > 0) ?? '';
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(part, 'a partial download was seen');
  const have = fs.statSync(path.join(partDir, part)).size;
  const hitsBefore = server.hits.length;
  const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
  assert.equal(r.status, 0, r.stderr);
  const csum = part.replace(/\.filez\.part$/, '');
  const ranged = server.hits.slice(hitsBefore).filter((h) => h.path.endsWith(`${csum.slice(2)}.filez`));
  assert.equal(ranged.length, 1);
  assert.match(ranged[0]!.range ?? '', /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(ranged[0]!.range!)![0]) >= have, 'resumed from where it stopped');
  const f = await fsck(Repo.open(dst));
  assert.deepEqual(f.problems, []);
  assert.deepEqual(fs.readdirSync(partDir), [], 'partial download cleaned up');
});

it('a large object cut mid-body is resumed with Range within the same pull, and by a later pull', async () => {
  const big = objectFiles(src).map((o) => `objects/${o}`).sort((a, b) => fs.statSync(path.join(src, b)).size - fs.statSync(path.join(src, a)).size)[0]!;
  const saved = server.hook;
  let cut = 0;
  server.hook = (req, res, file, rel) => {
    if (rel !== big || req.headers.range || cut >= 1) return false;
    cut++;
    const b = fs.readFileSync(file);
    res.writeHead(200, { 'Content-Length': b.length });
    res.write(b.subarray(0, b.length >> 1), () => res.destroy());
    return true;
  };
  try {
    // 1) retries on: one pull, the second attempt asks for the rest
    const a = path.join(dir, 'resume-a');
    addRemote(Repo.init(a, { mode: 'archive' }), 'origin', server.url, { noGpgVerify: true });
    let h0 = server.hits.length;
    let r = await cairnAsync(['pull', `--repo=${a}`, '-q', 'origin', 'main']);
    assert.equal(r.status, 0, r.stderr);
    let hits = server.hits.slice(h0).filter((h) => h.path === big);
    assert.equal(hits.length, 2);
    assert.match(hits[1]!.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.deepEqual((await fsck(Repo.open(a))).problems, []);
    // 2) retries off: the pull fails, the next one resumes
    cut = 0;
    const b = path.join(dir, 'resume-b');
    addRemote(Repo.init(b, { mode: 'bare-user' }), 'origin', server.url, { noGpgVerify: true });
    r = await cairnAsync(['pull', `--repo=${b}`, '-q', '--network-retries=0', 'origin', 'main']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error: .*closed early/);
    assert.deepEqual((await fsck(Repo.open(b))).problems, []);
    h0 = server.hits.length;
    r = await cairnAsync(['pull', `--repo=${b}`, '-q', 'origin', 'main']);
    assert.equal(r.status, 0, r.stderr);
    hits = server.hits.slice(h0).filter((h) => h.path === big);
    assert.equal(hits.length, 1);
    assert.match(hits[0]!.range ?? '', /^bytes=[1-9]\d*-$/);
    assert.deepEqual((await fsck(Repo.open(b))).problems, []);
    ok(ostree(['fsck', `--repo=${b}`]));
  } finally {
    server.hook = saved;
  }
  void serveFile;
});
