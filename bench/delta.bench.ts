/**
 * Static deltas, cairn vs the real ostree, on the same v1 -> v2 pair in the same run.
 * Data: $CAIRN_BENCH_DATA/{v1,v2}.tar (default /tmp/cairn-bench; built by
 * shared/bench/make-rootfs.sh). Needs `npm run build` first (runs bin/cairn).
 * Prints: delta sizes (superblock + parts + fallbacks) and cairn/ostree ratio, generate time,
 * apply-offline time into a bare-user repo holding v1, peak RSS of each command.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSuperblock } from '../src/format/delta.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAIRN = path.join(ROOT, 'bin/cairn');
const DATA = process.env.CAIRN_BENCH_DATA ?? '/tmp/cairn-bench';

interface Timed {
  secs: number;
  rssMB: number;
  stdout: string;
}

/** Runs a command under /usr/bin/time: wall seconds and peak RSS. */
function timed(cmd: string, args: string[]): Timed {
  const tf = path.join(os.tmpdir(), `cairn-bench-time-${process.pid}`);
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', tf, cmd, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [secs, kb] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  fs.rmSync(tf, { force: true });
  return { secs: secs!, rssMB: kb! / 1024, stdout: r.stdout };
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

function mb64(c: string): string {
  return Buffer.from(c, 'hex').toString('base64').replace(/\//g, '_').replace(/=+$/, '');
}

function deltaSize(dir: string): { superblock: number; parts: number; fallbacks: number; nparts: number; nfallbacks: number } {
  const sbBytes = fs.readFileSync(path.join(dir, 'superblock'));
  const sb = parseSuperblock(sbBytes);
  return {
    superblock: sbBytes.length,
    parts: sb.parts.reduce((n, p) => n + p.size, 0),
    fallbacks: sb.fallbacks.reduce((n, f) => n + f.size, 0),
    nparts: sb.parts.length,
    nfallbacks: sb.fallbacks.length,
  };
}

const MB = (n: number): string => `${(n / 1e6).toFixed(2)} MB`;

function main(): void {
  for (const f of ['v1.tar', 'v2.tar']) {
    if (!fs.existsSync(path.join(DATA, f))) {
      console.log(`skipped: ${path.join(DATA, f)} missing (run shared/bench/make-rootfs.sh ${DATA})`);
      return;
    }
  }
  const W = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-delta-'));
  try {
    const repo = path.join(W, 'repo');
    run(CAIRN, ['init', `--repo=${repo}`, '--mode=archive']);
    const v1 = run(CAIRN, ['commit', `--repo=${repo}`, '-b', 'os', '-s', 'v1', `--tree=tar=${path.join(DATA, 'v1.tar')}`]);
    const v2 = run(CAIRN, ['commit', `--repo=${repo}`, '-b', 'os', '-s', 'v2', `--tree=tar=${path.join(DATA, 'v2.tar')}`]);
    const rel = `deltas/${mb64(v1).slice(0, 2)}/${mb64(v1).slice(2)}-${mb64(v2)}`;

    /** Both tools generate the v1→v2 delta (cairn with `cairnOnly` too), moved out to W/<tool>-delta<suffix>. */
    const generateBoth = (suffix: string, flags: string[], cairnOnly: string[] = []) => {
      const args = ['static-delta', 'generate', `--repo=${repo}`, `--from=${v1}`, `--to=${v2}`, ...flags];
      const cg = timed(CAIRN, [...args, ...cairnOnly]);
      const cairnDir = path.join(W, `cairn-delta${suffix}`);
      fs.renameSync(path.join(repo, rel), cairnDir);
      const og = timed('ostree', args);
      const ostreeDir = path.join(W, `ostree-delta${suffix}`);
      fs.renameSync(path.join(repo, rel), ostreeDir);
      const cs = deltaSize(cairnDir);
      const os_ = deltaSize(ostreeDir);
      return { cg, og, cairnDir, ostreeDir, cs, os_, cTotal: cs.superblock + cs.parts + cs.fallbacks, oTotal: os_.superblock + os_.parts + os_.fallbacks };
    };
    const { cg, og, cairnDir, cs, os_, cTotal, oTotal } = generateBoth('', [], ['--json']);
    const info = JSON.parse(cg.stdout);

    // the one-file offline bundle (default delta + its fallbacks)
    const bundle = path.join(W, 'update.cairn');
    fs.renameSync(cairnDir, path.join(repo, rel));
    run(CAIRN, ['static-delta', 'export', `--repo=${repo}`, `--from=${v1}`, `--to=${v2}`, `--file=${bundle}`]);
    fs.rmSync(path.join(repo, rel), { recursive: true });

    // ostree refuses to apply offline any delta with fallbacks, so for apply times both tools
    // generate again with everything in parts (--min-fallback-size=64)
    const { cg: cg2, og: og2, cairnDir: cairnDir2, ostreeDir: ostreeDir2, cs: cs2, os_: os2, cTotal: c2, oTotal: o2 } = generateBoth('-nf', ['--min-fallback-size=64']);
    const target = (name: string): string => {
      const t = path.join(W, name);
      run('ostree', ['init', `--repo=${t}`, '--mode=bare-user']);
      run('ostree', ['pull-local', `--repo=${t}`, repo, v1]);
      return t;
    };
    const tc = target('t-cairn');
    const ca = timed(CAIRN, ['static-delta', 'apply-offline', `--repo=${tc}`, cairnDir2]);
    run('ostree', ['fsck', `--repo=${tc}`]);
    const to = target('t-ostree');
    const oa = timed('ostree', ['static-delta', 'apply-offline', `--repo=${to}`, ostreeDir2]);
    const ti = target('t-interop');
    const oi = timed('ostree', ['static-delta', 'apply-offline', `--repo=${ti}`, cairnDir2]);
    run('ostree', ['fsck', `--repo=${ti}`]);
    const tx = target('t-cross');
    const cx = timed(CAIRN, ['static-delta', 'apply-offline', `--repo=${tx}`, ostreeDir2]);
    run('ostree', ['fsck', `--repo=${tx}`]);
    const tb = target('t-bundle');
    const cb = timed(CAIRN, ['static-delta', 'apply-offline', `--repo=${tb}`, bundle]);
    run('ostree', ['fsck', `--repo=${tb}`]);

    console.log(`pair: v1 ${v1.slice(0, 12)} -> v2 ${v2.slice(0, 12)}; new objects: ${info.newMetadata} metadata, ${info.newContent} content`);
    console.log(`cairn : ${MB(cTotal)} (superblock ${MB(cs.superblock)}, ${cs.nparts} parts ${MB(cs.parts)}, ${cs.nfallbacks} fallbacks ${MB(cs.fallbacks)}); bsdiff ${info.bsdiff}`);
    console.log(`ostree: ${MB(oTotal)} (superblock ${MB(os_.superblock)}, ${os_.nparts} parts ${MB(os_.parts)}, ${os_.nfallbacks} fallbacks ${MB(os_.fallbacks)})`);
    console.log(`size ratio cairn/ostree: ${(cTotal / oTotal).toFixed(3)}`);
    console.log(`generate: cairn ${cg.secs.toFixed(1)} s (peak RSS ${cg.rssMB.toFixed(0)} MB), ostree ${og.secs.toFixed(1)} s (peak RSS ${og.rssMB.toFixed(0)} MB), ratio ${(cg.secs / og.secs).toFixed(2)}`);
    console.log(`--min-fallback-size=64 (everything in parts): cairn ${MB(c2)} (${cs2.nparts} parts), ostree ${MB(o2)} (${os2.nparts} parts), ratio ${(c2 / o2).toFixed(3)}; generate cairn ${cg2.secs.toFixed(1)} s, ostree ${og2.secs.toFixed(1)} s`);
    console.log(`apply-offline of those into bare-user at v1: cairn ${ca.secs.toFixed(1)} s (peak RSS ${ca.rssMB.toFixed(0)} MB), ostree ${oa.secs.toFixed(1)} s (peak RSS ${oa.rssMB.toFixed(0)} MB), ratio ${(ca.secs / oa.secs).toFixed(2)}`);
    console.log(`cross: ostree applies cairn's delta ${oi.secs.toFixed(1)} s, cairn applies ostree's delta ${cx.secs.toFixed(1)} s (fsck clean)`);
    console.log(`offline bundle (default delta + fallbacks, one file): ${MB(fs.statSync(bundle).size)}, cairn apply-offline ${cb.secs.toFixed(1)} s (peak RSS ${cb.rssMB.toFixed(0)} MB)`);
  } finally {
    if (!process.env.KEEP_TMP) fs.rmSync(W, { recursive: true, force: true });
  }
}

main();
