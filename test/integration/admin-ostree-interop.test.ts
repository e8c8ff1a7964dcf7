// The real ostree 2022.7 as oracle, both ways: ostree reads what cairn deployed (order, origins,
// pins, kargs in the BLS entries), and cairn reads what ostree deployed; mixed deploys work.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ok } from '../lib/helpers.js';
import { REF, loaderEntries, makeSysroot, parseStatus } from '../lib/fake-sysroot.js';

const strip = (rows: ReturnType<typeof parseStatus>) => rows.map((r) => ({ name: r.name, stateroot: r.stateroot, version: r.version, refspec: r.refspec, pinned: r.pinned }));

describe('admin: ostree reads a sysroot cairn deployed into', () => {
  const f = makeSysroot();
  const c1 = f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', '--karg=root=LABEL=root', '--karg=quiet', REF]), 'deploy 1');
  const c2 = f.commit({ version: '2.0', kernel: 'KERNEL 2\n' });
  ok(f.admin(['deploy', '--karg-append=console=ttyS0', REF]), 'deploy 2');

  it('lists the deployments in order, with versions and origins', () => {
    const o = parseStatus(ok(f.oadmin(['status']), 'ostree admin status'));
    assert.deepEqual(strip(o), [
      { name: `${c2}.0`, stateroot: 'testos', version: '2.0', refspec: REF, pinned: false },
      { name: `${c1}.0`, stateroot: 'testos', version: '1.0', refspec: REF, pinned: false },
    ]);
    assert.equal(ok(f.admin(['status'])).split('\n').filter((l) => !l.includes('Boot tries')).join('\n'), ok(f.oadmin(['status'])));
  });

  it('BLS entries carry the kernel arguments, ostree= and both kernels', () => {
    const entries = loaderEntries(f.S).sort((a, b) => Number(b.version) - Number(a.version));
    assert.equal(entries.length, 2);
    assert.match(entries[0]!.options, /^root=LABEL=root quiet console=ttyS0 ostree=\/ostree\/boot\.0\/testos\/[0-9a-f]{64}\/0$/);
    assert.match(entries[1]!.options, /^root=LABEL=root quiet ostree=\/ostree\/boot\.0\/testos\/[0-9a-f]{64}\/0$/);
    assert.match(entries[0]!.fileName, /^ostree-2-testos\+3\.conf$/);
    assert.equal(fs.readdirSync(path.join(f.S, 'boot/ostree')).length, 2);
  });

  it('a pin made by cairn shows in ostree, and ostree can deploy on top (keeping the pin)', () => {
    ok(f.admin(['pin', '1']));
    assert.equal(parseStatus(ok(f.oadmin(['status'])))[1]!.pinned, true);
    const c3 = f.commit({ version: '3.0' });
    ok(f.oadmin(['deploy', '--os=testos', REF]), 'ostree deploy into a cairn sysroot');
    const rows = strip(parseStatus(ok(f.admin(['status']))));
    assert.deepEqual(rows.map((r) => r.name), [`${c3}.0`, `${c2}.0`, `${c1}.0`]);
    assert.equal(rows[2]!.pinned, true);
    // and cairn's view of the kargs ostree wrote
    assert.equal(ok(f.admin(['kargs'])), 'root=LABEL=root quiet console=ttyS0');
  });
});

describe('admin: cairn reads a sysroot ostree deployed into', () => {
  const f = makeSysroot({ via: 'ostree' });
  const c1 = f.commit({ version: '1.0' });
  ok(f.oadmin(['deploy', '--os=testos', '--karg=root=LABEL=root', REF]));
  const c2 = f.commit({ version: '2.0', kernel: 'KERNEL 2\n' });
  ok(f.oadmin(['deploy', '--os=testos', REF]));
  ok(f.oadmin(['pin', '1']));

  it('cairn admin status prints what ostree admin status prints', () => {
    const mine = ok(f.admin(['status']));
    assert.equal(mine, ok(f.oadmin(['status'])));
    assert.deepEqual(parseStatus(mine).map((r) => r.name), [`${c2}.0`, `${c1}.0`]);
  });

  it('status --json names the same deployments', () => {
    const j = JSON.parse(ok(f.admin(['status', '--json']))) as { deployments: { name: string; refspec: string; pinned: boolean; version: string }[] };
    assert.deepEqual(j.deployments.map((d) => [d.name, d.refspec, d.pinned, d.version]), [[`${c2}.0`, REF, false, '2.0'], [`${c1}.0`, REF, true, '1.0']]);
  });

  it('cairn deploys into it and ostree still reads it', () => {
    const c3 = f.commit({ version: '3.0' });
    ok(f.admin(['deploy', REF]));
    const o = parseStatus(ok(f.oadmin(['status'])));
    assert.deepEqual(o.map((r) => r.name), [`${c3}.0`, `${c2}.0`, `${c1}.0`]);
    assert.equal(o[2]!.pinned, true);
    const opts = loaderEntries(f.S).map((e) => e.options);
    assert.ok(opts.every((x) => x.startsWith('root=LABEL=root ')), opts.join('\n'));
  });
});

describe('admin: same operations on a cairn and an ostree sysroot end in the same state', () => {
  it('deploy ×3, pin, undeploy, unpin, cleanup', () => {
    const a = makeSysroot();
    const b = makeSysroot({ via: 'ostree' });
    const steps: [string[], string[]][] = [
      [['deploy', '--os=testos', REF], ['deploy', '--os=testos', REF]],
      [['deploy', REF], ['deploy', '--os=testos', REF]],
      [['pin', '1'], ['pin', '1']],
      [['deploy', REF], ['deploy', '--os=testos', REF]],
      [['undeploy', '0'], ['undeploy', '0']],
      [['pin', '--unpin', '1'], ['pin', '--unpin', '1']],
      [['deploy', REF], ['deploy', '--os=testos', REF]],
      [['cleanup'], ['cleanup']],
    ];
    let v = 0;
    for (const [mine, theirs] of steps) {
      if (mine[0] === 'deploy') {
        v++;
        assert.equal(a.commit({ version: `${v}.0`, kernel: `K${v}\n` }), b.commit({ version: `${v}.0`, kernel: `K${v}\n` }));
      }
      ok(a.admin(mine), `cairn admin ${mine.join(' ')}`);
      ok(b.oadmin(theirs), `ostree admin ${theirs.join(' ')}`);
      // ostree's own view of both sysroots is identical at every step
      assert.equal(ok(a.oadmin(['status'])), ok(b.oadmin(['status'])), `after ${mine.join(' ')}`);
    }
    const ls = (S: string) => fs.readdirSync(path.join(S, 'ostree/deploy/testos/deploy')).sort();
    assert.deepEqual(ls(a.S), ls(b.S));
    assert.deepEqual(fs.readdirSync(path.join(a.S, 'boot/ostree')).sort(), fs.readdirSync(path.join(b.S, 'boot/ostree')).sort());
    assert.equal(fs.readlinkSync(path.join(a.S, 'boot/loader')), fs.readlinkSync(path.join(b.S, 'boot/loader')));
  });
});
