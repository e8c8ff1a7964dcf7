/**
 * Pull over HTTP, cairn vs the real ostree, from the same server in the same run.
 * Data: $CAIRN_BENCH_DATA/{v1,v2}.tar (default /tmp/cairn-bench; built by
 * shared/bench/make-rootfs.sh). Needs `npm run build` first (runs bin/cairn).
 * v1 and v2 are committed (by cairn) into an archive repo with a v1→v2 static delta and a summary,
 * served by `cairn serve` on 127.0.0.1. Each scenario pulls into fresh bare-user repos:
 *   full     — v1 from nothing, object by object (deltas disabled)
 *   update   — v1 → v2, object by object (deltas disabled)
 *   delta    — v1 → v2 through the static delta (--require-static-deltas)
 *   delta over a 100 Mbit/s link — the same, with what the server sends shaped by tc (htb on lo,
 *              matching the server's port; needs root and tc, else skipped; only the timed pull)
 * Prints wall time (best of CAIRN_BENCH_RUNS, default 5), the cairn/ostree ratio of the best runs
 * (target ≤ 0.8) and of the medians, every run's time, and peak RSS of the pulling process
 * (/usr/bin/time).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cairnServe } from '../test/lib/net.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAIRN = path.join(ROOT, 'bin/cairn');
const DATA = process.env.CAIRN_BENCH_DATA ?? '/tmp/cairn-bench';
const RUNS = Number(process.env.CAIRN_BENCH_RUNS ?? 5);

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

function timed(cmd: string, args: string[]): { secs: number; rssMB: number } {
  const tf = path.join(os.tmpdir(), `cairn-pull-bench-time-${process.pid}`);
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', '-o', tf, cmd, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [secs, kb] = fs.readFileSync(tf, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  fs.rmSync(tf, { force: true });
  return { secs: secs!, rssMB: kb! / 1024 };
}

type Tool = 'cairn' | 'ostree';

function init(tool: Tool, repo: string, url: string): void {
  if (tool === 'cairn') {
    run(CAIRN, ['init', `--repo=${repo}`, '--mode=bare-user']);
    run(CAIRN, ['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', url]);
  } else {
    run('ostree', ['init', `--repo=${repo}`, '--mode=bare-user']);
    run('ostree', ['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', 'origin', url]);
  }
}

/** Removes the shaping shapeLink set up, if the benchmark ends (or fails) while it is on. */
let unshapeAtExit: (() => void) | null = null;
process.on('exit', () => unshapeAtExit?.());

/**
 * Shapes what the server on `port` sends to `mbit` Mbit/s: an htb qdisc on lo whose filter
 * matches the server's source port (other loopback traffic is not slowed). Returns how to undo
 * it, or null when tc cannot do it here (not root, no tc or htb, or lo has a root qdisc already,
 * which is left alone).
 */
function shapeLink(port: number, mbit: number): (() => void) | null {
  const tc = (...args: string[]): boolean => spawnSync('tc', args, { stdio: 'ignore' }).status === 0;
  if (!tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '20')) return null;
  const undo = (): void => {
    if (unshapeAtExit === undo) unshapeAtExit = null;
    tc('qdisc', 'del', 'dev', 'lo', 'root');
  };
  unshapeAtExit = undo;
  const shaped =
    tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', `${mbit}mbit`, 'ceil', `${mbit}mbit`, 'burst', '1mb') &&
    tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', '100gbit') &&
    tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'sport', String(port), '0xffff', 'flowid', '1:10');
  if (!shaped) {
    undo();
    return null;
  }
  return undo;
}

function pull(tool: Tool, repo: string, ref: string, deltas: 'disable' | 'require'): { secs: number; rssMB: number } {
  const flag = deltas === 'disable' ? '--disable-static-deltas' : '--require-static-deltas';
  return tool === 'cairn'
    ? timed(CAIRN, ['pull', `--repo=${repo}`, '-q', flag, 'origin', ref])
    : timed('ostree', ['pull', `--repo=${repo}`, flag, 'origin', ref]);
}

