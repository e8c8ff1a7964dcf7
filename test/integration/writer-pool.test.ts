// The per-object file work runs on worker threads by default (two; a pull: one on two cores, once
// it has 1,000 objects to fetch) and in-thread with CAIRN_WORKERS=0 (and from TypeScript
// sources): every way must write the same repository. Commit (bare,
// bare-user), pull into bare-user and archive checkout, each run both ways, compared with each
// other and checked by the real ostree.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, ok, ostree, snapshotTree, tmpdir, treeDiff } from '../lib/helpers.js';
import { makeAwkwardTree } from '../lib/trees.js';
import { cairnServe, objectFiles, type Served } from '../lib/net.js';

const dir = tmpdir('cairn-pool-');
const tree = path.join(dir, 'tree');
// (workers named explicitly: by default a pull of fewer than 1,000 objects does not start them)
const ways = { workers: { CAIRN_WORKERS: '2' }, 'one worker': { CAIRN_WORKERS: '1' }, 'in-thread': { CAIRN_WORKERS: '0' } } as const;
type Way = keyof typeof ways;

function run(way: Way, args: string[]): string {
  return ok(cairn(args, { env: { ...process.env, ...ways[way] } }), `${way}: cairn ${args[0]}`);
}

before(() => makeAwkwardTree(tree, { manyFiles: 300, bigFile: 2 * 1024 * 1024 }));

describe('writer pool and in-thread writes give the same repository', () => {
  for (const mode of ['bare', 'bare-user'] as const) {
    it(`commit into ${mode}: same checksum, same objects, fsck clean`, () => {
      const commits = new Map<Way, string>();
      const objects = new Map<Way, string[]>();
      for (const way of Object.keys(ways) as Way[]) {
        const repo = path.join(dir, `commit-${mode}-${way}`);
        run(way, ['init', `--repo=${repo}`, `--mode=${mode}`]);
        commits.set(way, run(way, ['commit', `--repo=${repo}`, '-b', 'main', '--timestamp=2024-01-01T00:00:00Z', `--tree=dir=${tree}`]));
        objects.set(way, objectFiles(repo).map((f) => path.relative(repo, f)).sort());
        ok(ostree(['fsck', `--repo=${repo}`]), `ostree fsck (${way})`);
        assert.deepEqual(fs.readdirSync(path.join(repo, 'tmp')).filter((e) => e.startsWith('staging-')), [], `${way}: no staging left`);
      }
      for (const way of ['one worker', 'in-thread'] as const) {
        assert.equal(commits.get(way), commits.get('workers'), way);
        assert.deepEqual(objects.get(way), objects.get('workers'), way);
      }
    });
  }

  describe('pull and archive checkout', () => {
    const src = path.join(dir, 'src');
    let server: Served;
    before(async () => {
      ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
      ok(cairn(['commit', `--repo=${src}`, '-b', 'main', `--tree=dir=${tree}`]));
      ok(cairn(['summary', `--repo=${src}`, '-u']));
      server = await cairnServe(src);
    });
    after(() => server.stop());

    it('pull into bare-user: same objects, cairn and ostree fsck clean, same checkout', () => {
      const snaps = new Map<Way, ReturnType<typeof snapshotTree>>();
      const objects = new Map<Way, string[]>();
      for (const way of Object.keys(ways) as Way[]) {
        const repo = path.join(dir, `pull-${way}`);
        run(way, ['init', `--repo=${repo}`, '--mode=bare-user']);
        run(way, ['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', server.url]);
        run(way, ['pull', `--repo=${repo}`, '-q', 'origin', 'main']);
        run(way, ['fsck', '-q', `--repo=${repo}`]);
        objects.set(way, objectFiles(repo).map((f) => path.relative(repo, f)).sort());
        ok(ostree(['fsck', `--repo=${repo}`]), `ostree fsck (${way})`);
        const co = path.join(dir, `pull-co-${way}`);
        run(way, ['checkout', `--repo=${repo}`, '-U', 'origin:main', co]);
        snaps.set(way, snapshotTree(co, { ownership: false, stripSetid: true }));
      }
      for (const way of ['one worker', 'in-thread'] as const) {
        assert.deepEqual(objects.get(way), objects.get('workers'), way);
        assert.deepEqual(treeDiff(snaps.get('workers')!, snaps.get(way)!), [], way);
      }
      assert.deepEqual(treeDiff(snapshotTree(tree, { ownership: false, stripSetid: true }), snaps.get('workers')!), []);
    });

    it('checkout from an archive repository: both ways equal the input tree (content, mode, owner, xattrs)', () => {
      for (const way of Object.keys(ways) as Way[]) {
        const co = path.join(dir, `archive-co-${way}`);
        run(way, ['checkout', `--repo=${src}`, 'main', co]);
        assert.deepEqual(treeDiff(snapshotTree(tree), snapshotTree(co)), [], way);
      }
    });
  });
});
