// Fault injection: SIGKILL `cairn commit` at random moments. After every kill the repo must pass
// fsck (cairn's, and periodically the real ostree's) and the ref must be the old commit or the
// new one, never anything else; the next commit then completes with the expected checksum.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Repo, commitTree, fsck, resolveRev } from '../../src/repo/index.js';
import { CAIRN, ostree, tmpdir } from '../lib/helpers.js';
import { pseudoRandom } from '../lib/trees.js';

const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 100000);
let state = SEED;
function rand(): number {
  // xorshift32, seeded so a failure can be replayed with FAULT_SEED
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 0x100000000;
}

function runAndKill(args: string[], delayMs: number): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(CAIRN, args, { stdio: 'ignore' });
    let killed = false;
    const t = setTimeout(() => {
      killed = child.kill('SIGKILL');
    }, delayMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ killed: killed && code === null, code });
    });
  });
}

function mutateTree(tree: string, trial: number): void {
  fs.writeFileSync(path.join(tree, 'trial'), `trial ${trial}\n`);
  for (let i = 0; i < 10; i++) {
    const n = Math.floor(rand() * 200);
    fs.writeFileSync(path.join(tree, 'files', `f${n}`), pseudoRandom(1000 + Math.floor(rand() * 20000), `${trial}-${i}`));
  }
  // a large file (streaming path) changes every few trials
  if (trial % 5 === 0) fs.writeFileSync(path.join(tree, 'big.bin'), pseudoRandom(1200 * 1024, `big-${trial}`));
}

for (const [mode, trials] of [['archive', 35], ['bare-user', 15]] as const) {
  describe(`commit killed at random points, ${mode} mode (seed ${SEED})`, () => {
    it(`${trials} trials: fsck clean, ref old or new`, async () => {
      const dir = tmpdir();
      const tree = path.join(dir, 'tree');
      fs.mkdirSync(path.join(tree, 'files'), { recursive: true });
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(tree, 'files', `f${i}`), `initial ${i}\n`);
      const victim = path.join(dir, 'victim');
      const oracle = Repo.init(path.join(dir, 'oracle'), { mode });
      Repo.init(victim, { mode });
      const timestamp = (trial: number) => 1704067200n + BigInt(trial);
      const cliArgs = (trial: number) => ['commit', `--repo=${victim}`, '-b', 'main', `--timestamp=@${timestamp(trial)}`, '-s', `trial ${trial}`, `--tree=dir=${tree}`];
      // the oracle commits in-process, uncontended; the victim is the CLI, killed mid-way
      const commitOracle = async (trial: number) =>
        (await commitTree(oracle, { kind: 'dir', path: tree }, { branch: 'main', timestamp: timestamp(trial), subject: `trial ${trial}` })).commit;
      const head = () => resolveRev(Repo.open(victim), 'main');
      const runVictim = (trial: number) => runAndKill(cliArgs(trial), 1e9);

      // time one uncontended CLI commit to spread the kill points over its whole duration
      mutateTree(tree, 0);
      await commitOracle(0);
      const t0 = Date.now();
      assert.equal((await runVictim(0)).code, 0);
      const duration = Date.now() - t0;

      // kill points are spread over the commit's duration; the window adapts to how long the
      // (smaller, incremental) commits really take on this machine right now
      let window = duration;
      let killedMidway = 0;
      for (let trial = 1; trial <= trials; trial++) {
        const old = head();
        mutateTree(tree, trial);
        const expected = await commitOracle(trial);
        const r = await runAndKill(cliArgs(trial), Math.floor(rand() * window));
        if (r.killed) {
          killedMidway++;
          window *= 1.15;
        } else window = Math.max(50, window * 0.75);
        const check = await fsck(Repo.open(victim));
        assert.deepEqual(check.problems, [], `trial ${trial}: fsck after kill`);
        if (trial % 10 === 0) assert.equal(ostree(['fsck', `--repo=${victim}`]).status, 0, `trial ${trial}: ostree fsck`);
        const now = head();
        assert.ok(now === old || now === expected, `trial ${trial}: ref is ${now}, neither old ${old} nor new ${expected}`);
        if (now === old) {
          assert.equal((await runVictim(trial)).code, 0, `trial ${trial}: the retried commit`);
          assert.equal(head(), expected, `trial ${trial}: the retried commit's checksum`);
        }
      }
      // the kills must really have landed inside commits for the test to mean anything
      assert.ok(killedMidway >= trials / 3, `only ${killedMidway} of ${trials} kills hit a running commit`);
      assert.deepEqual(fs.readdirSync(path.join(victim, 'tmp')).filter((f) => f.startsWith('staging-')), [], 'stale staging swept');
    });
  });
}
