// Transaction.commit (repo/staging.ts) renames staged objects into objects/ concurrently, but in
// an order a kill cannot break: no commit is renamed before every object of its tree has landed,
// and no dirtree before the content objects and dirmetas. The order is read off the real renames:
// fs.promises.rename is wrapped to log when each one starts and ends. (The kill test,
// test/fault/repo-commit-kill, finds the same fault only when a kill happens to land in the gap.)
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Repo, commitTree, fsck } from '../../../src/repo/index.js';
import { tmpdir } from '../../lib/helpers.js';

type Event = { at: 'start' | 'done' | 'failed'; wave: number };
const waveOf = (dest: string): number => (/\.commit(meta)?$/.test(dest) ? 2 : dest.endsWith('.dirtree') ? 1 : 0);

const realRename = fs.promises.rename;
const log: Event[] = [];
let objectsDir = '\0';
fs.promises.rename = async (from: fs.PathLike, to: fs.PathLike): Promise<void> => {
  const dest = String(to);
  const objects = dest.startsWith(objectsDir);
  if (objects) log.push({ at: 'start', wave: waveOf(dest) });
  try {
    await realRename(from, to);
    if (objects) log.push({ at: 'done', wave: waveOf(dest) });
  } catch (e) {
    if (objects) log.push({ at: 'failed', wave: waveOf(dest) }); // objects/XX/ missing: made, and tried again
    throw e;
  }
};
after(() => {
  fs.promises.rename = realRename;
});

for (const mode of ['archive', 'bare-user'] as const) {
  it(`${mode}: content and dirmetas land before dirtrees, dirtrees before the commit`, async () => {
    const dir = tmpdir();
    const tree = path.join(dir, 'tree');
    for (let d = 0; d < 6; d++) {
      fs.mkdirSync(path.join(tree, `d${d}`, 'sub'), { recursive: true });
      for (let f = 0; f < 40; f++) fs.writeFileSync(path.join(tree, `d${d}`, f % 2 ? 'sub' : '', `f${f}`), `dir ${d} file ${f}\n`);
    }
    const repo = Repo.init(path.join(dir, 'repo'), { mode });
    objectsDir = path.join(repo.path, 'objects') + path.sep;
    log.length = 0;
    await commitTree(repo, { kind: 'dir', path: tree }, { branch: 'main', timestamp: 1704067200n });

    const moved = [0, 1, 2].map((w) => log.filter((e) => e.at === 'done' && e.wave === w).length);
    assert.deepEqual(moved, [241, 13, 1], 'objects moved per wave: 240 files + 1 dirmeta (every directory alike), 13 dirtrees, 1 commit');
    for (const w of [1, 2]) {
      const firstStart = log.findIndex((e) => e.at === 'start' && e.wave === w);
      const lastLowerEnd = log.findLastIndex((e) => e.at !== 'start' && e.wave < w);
      assert.ok(lastLowerEnd < firstStart, `wave ${w} began at event ${firstStart}, before a lower wave's rename ended at ${lastLowerEnd}`);
    }
    assert.deepEqual((await fsck(repo)).problems, []);
  });
}
