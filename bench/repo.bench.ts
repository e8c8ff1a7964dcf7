/**
 * Repository benchmark: cairn vs the real ostree, same machine, same run, on a realistic root
 * filesystem (Debian minbase from ../shared/bench/make-rootfs.sh): commit (archive, bare),
 * checkout with hardlinks, fsck (archive). Prints medians, the cairn/ostree ratio and peak RSS,
 * and a markdown table for docs/BENCHMARKS.md. BENCH_RUNS runs per measurement (default 5: with
 * medians of 3, a ratio moved by ±0.06 from one run of the benchmark to the next).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAIRN = path.join(ROOT, 'bin/cairn');
const DATA = process.env.CAIRN_BENCH_DATA ?? '/tmp/cairn-bench';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function sh(cmd: string): string {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd}\n${r.stderr}`);
  return r.stdout;
}

interface Sample {
  seconds: number;
  maxRssMb: number;
  stdout: string;
}

/** Runs a command under GNU time: wall seconds and peak RSS of the process tree's largest member. */
function timed(argv: string[]): Sample {
  const r = spawnSync('/usr/bin/time', ['-f', '__TIME__ %e %M', ...argv], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = /__TIME__ ([\d.]+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${argv.join(' ')} failed:\n${r.stderr}`);
  return { seconds: Number(m[1]), maxRssMb: Number(m[2]) / 1024, stdout: r.stdout.trim() };
}

/**
 * NO_DELETES: nothing is deleted between timed runs, only the whole work directory at the end.
 * On this machine's ext4 (no journal), inode allocation skips inodes freed in the last minutes
 * (recently_deleted(), up to 300 s while their inode-table block is dirty) by scanning the group
 * from its start for every new file: the first process to create ~7,500 files after a large
 * `rm -rf` spent 3.6 s of system time where the next one spent 0.15 s. Deleting the previous
 * run's output therefore timed the filesystem, and whichever tool ran next, not the tools.
 */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Row {
  name: string;
  ostree: number;
  cairn: number;
  cairnRss: number;
  ostreeRss: number;
}

function compare(name: string, setup: (tool: 'ostree' | 'cairn', run: number) => string[], after?: () => void): Row {
  const t: Record<'ostree' | 'cairn', Sample[]> = { ostree: [], cairn: [] };
  for (let run = 0; run < RUNS; run++) {
    for (const tool of ['ostree', 'cairn'] as const) {
      sh('sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true');
      t[tool].push(timed(setup(tool, run)));
      after?.();
    }
  }
  const row = {
    name,
    ostree: median(t.ostree.map((s) => s.seconds)),
    cairn: median(t.cairn.map((s) => s.seconds)),
    cairnRss: Math.max(...t.cairn.map((s) => s.maxRssMb)),
    ostreeRss: Math.max(...t.ostree.map((s) => s.maxRssMb)),
  };
  console.log(`${name.padEnd(28)} ostree ${row.ostree.toFixed(2)} s   cairn ${row.cairn.toFixed(2)} s   ratio ${(row.cairn / row.ostree).toFixed(2)}   peak RSS cairn ${row.cairnRss.toFixed(0)} MB / ostree ${row.ostreeRss.toFixed(0)} MB`);
  return row;
}

function main(): void {
  const tar = path.join(DATA, 'v1.tar');
  if (!fs.existsSync(tar)) sh(`bash ${path.join(ROOT, '../shared/bench/make-rootfs.sh')} ${DATA}`);
  if (!fs.existsSync(path.join(ROOT, 'dist/bundle/cairn.js'))) sh(`cd ${ROOT} && npm run build`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    fs.mkdirSync(rootfs);
    sh(`tar --xattrs -xpf ${tar} -C ${rootfs}`);
    const files = Number(sh(`find ${rootfs} -type f | wc -l`).trim());
    const mib = Number(sh(`du -sm ${rootfs} | cut -f1`).trim());
    console.log(`rootfs: ${files} regular files, ${mib} MiB; ${RUNS} runs each, medians; ${os.cpus().length} cores; ostree ${sh('ostree --version | sed -n "s/.*Version: //p"').trim()}`);
    const rows: Row[] = [];
    const commitArgs = ['-b', 'bench', '--timestamp=2024-01-01T00:00:00Z', '-s', 'bench', `--tree=dir=${rootfs}`];
    const checksums = new Map<string, string>();
    for (const mode of ['archive', 'bare'] as const) {
      let repo = '';
      rows.push(
        compare(`commit (${mode})`, (tool, run) => {
          repo = path.join(work, `${tool}-${mode}-${run}`);
          sh(`${tool === 'cairn' ? CAIRN : 'ostree'} init --repo=${repo} --mode=${mode}`);
          return tool === 'cairn' ? [CAIRN, 'commit', `--repo=${repo}`, ...commitArgs] : ['ostree', 'commit', `--repo=${repo}`, ...commitArgs];
        }, () => {
          checksums.set(repo, sh(`cat ${repo}/refs/heads/bench`).trim());
        }),
      );
    }
    const distinct = new Set(checksums.values());
    console.log(distinct.size === 1 ? `same commit checksum from both tools in both modes: ${[...distinct][0]}` : `CHECKSUMS DIFFER: ${[...checksums].join(', ')}`);
    // keep one repo per mode for the read benchmarks
    const bare = path.join(work, 'ostree-bare-0');
    const archive = path.join(work, 'ostree-archive-0');
    // checkouts are kept until the end (see NO_DELETES)
    rows.push(
      compare('checkout (bare, hardlinks)', (tool, run) => {
        const dest = path.join(work, `co-bare-${tool}-${run}`);
        return tool === 'cairn' ? [CAIRN, 'checkout', `--repo=${bare}`, 'bench', dest] : ['ostree', 'checkout', `--repo=${bare}`, 'bench', dest];
      }),
    );
    rows.push(
      compare('checkout (archive)', (tool, run) => {
        const dest = path.join(work, `co-archive-${tool}-${run}`);
        return tool === 'cairn' ? [CAIRN, 'checkout', `--repo=${archive}`, 'bench', dest] : ['ostree', 'checkout', `--repo=${archive}`, 'bench', dest];
      }),
    );
    rows.push(compare('fsck (archive)', (tool) => (tool === 'cairn' ? [CAIRN, 'fsck', '-q', `--repo=${archive}`] : ['ostree', 'fsck', `--repo=${archive}`])));
    rows.push(compare('fsck (bare)', (tool) => (tool === 'cairn' ? [CAIRN, 'fsck', '-q', `--repo=${bare}`] : ['ostree', 'fsck', `--repo=${bare}`])));
    console.log('\n| operation | ostree (s) | cairn (s) | cairn/ostree | cairn peak RSS | ostree peak RSS |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.ostree.toFixed(2)} | ${r.cairn.toFixed(2)} | **${(r.cairn / r.ostree).toFixed(2)}** | ${r.cairnRss.toFixed(0)} MB | ${r.ostreeRss.toFixed(0)} MB |`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main();
