// An update pull compares the new commit's tree with the complete commit the ref points at (or
// the delta's from-commit) and looks only at what changed. These trees change in every way that
// comparison could get wrong: a directory renamed with its contents, a file moved, a directory
// whose mode alone changed, a subtree identical to one elsewhere, a file whose content now
// exists under another name. After each update the repo fscks clean for both tools and the
// checkout equals the source's, and a base that is not complete is not trusted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { makeAwkwardTree } from '../lib/trees.js';
import { cairnAsync, cairnServe, type Served } from '../lib/net.js';

const TS = '--timestamp=2024-01-01T00:00:00Z';
const dir = tmpdir('cairn-pull-walk-');
const snap = (p: string) => snapshotTree(p, { ownership: false, xattrs: false, stripSetid: true });

function write(root: string, rel: string, data: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), data);
}

describe('update pulls walk only what changed, and get it right', () => {
  const src = path.join(dir, 'src');
  const commits: string[] = [];
  let served: Served;

  before(async () => {
    const t1 = path.join(dir, 't1');
    makeAwkwardTree(t1, { manyFiles: 50, owners: false, xattrs: false });
    for (let i = 0; i < 20; i++) write(t1, `usr/lib/deep/a/b/c/file-${i}`, `deep ${i}\n`);
    write(t1, 'srv/stable/x', 'stable x\n');
    write(t1, 'srv/old-name/inner/y', 'moves with its directory\n');
    write(t1, 'srv/movable', 'this file moves\n');
    write(t1, 'opt/modes/z', 'mode of the directory changes\n');

    const t2 = path.join(dir, 't2');
    fs.cpSync(t1, t2, { recursive: true, verbatimSymlinks: true });
    write(t2, 'usr/lib/deep/a/b/c/file-7', 'changed deep file\n');
    fs.renameSync(path.join(t2, 'srv/old-name'), path.join(t2, 'srv/new-name'));
    fs.renameSync(path.join(t2, 'srv/movable'), path.join(t2, 'usr/lib/deep/a/moved-here'));
    fs.chmodSync(path.join(t2, 'opt/modes'), 0o700);
    fs.cpSync(path.join(t2, 'srv/stable'), path.join(t2, 'srv/stable-copy'), { recursive: true });
    write(t2, 'etc/same-content-new-name', 'stable x\n');
    write(t2, 'new/dir/file', 'brand new\n');
    fs.rmSync(path.join(t2, 'names'), { recursive: true });

    const t3 = path.join(dir, 't3');
    fs.cpSync(t2, t3, { recursive: true, verbatimSymlinks: true });
    write(t3, 'srv/new-name/inner/y', 'changed after the move\n');
    fs.rmSync(path.join(t3, 'usr/lib/deep/a/b'), { recursive: true });

    ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
    for (const [i, t] of [t1, t2, t3].entries()) {
      commits.push(ok(cairn(['commit', `--repo=${src}`, '-b', 'main', TS, '-s', `v${i + 1}`, t])));
    }
    // a delta for v2 -> v3 only: the first update goes object by object, the second by delta
    ok(cairn(['static-delta', 'generate', `--repo=${src}`, `--from=${commits[1]}`, `--to=${commits[2]}`]));
    ok(cairn(['summary', `--repo=${src}`, '-u']));
    served = await cairnServe(src);
  });
  after(() => served.stop());

  function checkoutMatches(repo: string, commit: string, label: string): void {
    const mine = path.join(dir, `co-${label}`);
    const theirs = path.join(dir, `co-${label}-src`);
    ok(cairn(['checkout', `--repo=${repo}`, '-U', commit, mine]));
    ok(cairn(['checkout', `--repo=${src}`, '-U', commit, theirs]));
    assert.deepEqual(treeDiff(snap(mine), snap(theirs)), [], `${label}: checkout equals the source's`);
  }

  async function pull(repo: string, args: string[]): Promise<void> {
    const r = await cairnAsync(['pull', `--repo=${repo}`, '-q', ...args]);
    assert.equal(r.status, 0, r.stderr);
  }

  it('v1, then v2 by objects, then v3 by delta: complete, fsck clean, identical checkouts', async () => {
    const repo = path.join(dir, 'dst');
    ok(cairn(['init', `--repo=${repo}`, '--mode=bare-user']));
    ok(cairn(['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', served.url]));
    await pull(repo, ['origin', `main@${commits[0]}`]);
    await pull(repo, ['--disable-static-deltas', 'origin', `main@${commits[1]}`]);
    ok(cairn(['fsck', `--repo=${repo}`]), 'cairn fsck after v2');
    ok(ostree(['fsck', `--repo=${repo}`]), 'ostree fsck after v2');
    checkoutMatches(repo, commits[1]!, 'v2');
    await pull(repo, ['--require-static-deltas', 'origin', 'main']);
    ok(cairn(['fsck', `--repo=${repo}`]), 'cairn fsck after v3');
    ok(ostree(['fsck', `--repo=${repo}`]), 'ostree fsck after v3');
    checkoutMatches(repo, commits[2]!, 'v3');
  });

  it('a base commit that is only partly there is not trusted: every missing object is fetched', async () => {
    const repo = path.join(dir, 'dst-partial');
    ok(cairn(['init', `--repo=${repo}`, '--mode=bare-user']));
    ok(cairn(['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', served.url]));
    await pull(repo, ['--commit-metadata-only', 'origin', `main@${commits[0]}`]);
    await pull(repo, ['--disable-static-deltas', 'origin', `main@${commits[1]}`]);
    ok(cairn(['fsck', `--repo=${repo}`]), 'cairn fsck');
    ok(ostree(['fsck', `--repo=${repo}`]), 'ostree fsck');
    checkoutMatches(repo, commits[1]!, 'partial-base');
  });
});
