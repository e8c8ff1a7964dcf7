// SIGKILL a pull that is applying a static delta, at random points (a random time, or once a random
// share of the new objects is staged, or is in objects/): every time the repo fscks
// clean (cairn and ostree) and holds only objects the source has; the next pull finishes through
// the same delta, fetching no part whose objects are all there already and no object twice, and
// checks out the new tree.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Repo, fsck } from '../../src/repo/index.js';
import { parseSuperblock } from '../../src/delta/index.js';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { makeAwkwardTree, prng, pseudoRandom } from '../lib/trees.js';
import { cairnAsync, cairnSpawn, objectFiles, TestServer } from '../lib/net.js';

const TRIALS = Number(process.env.CAIRN_KILL_TRIALS ?? 30);
const GROUP = 5; // trials on the same repo before a completing pull
const dir = tmpdir('cairn-delta-kill-');
const src = path.join(dir, 'src');
const tree2 = path.join(dir, 'tree2');
let server: TestServer;
let v1 = '';
let deltaDir = '';

before(async () => {
  const tree1 = path.join(dir, 'tree1');
  makeAwkwardTree(tree1, { manyFiles: 100, owners: false, xattrs: false });
  fs.writeFileSync(path.join(tree1, 'random.bin'), pseudoRandom(2 << 20, 'delta-kill'));
  fs.cpSync(tree1, tree2, { recursive: true, verbatimSymlinks: true });
  for (let i = 0; i < 1500; i++) {
    fs.mkdirSync(path.join(tree2, 'new', String(i % 20)), { recursive: true });
    fs.writeFileSync(path.join(tree2, 'new', String(i % 20), `file-${i}.txt`), `new file ${i}\n`.repeat(1 + (i % 50)));
    if (i % 4 === 0) fs.symlinkSync(`file-${i}.txt`, path.join(tree2, 'new', String(i % 20), `link-${i}`));
  }
  const changed = pseudoRandom(2 << 20, 'delta-kill');
  for (let off = 0; off < changed.length; off += 64 * 1024) changed[off] ^= 0x5a;
  fs.writeFileSync(path.join(tree2, 'random.bin'), changed);
  fs.writeFileSync(path.join(tree2, 'random-new.bin'), pseudoRandom(1 << 20, 'delta-kill-new'));
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  v1 = ok(cairn(['commit', `--repo=${src}`, '-b', 'main', tree1]));
  const v2 = ok(cairn(['commit', `--repo=${src}`, '-b', 'main', tree2]));
  // parts of at most 1 MB: several of them, so that kills land between parts and inside one
  ok(cairn(['static-delta', 'generate', `--repo=${src}`, `--from=${v1}`, `--to=${v2}`, '--max-chunk-size=1']));
  ok(cairn(['summary', `--repo=${src}`, '-u']));
  deltaDir = path.dirname(fs.readdirSync(path.join(src, 'deltas'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name === 'superblock').map((e) => path.join(e.parentPath, e.name))[0]!);
  server = await new TestServer(src).start();
  // latency per request, and more per delta part, so that kills land between and inside parts
  server.hook = async (_req, _res, file) => {
    await new Promise((r) => setTimeout(r, file.startsWith(deltaDir) ? 15 : 2));
    return false;
  };
});
after(() => server.stop());

/** Objects staged in a repo's transaction directories (not in objects/ yet); they come and go. */
function stagedCount(repo: string): number {
  const list = (p: string): fs.Dirent[] => {
    try {
      return fs.readdirSync(p, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  let n = 0;
  for (const d of list(path.join(repo, 'tmp'))) {
    if (!d.name.startsWith('staging-')) continue;
    for (const lane of list(path.join(repo, 'tmp', d.name))) if (lane.isDirectory()) n += list(path.join(repo, 'tmp', d.name, lane.name)).length;
  }
  return n;
}

/** A bare-user repo holding v1, pulled object by object. */
async function repoAtV1(p: string): Promise<void> {
  ok(cairn(['init', `--repo=${p}`, '--mode=bare-user']));
  ok(cairn(['remote', 'add', `--repo=${p}`, '--no-gpg-verify', 'origin', server.url]));
  const r = await cairnAsync(['pull', `--repo=${p}`, '-q', '--disable-static-deltas', 'origin', `main@${v1}`]);
  assert.equal(r.status, 0, r.stderr);
}

it(`${TRIALS} random SIGKILLs during a delta pull: fsck clean each time, the next pull finishes through the delta`, async () => {
  const seed = Number(process.env.CAIRN_KILL_SEED ?? Date.now() % 100000);
  const rand = prng(seed);
  const good = new Set(objectFiles(src).map((x) => x.replace(/\.filez$/, '')));
  const sb = parseSuperblock(fs.readFileSync(path.join(deltaDir, 'superblock')));
  assert.ok(sb.parts.length >= 3, `the delta has several parts (${sb.parts.length})`);
  const partRel = (i: number): string => path.relative(src, path.join(deltaDir, String(i)));
  // the kill window follows the real duration of a complete delta pull on this machine right now
  const probe = path.join(dir, 'probe');
  await repoAtV1(probe);
  const t0 = Date.now();
  const full = await cairnAsync(['pull', `--repo=${probe}`, '-q', '--require-static-deltas', 'origin', 'main']);
  assert.equal(full.status, 0, full.stderr);
  const window = Date.now() - t0;
  const v1Repo = path.join(dir, 'v1');
  await repoAtV1(v1Repo);
  const v1Objects = objectFiles(v1Repo).length;
  const newObjects = sb.parts.reduce((n, p) => n + p.objects.length, 0);
  let dst = '';
  let killedMidway = 0;
  let inGroup = 0;
  for (let t = 0; t < TRIALS; t++) {
    if (inGroup === 0) {
      dst = path.join(dir, `dst-${t}`);
      execFileSync('cp', ['-a', v1Repo, dst]); // with the objects' xattrs, which fs.cpSync drops
    }
    // in turn: at a random time; once a random share of the new objects is staged (parts being
    // applied); once a random share of them is in objects/ (a batch being committed)
    const mode = (['time', 'staged', 'committed'] as const)[t % 3]!;
    const delay = Math.floor(30 + rand() * window * 0.9);
    const target = Math.floor(rand() * newObjects);
    const child = cairnSpawn(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'main']);
    let running = true;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => {
      running = false;
      r(code);
    }));
    if (mode === 'time') await Promise.race([exited, new Promise((r) => setTimeout(r, delay))]);
    else {
      const count = mode === 'staged' ? () => stagedCount(dst) : () => objectFiles(dst).length - v1Objects;
      while (running && count() < target) await new Promise((r) => setTimeout(r, 1));
    }
    child.kill('SIGKILL');
    const code = await exited;
    if (code === null) killedMidway++;
    const at = mode === 'time' ? `${delay} of ${window} ms` : `${target} of ${newObjects} objects ${mode}`;
    const msg = `trial ${t} (seed ${seed}, killed at ${at}, ${code === null ? 'killed' : `exited ${code}`})`;
    const f = await fsck(Repo.open(dst));
    assert.deepEqual(f.problems.map((p) => p.message), [], msg);
    ok(ostree(['fsck', `--repo=${dst}`]), `ostree fsck, ${msg}`);
    for (const o of objectFiles(dst)) assert.ok(good.has(o.replace(/\.file$/, '')), `${msg}: unexpected object ${o}`);
    inGroup++;
    if (inGroup === GROUP || code === 0 || t === TRIALS - 1) {
      inGroup = 0;
      const repo = Repo.open(dst);
      const have = new Set(objectFiles(dst).map((x) => x.replace(/\.file$/, '')));
      const donePart = sb.parts.map((p) => p.objects.every((o) => repo.hasObject(o.checksum, o.type)));
      const hitsBefore = server.hits.length;
      const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', '--require-static-deltas', 'origin', 'main']);
      assert.equal(r.status, 0, `${msg}: completing pull failed: ${r.stderr}`);
      const hits = server.hits.slice(hitsBefore).map((h) => h.path);
      const again = hits.filter((h) => h.startsWith('objects/') && !h.endsWith('.commitmeta') && have.has(h.slice(8).replace(/\.filez$/, '')));
      assert.deepEqual(again, [], `${msg}: objects already present were fetched again`);
      const partsAgain = donePart.flatMap((d, i) => (d && hits.includes(partRel(i)) ? [i] : []));
      assert.deepEqual(partsAgain, [], `${msg}: parts whose objects were all there were fetched again`);
      const co = path.join(dir, `co-${t}`);
      ok(cairn(['checkout', `--repo=${dst}`, '--user-mode', 'origin:main', co]));
      const snap = (p: string) => snapshotTree(p, { ownership: false, stripSetid: true });
      assert.deepEqual(treeDiff(snap(tree2), snap(co)), [], msg);
      fs.rmSync(co, { recursive: true });
      ok(ostree(['fsck', `--repo=${dst}`]));
    }
  }
  assert.ok(killedMidway >= TRIALS / 2, `most trials should be killed mid-pull (${killedMidway}/${TRIALS})`);
});
