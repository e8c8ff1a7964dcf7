// /etc three-way merge: what the admin edited, added or deleted on the running deployment
// carries into the new one; what only the new version changed comes from the new version.
// Checked against the real ostree doing the same upgrade on its own sysroot.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ok, snapshotTree, treeDiff } from '../lib/helpers.js';
import { REF, makeSysroot, simulateBoot } from '../lib/fake-sysroot.js';

const v1 = {
  'foo.conf': 'a=1\n', 'bar.conf': 'b=1\n', 'baz.conf': 'z=1\n', 'untouched.conf': 'u=1\n', 'gone.conf': 'g=1\n',
  'dir.d/one.conf': '1\n', 'keep.d/k.conf': 'k\n',
};
const v2 = {
  'foo.conf': 'a=2\n', 'bar.conf': 'b=2\n', 'baz.conf': 'z=2\n', 'untouched.conf': 'u=2\n', 'new.conf': 'n=2\n',
  'dir.d/one.conf': '1\n', 'keep.d/k.conf': 'k\n',
};

function adminEdits(etc: string): void {
  fs.writeFileSync(path.join(etc, 'foo.conf'), 'a=USER\n'); // edited (new version changed it too)
  fs.writeFileSync(path.join(etc, 'local.conf'), 'mine\n'); // added
  fs.rmSync(path.join(etc, 'bar.conf')); // deleted (new version changed it)
  fs.rmSync(path.join(etc, 'gone.conf')); // deleted (new version dropped it anyway)
  fs.mkdirSync(path.join(etc, 'added.d/sub'), { recursive: true }); // a whole added directory
  fs.writeFileSync(path.join(etc, 'added.d/sub/x.conf'), 'x\n');
  fs.symlinkSync('foo.conf', path.join(etc, 'link.conf')); // added symlink
  fs.chmodSync(path.join(etc, 'baz.conf'), 0o600); // mode-only change counts as modified
  fs.writeFileSync(path.join(etc, 'dir.d/two.conf'), '2\n'); // added inside an existing dir
}

it('admin changes survive an upgrade; untouched files follow the new version (same as ostree)', () => {
  const results: Map<string, unknown>[] = [];
  for (const via of ['cairn', 'ostree'] as const) {
    const f = makeSysroot();
    f.commit({ version: '1.0', etc: v1 });
    ok(f.admin(['deploy', '--os=testos', REF]));
    const booted = simulateBoot(f.S, path.join(f.tmp, 'root'));
    adminEdits(path.join(booted.deployment, 'etc'));
    f.commit({ version: '2.0', etc: v2 });
    if (via === 'cairn') ok(f.admin(['deploy', REF], [`--booted-root=${path.join(f.tmp, 'root')}`]), 'cairn deploy');
    else ok(f.oadmin(['deploy', '--os=testos', REF]), 'ostree deploy');
    const list = fs.readdirSync(path.join(f.S, 'ostree/deploy/testos/deploy')).filter((n) => !n.endsWith('.origin'));
    const fresh = list.find((n) => path.join(f.S, 'ostree/deploy/testos/deploy', n) !== booted.deployment)!;
    const etc = path.join(f.S, 'ostree/deploy/testos/deploy', fresh, 'etc');
    const read = (p: string) => fs.readFileSync(path.join(etc, p), 'utf8');
    assert.equal(read('foo.conf'), 'a=USER\n');
    assert.equal(read('local.conf'), 'mine\n');
    assert.equal(fs.existsSync(path.join(etc, 'bar.conf')), false);
    assert.equal(fs.existsSync(path.join(etc, 'gone.conf')), false);
    assert.equal(read('untouched.conf'), 'u=2\n');
    assert.equal(read('new.conf'), 'n=2\n');
    assert.equal(read('baz.conf'), 'z=1\n'); // admin's copy (mode change) wins, like ostree
    assert.equal(fs.statSync(path.join(etc, 'baz.conf')).mode & 0o777, 0o600);
    assert.equal(read('added.d/sub/x.conf'), 'x\n');
    assert.equal(fs.readlinkSync(path.join(etc, 'link.conf')), 'foo.conf');
    assert.equal(read('dir.d/two.conf'), '2\n');
    assert.equal(read('dir.d/one.conf'), '1\n');
    results.push(snapshotTree(etc));
  }
  assert.deepEqual(treeDiff(results[0]! as never, results[1]! as never), []);
});

it('a deployment without admin changes gets exactly the new usr/etc', () => {
  const f = makeSysroot();
  f.commit({ version: '1.0', etc: v1 });
  ok(f.admin(['deploy', '--os=testos', REF]));
  f.commit({ version: '2.0', etc: v2 });
  const r = f.admin(['deploy', REF]);
  ok(r);
  assert.match(r.stderr, /Copying \/etc changes: 0 modified, 0 removed, 0 added/);
  const st = JSON.parse(ok(f.admin(['status', '--json']))) as { deployments: { name: string }[] };
  const d = path.join(f.S, 'ostree/deploy/testos/deploy', st.deployments[0]!.name);
  const a = snapshotTree(path.join(d, 'etc'));
  const b = snapshotTree(path.join(d, 'usr/etc'));
  assert.deepEqual(treeDiff(a, b), []);
  // /etc is a copy, never hardlinks into the repo
  assert.equal(fs.statSync(path.join(d, 'etc/foo.conf')).nlink, 1);
  assert.ok(fs.statSync(path.join(d, 'usr/etc/foo.conf')).nlink > 1);
});
