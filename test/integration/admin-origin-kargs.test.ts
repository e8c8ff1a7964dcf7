// set-origin, kargs editing, the immutable deployment root and cleanup of old deployments.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ok } from '../lib/helpers.js';
import { REF, loaderEntries, makeSysroot, parseStatus } from '../lib/fake-sysroot.js';

const lsattr = (p: string) => spawnSync('lsattr', ['-d', p], { encoding: 'utf8' }).stdout.split(' ')[0]!;

it('set-origin, kargs, immutable roots, cleanup', () => {
  const f = makeSysroot();
  const c1 = f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', '--karg=root=LABEL=root', REF]));
  const d1 = path.join(f.S, 'ostree/deploy/testos/deploy', `${c1}.0`);
  assert.match(lsattr(d1), /i/, 'deployment root is immutable, as ostree makes it');
  assert.throws(() => fs.writeFileSync(path.join(d1, 'new-file'), 'x'), /EPERM/);
  // files are hardlinks into the repo (never to be modified in place)
  assert.ok(fs.statSync(path.join(d1, 'usr/bin/sh')).nlink >= 2);

  ok(f.admin(['set-origin', '--set=gpg-verify=false', 'upstream', 'https://example.com/repo']));
  assert.equal(parseStatus(ok(f.oadmin(['status'])))[0]!.refspec, `upstream:${REF}`);
  assert.match(fs.readFileSync(path.join(f.repo, 'config'), 'utf8'), /\[remote "upstream"\]\nurl=https:\/\/example.com\/repo\ngpg-verify=false/);

  ok(f.admin(['kargs', '--append=console=ttyS0', '--replace=root=LABEL=sysroot']));
  assert.equal(ok(f.admin(['kargs'])), 'root=LABEL=sysroot console=ttyS0');
  assert.match(loaderEntries(f.S)[0]!.options, /^root=LABEL=sysroot console=ttyS0 ostree=/);
  ok(f.admin(['kargs', '--delete=console']));
  assert.equal(ok(f.admin(['kargs'])), 'root=LABEL=sysroot');

  // the new deployment inherits the kargs; the second deploy pushes the first one out
  const c2 = f.commit({ version: '2.0', kernel: 'K2\n' });
  ok(f.admin(['deploy', REF]));
  const c3 = f.commit({ version: '3.0', kernel: 'K3\n' });
  ok(f.admin(['deploy', REF], ['--no-immutable']));
  assert.deepEqual(parseStatus(ok(f.oadmin(['status']))).map((r) => r.name), [`${c3}.0`, `${c2}.0`]);
  assert.equal(fs.existsSync(d1), false, 'the old (immutable) deployment was removed');
  assert.doesNotMatch(lsattr(path.join(f.S, 'ostree/deploy/testos/deploy', `${c3}.0`)), /i/);
  assert.ok(loaderEntries(f.S).every((e) => e.options.startsWith('root=LABEL=sysroot ')));
  assert.deepEqual(fs.readdirSync(path.join(f.S, 'boot/ostree')).length, 2, 'the old kernel left /boot');
  // the internal refs keep exactly the deployed commits
  const refs = spawnSync('ostree', ['refs', `--repo=${f.repo}`], { encoding: 'utf8' }).stdout.split('\n').filter((r) => r.startsWith('ostree/')).sort();
  assert.deepEqual(refs, ['ostree/1/1/0', 'ostree/1/1/1']);
  ok(f.admin(['cleanup']));
  assert.equal(spawnSync('ostree', ['fsck', `--repo=${f.repo}`], { encoding: 'utf8' }).status, 0);
});

it('rollback between deployments of the same commit swaps only the bootlinks (boot.B.S), as ostree would', () => {
  const f = makeSysroot();
  const c = f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', REF]));
  ok(f.admin(['deploy', REF]));
  assert.deepEqual(parseStatus(ok(f.oadmin(['status']))).map((r) => r.name), [`${c}.1`, `${c}.0`]);
  const loader = fs.readlinkSync(path.join(f.S, 'boot/loader'));
  const entries = loaderEntries(f.S);
  const link = fs.readlinkSync(path.join(f.S, `ostree/boot.${loader.slice(-1)}`));
  const r = f.admin(['rollback']);
  ok(r);
  assert.match(r.stderr, /Bootlinks swapped/);
  assert.equal(fs.readlinkSync(path.join(f.S, 'boot/loader')), loader, '/boot untouched');
  assert.deepEqual(loaderEntries(f.S), entries);
  assert.notEqual(fs.readlinkSync(path.join(f.S, `ostree/boot.${loader.slice(-1)}`)), link);
  assert.deepEqual(parseStatus(ok(f.oadmin(['status']))).map((r2) => r2.name), [`${c}.0`, `${c}.1`]);
});
