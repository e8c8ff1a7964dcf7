// GRUB 2 backend: BLS entries without counters, the counter in grubenv (boot_counter /
// boot_success, Fedora's fallback-counting scheme); a simulated GRUB falls back to entry 1
// once the counter runs out; bless and rollback reset it.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ok } from '../lib/helpers.js';
import { REF, loaderEntries, makeSysroot, parseStatus } from '../lib/fake-sysroot.js';
import { GRUBENV_SIZE, grubBoot, parseGrubenv, serializeGrubenv } from '../../src/sysroot/grubenv.js';

function grubSimulatedBoot(S: string, rootLink: string): string {
  const envPath = path.join(S, 'boot/grub2/grubenv');
  const { index, env } = grubBoot(parseGrubenv(fs.readFileSync(envPath)));
  fs.writeFileSync(envPath, serializeGrubenv(env)); // save_env
  const entries = loaderEntries(S).sort((a, b) => Number(b.version) - Number(a.version)); // blscfg: by version
  const arg = entries[index]!.options.split(' ').find((a) => a.startsWith('ostree='))!;
  const dep = fs.realpathSync(path.join(S, arg.slice('ostree=/'.length)));
  fs.rmSync(rootLink, { force: true });
  fs.symlinkSync(dep, rootLink);
  return path.basename(dep);
}

it('grubenv codec: 1024 bytes, header, padding, round trip', () => {
  const b = serializeGrubenv(new Map([['saved_entry', 'x'], ['boot_counter', '3']]));
  assert.equal(b.length, GRUBENV_SIZE);
  assert.ok(b.toString().startsWith('# GRUB Environment Block\nsaved_entry=x\nboot_counter=3\n#'));
  assert.deepEqual([...parseGrubenv(b)], [['saved_entry', 'x'], ['boot_counter', '3']]);
  assert.throws(() => parseGrubenv(Buffer.from('nope')), /header/);
});

it('grub2: counter in grubenv, fallback to the previous version, bless, rollback', () => {
  const f = makeSysroot();
  const root = path.join(f.tmp, 'root');
  const booted = [`--booted-root=${root}`];
  const envPath = path.join(f.S, 'boot/grub2/grubenv');
  fs.mkdirSync(path.dirname(envPath), { recursive: true });
  fs.writeFileSync(envPath, serializeGrubenv(new Map()));
  const env = () => Object.fromEntries(parseGrubenv(fs.readFileSync(envPath)));

  const c1 = f.commit({ version: '1.0' });
  ok(f.admin(['deploy', '--os=testos', REF]));
  assert.deepEqual(loaderEntries(f.S).map((e) => e.fileName), ['ostree-1-testos.conf'], 'no counter in entry names with GRUB');
  assert.deepEqual(env(), { boot_success: '0', boot_counter: '3' });
  assert.equal(grubSimulatedBoot(f.S, root), `${c1}.0`);
  assert.match(ok(f.admin(['status'], booted)), /Boot tries left: 2 .*\n {4}Blessed: no/);
  ok(f.admin(['bless'], booted));
  assert.deepEqual(env(), { boot_success: '1' });
  assert.match(ok(f.admin(['status'], booted)), /Blessed: yes/);

  const c2 = f.commit({ version: '2.0', kernel: 'K2\n' });
  ok(f.admin(['deploy', REF], booted));
  assert.deepEqual(env(), { boot_success: '0', boot_counter: '3' });
  const seen = [1, 2, 3, 4].map(() => grubSimulatedBoot(f.S, root));
  assert.deepEqual(seen, [`${c2}.0`, `${c2}.0`, `${c2}.0`, `${c1}.0`], 'three tries, then the previous version');
  assert.equal(env().boot_counter, '-1');
  const rows = parseStatus(ok(f.admin(['status'], booted)));
  assert.deepEqual(rows.map((r) => [r.name, r.marker]), [[`${c2}.0`, ' '], [`${c1}.0`, '*']]);
  assert.match(ok(f.admin(['status'], booted)), /Boot tries left: 0/);

  ok(f.admin(['rollback'], booted));
  assert.equal(env().boot_counter, undefined, 'the counter of the abandoned version is disarmed');
  assert.equal(grubSimulatedBoot(f.S, root), `${c1}.0`);
  assert.equal(ok(f.oadmin(['status'])).split('\n')[0]!.trim(), `testos ${c1}.0`);
});
