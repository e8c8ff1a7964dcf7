// A full disk, for real: repositories and checkouts on a small tmpfs. Commit, pull and checkout
// fail with one line that says so and a non-zero exit, and nothing already in the repository is
// lost: refs keep their commits, cairn's and ostree's fsck pass, the old commit checks out, and
// once space is freed the same operation succeeds. Object writes run on worker threads, so this
// also shows that their errors reach the user intact.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Run, cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { pseudoRandom } from '../lib/trees.js';
import { cairnAsync, cairnServe, type Served } from '../lib/net.js';

const dir = tmpdir('cairn-full-');
const disk = path.join(dir, 'disk');
const SIZE_MB = 24;

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

/** `where`: the repository or checkout that did not fit, which the line must name. */
function diskFullError(r: Run, what: string, where: string): void {
  assert.notEqual(r.status, 0, `${what} must fail`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: exactly one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: .*(ENOSPC|no space left on device)/, what);
  assert.ok(lines[0]!.includes(where), `${what}: the line names ${where}: ${lines[0]}`);
  assert.doesNotMatch(r.stderr, /\s+at .*:\d+:\d+/, `${what}: no stack trace`);
}

function fsckClean(repo: string): void {
  ok(cairn(['fsck', '-q', `--repo=${repo}`]), `cairn fsck ${repo}`);
  ok(ostree(['fsck', `--repo=${repo}`]), `ostree fsck ${repo}`);
}

/** A tree of `n` incompressible 1 MiB files. */
function bigTree(root: string, n: number, seed: string): void {
  fs.mkdirSync(root, { recursive: true });
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(root, `blob-${i}.bin`), pseudoRandom(1 << 20, `${seed}-${i}`));
}

before(() => {
  fs.mkdirSync(disk);
  // a real ENOSPC: a filesystem of SIZE_MB (tmpfs also has xattrs for bare-user objects)
  run('mount', ['-t', 'tmpfs', '-o', `size=${SIZE_MB}m`, 'tmpfs', disk]);
});
after(() => {
  spawnSync('umount', [disk]);
});

for (const mode of ['bare-user', 'archive'] as const) {
  describe(`full disk, ${mode} repository`, () => {
    const repo = path.join(disk, `repo-${mode}`);
    const small = path.join(dir, `small-${mode}`);
    const big = path.join(dir, `big-${mode}`);
    let first = '';

    it('commit: one line, the ref keeps its commit, fsck clean; succeeds once there is room', () => {
      fs.mkdirSync(small, { recursive: true });
      fs.writeFileSync(path.join(small, 'hello'), 'hello\n');
      bigTree(path.join(small, 'data'), 2, `small-${mode}`);
      ok(cairn(['init', `--repo=${repo}`, `--mode=${mode}`]));
      first = ok(cairn(['commit', `--repo=${repo}`, '-b', 'main', '-s', 'first', `--tree=dir=${small}`]));
      bigTree(big, SIZE_MB + 8, `big-${mode}`);
      diskFullError(cairn(['commit', `--repo=${repo}`, '-b', 'main', '-s', 'too big', `--tree=dir=${big}`]), 'commit', repo);
      assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'main'])), first, 'the ref still names the first commit');
      assert.deepEqual(fs.readdirSync(path.join(repo, 'tmp')).filter((e) => e.startsWith('staging-')), [], 'no staging left behind');
      fsckClean(repo);
      const co = path.join(dir, `co-${mode}`);
      ok(cairn(['checkout', `--repo=${repo}`, ...(mode === 'bare-user' ? ['-U'] : []), 'main', co]));
      assert.deepEqual(treeDiff(snapshotTree(small, { ownership: false }), snapshotTree(co, { ownership: false })), []);
      // with room again, the same commit goes through
      for (let i = 8; i < SIZE_MB + 8; i++) fs.rmSync(path.join(big, `blob-${i}.bin`), { force: true });
      ok(cairn(['commit', `--repo=${repo}`, '-b', 'main', '-s', 'fits', `--tree=dir=${big}`]));
      fsckClean(repo);
    });
  });
}

