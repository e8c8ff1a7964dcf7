// Fault injection: `cairn admin deploy | rollback | cleanup | finalize-staged` killed with SIGKILL
// at random moments (≥50 trials). After every kill the sysroot must load, its default
// deployment must be complete (tree identical to its commit, /etc and origin present) and
// bootable, the previous default must still be bootable, the real ostree must read it, and the
// next operation must work from there. Seeded; set FAULT_SEED to replay.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CAIRN, ok, ostree, snapshotTree, treeDiff, type TreeEntry } from '../lib/helpers.js';
import { makeSysroot, parseStatus } from '../lib/fake-sysroot.js';
import { blsGet, deployDir, loadSysroot, type Deployment } from '../../src/sysroot/index.js';

const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 100000);
let rng = SEED;
const random = (): number => {
  rng = (rng * 1103515245 + 12345) % 2147483648;
  return rng / 2147483648;
};

function runKilled(args: string[], delayMs: number): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(CAIRN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), delayMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ killed: signal === 'SIGKILL', code, stderr });
    });
  });
}

it(`admin operations killed at random points leave a bootable sysroot (seed ${SEED})`, { timeout: 600_000 }, async () => {
  const f = makeSysroot();
  const refs: string[] = [];
  const reference = new Map<string, Map<string, TreeEntry>>();
  for (let v = 1; v <= 4; v++) {
    const ref = `testos/v${v}`;
    const csum = f.commit({ version: `${v}.0`, kernel: `KERNEL ${v}\n`.repeat(v * 1000), files: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`usr/share/data/${v}/f${i}`, `${v}:${i}\n`])) }, ref);
    refs.push(ref);
    const dest = path.join(f.tmp, `ref-${v}`);
    ok(ostree(['checkout', `--repo=${f.repo}`, csum, dest]), 'reference checkout');
    const snap = snapshotTree(dest);
    for (const k of [...snap.keys()]) if (k === '/etc' || k.startsWith('/etc/')) snap.delete(k);
    reference.set(csum, snap);
  }
  ok(f.admin(['deploy', '--os=testos', '--karg=root=LABEL=root', refs[0]!]));
  ok(f.admin(['deploy', refs[1]!]));

  const key = (d: Deployment) => `${d.csum}.${d.deployserial}`;
  const bootable = (S: string, d: Deployment, what: string): void => {
    assert.ok(d.entry, `${what}: has a BLS entry`);
    for (const k of ['linux', 'initrd']) {
      const p = path.join(S, 'boot', blsGet(d.entry!, k)!);
      assert.ok(fs.existsSync(p), `${what}: ${k} ${p} exists`);
      assert.ok(fs.statSync(p).size > 0);
    }
    const arg = blsGet(d.entry!, 'options')!.split(' ').find((a) => a.startsWith('ostree='))!;
    assert.equal(fs.realpathSync(path.join(S, arg.slice('ostree=/'.length))), deployDir(S, d), `${what}: bootlink resolves to the deployment`);
    assert.match(blsGet(d.entry!, 'options')!, /root=LABEL=root/, `${what}: kargs kept`);
  };
  const check = (prevDefault: string, op: string): string => {
    const st = loadSysroot(f.S);
    const list = st.deployments.filter((d) => !d.staged);
    assert.ok(list.length >= 1, `${op}: a default deployment exists`);
    const def = list[0]!;
    bootable(f.S, def, `${op}: default`);
    const dir = deployDir(f.S, def);
    const snap = snapshotTree(dir);
    for (const k of [...snap.keys()]) if (k === '/etc' || k.startsWith('/etc/')) snap.delete(k);
    assert.deepEqual(treeDiff(reference.get(def.csum)!, snap), [], `${op}: default deployment tree is complete`);
    assert.ok(fs.existsSync(path.join(dir, 'etc/os.conf')), `${op}: default /etc is in place`);
    assert.ok(def.originText && /refspec=/.test(def.originText), `${op}: default has its origin`);
    const prev = list.find((d) => key(d) === prevDefault);
    assert.ok(prev, `${op}: the previous default ${prevDefault.slice(0, 12)} is still deployed`);
    bootable(f.S, prev, `${op}: previous default`);
    const o = parseStatus(ok(ostree(['admin', `--sysroot=${f.S}`, 'status']), `${op}: ostree admin status`));
    assert.equal(o[0]!.name, key(def), `${op}: ostree sees the same default`);
    return key(def);
  };

  const timeOf = (args: string[]): number => {
    const t0 = Date.now();
    ok(f.admin(args));
    return Date.now() - t0;
  };
  // kill between node's start-up (nothing written yet) and the end of the command
  const t0 = Date.now();
  ok(f.admin(['status']));
  const startup = Date.now() - t0;
  const stats: Record<string, { trials: number; killed: number; leftovers: number; switched: number }> = {};
  /** Partial work on disk after a kill: a checkout nobody references, a new loader, temp files. */
  const leftovers = (): boolean => {
    const st = loadSysroot(f.S);
    const live = new Set(st.deployments.map((d) => key(d)));
    const dir = path.join(f.S, 'ostree/deploy/testos/deploy');
    if (fs.readdirSync(dir).some((n) => !n.endsWith('.origin') && !live.has(n))) return true;
    if (fs.existsSync(path.join(f.S, `boot/loader.${1 - st.bootversion}`))) return true;
    return fs.readdirSync(path.join(f.S, 'boot')).some((n) => n.startsWith('.tmp-'));
  };
  let prevDefault = check(key(loadSysroot(f.S).deployments[0]!), 'setup');
  // per operation, the delay limit walks toward the moment the command completes (machine load
  // varies a lot): longer after a kill that changed nothing, shorter after a run that finished
  const limits: Record<string, number> = {};
  const trial = async (op: string, args: string[], measured: number): Promise<void> => {
    const s = (stats[op] ??= { trials: 0, killed: 0, leftovers: 0, switched: 0 });
    const before = prevDefault;
    const limit = (limits[op] ??= measured * 1.2);
    const delay = Math.floor(startup * 0.7 + random() * Math.max(50, limit - startup * 0.7));
    const r = await runKilled(['admin', args[0]!, `--sysroot=${f.S}`, ...args.slice(1)], delay);
    s.trials++;
    if (r.killed) {
      s.killed++;
      if (leftovers()) s.leftovers++;
    } else assert.equal(r.code, 0, `${op} finished but failed: ${r.stderr}`);
    prevDefault = check(prevDefault, `${op} #${s.trials} (killed after ${delay} ms: ${r.killed})`);
    if (prevDefault !== before) s.switched++;
    limits[op] = r.killed && prevDefault === before ? limit * 1.15 : !r.killed ? limit * 0.85 : limit;
  };

  const tDeploy = timeOf(['deploy', refs[2]!]);
  prevDefault = check(prevDefault, 'timed deploy');
  for (let i = 0; i < 20; i++) await trial('deploy', ['deploy', refs[i % 4]!], tDeploy);
  const tRollback = timeOf(['rollback']);
  prevDefault = check(prevDefault, 'timed rollback');
  for (let i = 0; i < 12; i++) await trial('rollback', ['rollback'], tRollback);
  for (let i = 0; i < 8; i++) {
    // make garbage first: a deploy killed early leaves a partial checkout behind
    await runKilled(['admin', 'deploy', `--sysroot=${f.S}`, refs[i % 4]!], 150 + Math.floor(random() * 250));
    prevDefault = check(prevDefault, `garbage #${i}`);
    await trial('cleanup', ['cleanup'], tRollback);
  }
  ok(f.admin(['deploy', '--stage', refs[3]!]), 'stage');
  const tFinalize = timeOf(['finalize-staged']);
  prevDefault = check(prevDefault, 'timed finalize');
  for (let i = 0; i < 12; i++) {
    const st = loadSysroot(f.S);
    if (!st.staged) ok(f.admin(['deploy', '--stage', refs[(i + 1) % 4]!]), 'stage');
    await trial('finalize-staged', ['finalize-staged'], tFinalize);
  }
  // whatever was left staged finalizes cleanly
  ok(f.admin(['finalize-staged']));
  prevDefault = check(prevDefault, 'final finalize');
  ok(f.admin(['cleanup']));
  check(prevDefault, 'final cleanup');
  const total = Object.values(stats).reduce((n, s) => n + s.trials, 0);
  const killed = Object.values(stats).reduce((n, s) => n + s.killed, 0);
  console.log(`fault trials: ${JSON.stringify(stats)} total ${total}, killed mid-way ${killed}, start-up ${startup} ms, seed ${SEED}`);
  assert.ok(total >= 50);
  assert.ok(killed >= 15, `many trials should really interrupt the command (killed ${killed}/${total})`);
});