async function main(): Promise<void> {
  for (const f of ['v1.tar', 'v2.tar']) {
    if (!fs.existsSync(path.join(DATA, f))) {
      console.log(`skipped: ${path.join(DATA, f)} missing (run shared/bench/make-rootfs.sh)`);
      return;
    }
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-pull-bench-'));
  try {
    const src = path.join(work, 'src');
    run(CAIRN, ['init', `--repo=${src}`, '--mode=archive']);
    const v1 = run(CAIRN, ['commit', `--repo=${src}`, '-b', 'main', '--timestamp=2024-01-01T00:00:00Z', '-s', 'v1', `--tree=tar=${DATA}/v1.tar`]);
    const v2 = run(CAIRN, ['commit', `--repo=${src}`, '-b', 'main', '--timestamp=2024-02-01T00:00:00Z', '-s', 'v2', `--tree=tar=${DATA}/v2.tar`]);
    run(CAIRN, ['static-delta', 'generate', `--repo=${src}`, `--from=${v1}`, `--to=${v2}`]);
    run(CAIRN, ['summary', `--repo=${src}`, '-u']);
    const objects = run('find', [path.join(src, 'objects'), '-type', 'f']).split('\n').length;
    console.log(`source: archive repo, ${objects} objects, v1 ${v1.slice(0, 12)}, v2 ${v2.slice(0, 12)}`);

    const { url, stop: stopServer } = await cairnServe(src);
    try {
      const port = Number(new URL(url).port);
      const scenarios: { name: string; prepare: (tool: Tool, repo: string) => void; ref: string; deltas: 'disable' | 'require'; mbit?: number }[] = [
        { name: 'full pull v1', prepare: () => {}, ref: 'main@' + v1, deltas: 'disable' },
        { name: 'update v1→v2 (objects)', prepare: (t, r) => void pull(t, r, 'main@' + v1, 'disable'), ref: 'main', deltas: 'disable' },
        { name: 'update v1→v2 (delta)', prepare: (t, r) => void pull(t, r, 'main@' + v1, 'disable'), ref: 'main', deltas: 'require' },
        { name: 'update v1→v2 (delta, 100 Mbit/s link)', prepare: (t, r) => void pull(t, r, 'main@' + v1, 'disable'), ref: 'main', deltas: 'require', mbit: 100 },
      ];
      const rows: string[] = [];
      for (const s of scenarios) {
        if (s.mbit) {
          const probe = shapeLink(port, s.mbit);
          probe?.();
          if (!probe) {
            console.log(`| ${s.name} | skipped: shaping the link needs root and tc (htb) |`);
            continue;
          }
        }
        const best: Record<Tool, { secs: number; rssMB: number }> = { cairn: { secs: Infinity, rssMB: 0 }, ostree: { secs: Infinity, rssMB: 0 } };
        const all: Record<Tool, number[]> = { cairn: [], ostree: [] };
        for (let i = 0; i < RUNS; i++) {
          for (const tool of (i % 2 === 0 ? ['ostree', 'cairn'] : ['cairn', 'ostree']) as Tool[]) {
            const repo = path.join(work, `${tool}-${s.name.replace(/\W+/g, '-')}-${i}`);
            init(tool, repo, url);
            s.prepare(tool, repo);
            run('sync', []);
            const unshape = s.mbit ? shapeLink(port, s.mbit) : null;
            if (s.mbit && !unshape) throw new Error(`tc could not shape the link for "${s.name}" (it could before)`);
            let t: { secs: number; rssMB: number };
            try {
              t = pull(tool, repo, s.ref, s.deltas);
            } finally {
              unshape?.();
            }
            all[tool].push(t.secs);
            if (t.secs < best[tool].secs) best[tool] = t;
            best[tool].rssMB = Math.max(best[tool].rssMB, t.rssMB);
            // repos are kept until the end: on this machine's ext4, files created soon after a
            // large delete cost up to 20x more (see NO_DELETES in repo.bench.ts)
          }
        }
        const ratio = best.cairn.secs / best.ostree.secs;
        // every run, sorted, and the ratio of the medians: at half a second one fast or slow run of
        // either tool moves a best-of ratio by a tenth
        const sorted = (t: Tool): number[] => [...all[t]].sort((a, b) => a - b);
        const median = (t: Tool): number => {
          const x = sorted(t);
          return x.length % 2 === 1 ? x[x.length >> 1]! : (x[x.length / 2 - 1]! + x[x.length / 2]!) / 2;
        };
        const runs = (t: Tool): string => sorted(t).map((x) => x.toFixed(2)).join(' / ');
        const row = `| ${s.name} | ${best.cairn.secs.toFixed(2)} s | ${best.ostree.secs.toFixed(2)} s | ${ratio.toFixed(2)}× ${ratio <= 0.8 ? '(meets ≤ 0.8)' : '(target ≤ 0.8 missed)'} | ${(median('cairn') / median('ostree')).toFixed(2)}× | ${runs('cairn')} | ${runs('ostree')} | ${best.cairn.rssMB.toFixed(0)} MB | ${best.ostree.rssMB.toFixed(0)} MB |`;
        rows.push(row);
        console.log(row);
      }
      console.log('\n| scenario | cairn | ostree | cairn/ostree (best) | cairn/ostree (medians) | cairn runs | ostree runs | cairn peak RSS | ostree peak RSS |\n|---|---|---|---|---|---|---|---|---|');
      for (const r of rows) console.log(r);
    } finally {
      await stopServer();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