describe('full disk, pull and checkout', () => {
  const src = path.join(dir, 'src');
  const repo = path.join(disk, 'pulled');
  let server: Served;
  let v1 = '';
  before(async () => {
    const t1 = path.join(dir, 'pull-v1');
    fs.mkdirSync(t1);
    fs.writeFileSync(path.join(t1, 'hello'), 'v1\n');
    const t2 = path.join(dir, 'pull-v2');
    bigTree(t2, 40, 'pull');
    ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
    v1 = ok(cairn(['commit', `--repo=${src}`, '-b', 'v1', `--tree=dir=${t1}`]));
    ok(cairn(['commit', `--repo=${src}`, '-b', 'v2', `--tree=dir=${t2}`]));
    // v3: as much content as v2, but compressible, so that a static delta to it is quick to make
    const t3 = path.join(dir, 'pull-v3');
    fs.mkdirSync(t3);
    for (let i = 0; i < 40; i++) {
      const b = Buffer.alloc(1 << 20);
      pseudoRandom(4096, `v3-${i}`).copy(b, (i * 4096) % (b.length - 4096));
      fs.writeFileSync(path.join(t3, `mostly-zero-${i}.bin`), b);
    }
    ok(cairn(['commit', `--repo=${src}`, '-b', 'v3', `--tree=dir=${t3}`]));
    ok(cairn(['static-delta', 'generate', `--repo=${src}`, '--from=v1', '--to=v3']));
    ok(cairn(['summary', `--repo=${src}`, '-u']));
    server = await cairnServe(src);
  });
  after(() => server.stop());

  /**
   * On a nearly empty disk (whatever the other tests left there), a repo with v1 pulls `ref`
   * with `flag`: one line, v1's ref and objects intact, no ref for what did not fit, nothing
   * staged left, fsck clean.
   */
  async function pullTooMuch(flag: string, ref: string, what: string): Promise<void> {
    for (const e of fs.readdirSync(disk)) fs.rmSync(path.join(disk, e), { recursive: true, force: true });
    ok(cairn(['init', `--repo=${repo}`, '--mode=bare-user']));
    ok(cairn(['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', server.url]));
    ok(await cairnAsync(['pull', `--repo=${repo}`, '-q', 'origin', 'v1']));
    diskFullError(await cairnAsync(['pull', `--repo=${repo}`, '-q', flag, 'origin', ref]), what, repo);
    // for a program: the same failure as a JSON event with its code, after the progress events
    const j = await cairnAsync(['pull', `--repo=${repo}`, '--json', flag, 'origin', ref]);
    assert.equal(j.status, 1);
    const last = JSON.parse(j.stderr.trimEnd().split('\n').pop()!) as Record<string, string>;
    assert.equal(last.event, 'error');
    assert.equal(last.code, 'IO_NO_SPACE', `${what} --json: ${last.message}`);
    assert.ok(last.path?.startsWith(repo), `${what} --json: the path is in ${repo}: ${last.path}`);
    assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'origin:v1'])), v1);
    assert.notEqual(cairn(['rev-parse', `--repo=${repo}`, `origin:${ref}`]).status, 0, 'no ref for the commit that did not fit');
    assert.deepEqual(fs.readdirSync(path.join(repo, 'tmp')).filter((e) => e.startsWith('staging-')), [], 'no staging left behind');
    fsckClean(repo);
  }

  it('pull: one line, earlier refs and objects intact, fsck clean', () => pullTooMuch('--disable-static-deltas', 'v2', 'pull'));

  it('pull through a static delta: one line, earlier refs and objects intact, nothing staged left, fsck clean', () =>
    pullTooMuch('--require-static-deltas', 'v3', 'delta pull'));

  it('checkout onto a full disk: one line', () => {
    const co = path.join(disk, 'co');
    diskFullError(cairn(['checkout', `--repo=${src}`, 'v2', co]), 'checkout', co);
  });
});
