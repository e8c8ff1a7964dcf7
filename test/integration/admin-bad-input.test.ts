// Bad input to `cairn admin`: one clear line on stderr, a non-zero exit, nothing changed on disk.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ok, snapshotTree, treeDiff } from '../lib/helpers.js';
import { REF, makeSysroot } from '../lib/fake-sysroot.js';

function refused(r: { status: number; stderr: string; stdout: string }, re: RegExp): void {
  assert.notEqual(r.status, 0, `expected failure, got: ${r.stdout}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.match(lines[0]!, re);
}

it('each bad input is refused with one line and leaves the sysroot as it was', () => {
  const f = makeSysroot();
  f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', REF]));
  f.commit({ version: '2.0', kernel: 'KERNEL 2\n'.repeat(1000) });
  ok(f.admin(['deploy', REF]));
  f.commit({ version: 'nokernel', kernel: null }, 'testos/nokernel');
  f.commit({ version: '3.0', kernel: 'KERNEL 3\n'.repeat(20000) }, 'testos/big');
  const before = snapshotTree(f.S);
  const same = (what: string) => assert.deepEqual(treeDiff(before, snapshotTree(f.S)), [], `${what} changed the sysroot`);

  refused(f.admin(['deploy', '--os=nope', REF]), /unknown OS "nope".*os-init nope/);
  same('unknown OS');
  refused(f.admin(['deploy', 'testos/no/such/ref']), /ref "testos\/no\/such\/ref" not found/);
  same('missing ref');
  refused(f.admin(['deploy', 'testos/nokernel']), /has no kernel: no usr\/lib\/modules\/<kver>\/vmlinuz/);
  same('commit without a kernel');
  const used = 30000; // bytes: /boot already holds ~9 kB of kernels
  refused(f.admin(['deploy', 'testos/big'], [`--pretend-boot-size=${used}`]), /not enough space in .*boot: the new kernel and initramfs need 180\.\d kB, only .* is free; "cairn admin undeploy 1" frees/);
  same('/boot too small');
  refused(f.admin(['undeploy', '5']), /deployment index 5 is out of range \(valid: 0\.\.1\)/);
  refused(f.admin(['pin', '2']), /deployment index 2 is out of range/);
  refused(f.admin(['kargs', '--index=9', '--append=x']), /deployment index 9 is out of range/);
  same('index out of range');
  refused(f.admin(['rollback', '--os=nope']), /unknown OS "nope"/);
  refused(f.admin(['undeploy', 'x']), /INDEX: "x" is not a deployment index/);
  refused(f.admin(['bless']), /not booted into a deployment/);
  same('usage errors');
  refused(f.admin(['status'], ['--sysroot=/nonexistent/sysroot']), /not a sysroot \(no ostree\/repo/);
  refused(f.admin(['deploy', REF], ['--sysroot=/nonexistent/sysroot']), /not a sysroot \(no ostree\/repo/);

  // a corrupt origin file: every command names it and stops
  const st = JSON.parse(ok(f.admin(['status', '--json']))) as { deployments: { name: string }[] };
  const origin = path.join(f.S, 'ostree/deploy/testos/deploy', `${st.deployments[1]!.name}.origin`);
  fs.writeFileSync(origin, 'this is not a key file\n');
  const corrupt = snapshotTree(f.S);
  refused(f.admin(['status']), new RegExp(`corrupt origin file ${origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  refused(f.admin(['deploy', REF]), /corrupt origin file/);
  refused(f.admin(['cleanup']), /corrupt origin file/);
  assert.deepEqual(treeDiff(corrupt, snapshotTree(f.S)), [], 'a corrupt origin changed the sysroot');
});
