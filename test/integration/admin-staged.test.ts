// Staged deployments: deploy --stage prepares everything but leaves the bootloader alone;
// /etc edits made after staging are merged at finalize-staged (run at shutdown).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ok } from '../lib/helpers.js';
import { REF, loaderEntries, makeSysroot, parseStatus, simulateBoot } from '../lib/fake-sysroot.js';

it('deploy --stage, then finalize-staged', () => {
  const f = makeSysroot();
  const root = path.join(f.tmp, 'root');
  const booted = [`--booted-root=${root}`];
  const c1 = f.commit({ version: '1.0', etc: { 'a.conf': '1\n', 'b.conf': '1\n' } });
  ok(f.admin(['deploy', '--os=testos', '--karg=quiet', REF]));
  const b = simulateBoot(f.S, root);
  ok(f.admin(['bless'], booted));
  const c2 = f.commit({ version: '2.0', kernel: 'KERNEL 2\n', etc: { 'a.conf': '2\n', 'b.conf': '2\n' } });
  const entriesBefore = loaderEntries(f.S);
  const loaderBefore = fs.readlinkSync(path.join(f.S, 'boot/loader'));
  const out = f.admin(['deploy', '--stage', REF], booted);
  ok(out);
  assert.match(out.stdout, /\(staged\)/);
  // bootloader untouched, no kernel installed yet; status lists the staged deployment first
  assert.deepEqual(loaderEntries(f.S), entriesBefore);
  assert.equal(fs.readlinkSync(path.join(f.S, 'boot/loader')), loaderBefore);
  assert.equal(fs.readdirSync(path.join(f.S, 'boot/ostree')).length, 1);
  assert.ok(fs.existsSync(path.join(f.S, 'run/ostree/staged-deployment')));
  const rows = parseStatus(ok(f.admin(['status'], booted)));
  assert.deepEqual(rows.map((r) => [r.name, r.tag, r.marker]), [[`${c2}.0`, '(staged)', ' '], [`${c1}.0`, '', '*']]);
  // ostree (not booted, so it ignores /run) still sees the old list only
  assert.deepEqual(parseStatus(ok(f.oadmin(['status']))).map((r) => r.name), [`${c1}.0`]);
  // a cleanup must keep the staged deployment and its commit
  ok(f.admin(['cleanup'], booted));
  assert.ok(fs.existsSync(path.join(f.S, 'ostree/deploy/testos/deploy', `${c2}.0`)));

  // the admin keeps editing /etc after staging: the edit must reach the new deployment
  fs.writeFileSync(path.join(b.deployment, 'etc/a.conf'), 'LATE EDIT\n');
  const fin = f.admin(['finalize-staged'], booted);
  ok(fin);
  assert.match(fin.stdout, /Finalized testos/);
  assert.match(fin.stderr, /Copying \/etc changes: 1 modified, 0 removed, 0 added/);
  const etc = path.join(f.S, 'ostree/deploy/testos/deploy', `${c2}.0`, 'etc');
  assert.equal(fs.readFileSync(path.join(etc, 'a.conf'), 'utf8'), 'LATE EDIT\n');
  assert.equal(fs.readFileSync(path.join(etc, 'b.conf'), 'utf8'), '2\n');
  assert.equal(fs.existsSync(path.join(f.S, 'run/ostree/staged-deployment')), false);
  assert.deepEqual(parseStatus(ok(f.oadmin(['status']))).map((r) => r.name), [`${c2}.0`, `${c1}.0`]);
  const newest = loaderEntries(f.S).find((e) => e.version === '2')!;
  assert.equal(newest.fileName, 'ostree-2-testos+3.conf');
  assert.match(newest.options, /^quiet ostree=/);
  assert.equal(ok(f.admin(['finalize-staged'], booted)), 'No staged deployment');
});

it('a plain deploy replaces a staged deployment', () => {
  const f = makeSysroot();
  f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', REF]));
  const c2 = f.commit({ version: '2.0' });
  ok(f.admin(['deploy', '--stage', REF]));
  const c3 = f.commit({ version: '3.0' });
  ok(f.admin(['deploy', REF]));
  const rows = parseStatus(ok(f.admin(['status'])));
  assert.equal(rows.some((r) => r.name.startsWith(c2)), false);
  assert.equal(rows[0]!.name, `${c3}.0`);
  assert.equal(fs.existsSync(path.join(f.S, 'ostree/deploy/testos/deploy', `${c2}.0`)), false);
  assert.equal(fs.existsSync(path.join(f.S, 'run/ostree/staged-deployment')), false);
});
