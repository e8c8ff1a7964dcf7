// Boot counting with systemd-boot's rules: new entries get +TRIES, each boot counts down by
// renaming, bless ends probation; when the tries run out the (simulated) loader boots the
// previous version. Also retention while booted, and rollback.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ok } from '../lib/helpers.js';
import { REF, loaderEntries, makeSysroot, parseStatus, simulateBoot } from '../lib/fake-sysroot.js';

const names = (S: string) => loaderEntries(S).map((e) => e.fileName).sort();

it('new entries are on probation, count down per boot, bless makes them good; tries exhausted → previous version', () => {
  const f = makeSysroot();
  const root = path.join(f.tmp, 'root');
  const booted = [`--booted-root=${root}`];
  const c1 = f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', REF]));
  assert.deepEqual(names(f.S), ['ostree-1-testos+3.conf']);

  let b = simulateBoot(f.S, root);
  assert.equal(b.renamedTo, 'ostree-1-testos+2-1.conf');
  let st = ok(f.admin(['status'], booted));
  assert.match(st, /^\* testos [0-9a-f]{64}\.0\n {4}Version: 1\.0\n {4}origin refspec: .*\n {4}Boot tries left: 2 \(1 done\)\n {4}Blessed: no$/);
  ok(f.admin(['bless'], booted));
  assert.deepEqual(names(f.S), ['ostree-1-testos.conf']);
  assert.match(ok(f.admin(['status'], booted)), /Blessed: yes/);
  assert.match(ok(f.admin(['bless'], booted)), /already blessed/);

  const c2 = f.commit({ version: '2.0', kernel: 'KERNEL 2\n' });
  ok(f.admin(['deploy', REF], booted));
  assert.deepEqual(names(f.S), ['ostree-1-testos.conf', 'ostree-2-testos+3.conf']);
  const rows = parseStatus(ok(f.admin(['status'], booted)));
  assert.deepEqual(rows.map((r) => [r.name, r.marker, r.tag]), [[`${c2}.0`, ' ', '(pending)'], [`${c1}.0`, '*', '']]);

  // the new version never gets blessed (e.g. its health check fails): 3 tries, then back to 1.0
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    b = simulateBoot(f.S, root);
    seen.push(b.renamedTo!);
    assert.ok(b.deployment.endsWith(`${c2}.0`), `boot ${i + 1} boots 2.0`);
  }
  assert.deepEqual(seen, ['ostree-2-testos+2-1.conf', 'ostree-2-testos+1-2.conf', 'ostree-2-testos+0-3.conf']);
  b = simulateBoot(f.S, root);
  assert.ok(b.deployment.endsWith(`${c1}.0`), 'after the tries run out the loader boots 1.0');
  assert.equal(b.renamedTo, undefined);
  const j = JSON.parse(ok(f.admin(['status', '--json'], booted))) as { deployments: { name: string; booted: boolean; triesLeft: number | null; blessed: boolean | null }[] };
  assert.deepEqual(j.deployments.map((d) => [d.name, d.booted, d.triesLeft, d.blessed]), [[`${c2}.0`, false, 0, false], [`${c1}.0`, true, null, true]]);
  assert.match(ok(f.admin(['status'], booted)), /Boot tries left: 0 \(3 done\) — marked bad/);

  // rollback: the booted 1.0 becomes the default again (no rollback below it, a pending above)
  ok(f.admin(['rollback'], booted));
  assert.deepEqual(parseStatus(ok(f.oadmin(['status']))).map((r) => r.name), [`${c1}.0`, `${c2}.0`]);
  assert.deepEqual(names(f.S), ['ostree-1-testos+0-3.conf', 'ostree-2-testos.conf']);
  b = simulateBoot(f.S, root);
  assert.ok(b.deployment.endsWith(`${c1}.0`));
});

it('while booted: the new (pending), the booted and one rollback deployment are kept; pinned ones too', () => {
  const f = makeSysroot();
  const root = path.join(f.tmp, 'root');
  const booted = [`--booted-root=${root}`, '--boot-tries=0'];
  const c = [f.commit({ version: '1' })];
  ok(f.admin(['deploy', '--os=testos', REF], booted));
  assert.deepEqual(names(f.S), ['ostree-1-testos.conf'], '--boot-tries=0 turns counting off');
  c.push(f.commit({ version: '2' }));
  ok(f.admin(['deploy', REF], booted));
  simulateBoot(f.S, root); // boots 2
  c.push(f.commit({ version: '3' }));
  ok(f.admin(['deploy', REF], booted));
  const list = () => parseStatus(ok(f.admin(['status'], booted))).map((r) => `${r.name.slice(0, 64) === c[0] ? 1 : r.name.slice(0, 64) === c[1] ? 2 : r.name.slice(0, 64) === c[2] ? 3 : r.name.slice(0, 64) === c[3] ? 4 : 5}${r.marker === '*' ? '*' : ''}${r.tag ? ` ${r.tag}` : ''}`);
  assert.deepEqual(list(), ['3 (pending)', '2*', '1 (rollback)']);
  c.push(f.commit({ version: '4' }));
  ok(f.admin(['deploy', REF], booted));
  assert.deepEqual(list(), ['4 (pending)', '2*', '1 (rollback)'], 'the old pending one goes, booted and rollback stay');
  ok(f.admin(['pin', '0'], booted));
  c.push(f.commit({ version: '5' }));
  ok(f.admin(['deploy', REF], booted));
  assert.deepEqual(list(), ['5 (pending)', '4', '2*', '1 (rollback)'], 'a pinned deployment stays');
  // undeploying the booted deployment is refused, with one line
  const r = f.admin(['undeploy', '2'], booted);
  assert.notEqual(r.status, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /cannot undeploy the booted deployment/);
});
