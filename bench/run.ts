/**
 * `npm run bench`: runs every bench/*.bench.ts in turn (or those matching the arguments).
 * Each one compares cairn with the real ostree in the same run and prints ratios and peak memory.
 * Benchmark data: ../shared/bench/make-rootfs.sh builds v1.tar / v2.tar into $CAIRN_BENCH_DATA
 * (default /tmp/cairn-bench).
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
