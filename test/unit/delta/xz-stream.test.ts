// An xz decode fed while its input still arrives (delta/xz.ts unxzStream, used for a delta part
// that is still downloading): xz runs from the process helper and reads a FIFO written from
// libuv's threads. The same guarantees as a decode of a whole input: round trip, a bomb stopped
// at its cap, corrupt input refused; and an abandoned decode (before its first byte, or half
// way) or a helper that dies under it settles with one error and leaves no file behind.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { type UnxzStream, unxzStream, xzCompress } from '../../../src/delta/xz.js';
import { processHelperPid, unxzFromFifoViaHelper } from '../../../src/repo/fsutil.js';
import { DeltaCompressionError } from '../../../src/errors.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The temporary directory before the first test points $TMPDIR at one of its own. */
const TMP = os.tmpdir();

/** The ids of the processes whose command line names `p`. */
function processesOn(p: string): number[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(p)).map((l) => Number(l.trim().split(' ')[0]));
}

/** Writes `z` in uneven chunks, yielding now and then as a download would. */
async function feed(s: UnxzStream, z: Buffer, upTo = z.length): Promise<void> {
  let at = 0;
  for (let n = 1; at < upTo; n++) {
    const len = Math.min(upTo - at, 1000 + ((n * 7919) % 70_000));
    s.write(z.subarray(at, at + len));
    at += len;
    if (n % 3 === 0) await tick(1);
  }
}

it('decodes what is written as it comes, with the cap and errors of a whole decode', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-unxz-stream-'));
  const scratch = path.join(dir, 'tmp'); // xz's files go to $TMPDIR when it is set
  fs.mkdirSync(scratch);
  process.env.TMPDIR = scratch;
  const left = (): string[] => fs.readdirSync(scratch);

  // what killed runs left: the first run here removes the directory of a process that is gone,
  // not that of a live one, nor one whose name says no process
  const dead = spawnSync('true').pid!;
  const stale = ['cairn-xz-' + dead + '-aaaaaa', 'cairn-xz-' + process.ppid + '-bbbbbb', 'cairn-xz-cccccc'];
  for (const d of stale) {
    fs.mkdirSync(path.join(scratch, d));
    fs.writeFileSync(path.join(scratch, d, 'out'), 'x');
  }

  const data = Buffer.concat([randomBytes(400_000), Buffer.alloc(900_000, 7), randomBytes(200_000)]);
  const z = await xzCompress(data);
  const s = unxzStream(data.length, data.length, z.length);
  assert.ok(s, 'the helper takes it');
  assert.deepEqual(stale.filter((d) => fs.existsSync(path.join(scratch, d))), stale.slice(1), 'the dead process\'s directory is swept');
  for (const d of stale.slice(1)) fs.rmSync(path.join(scratch, d), { recursive: true });
  assert.ok(processHelperPid(), 'the helper was started for it');
  await feed(s, z);
  s.write(Buffer.from('more than announced: dropped'));
  assert.ok((await s.result).equals(data), 'round trip at exactly the cap');
  assert.deepEqual(left(), [], 'no temp files left');

  // the output starts before the input ends (the point of it): half the input gives some output
  const slow = unxzStream(data.length, data.length, z.length)!;
  await feed(slow, z, z.length >> 1);
  const out = (): number => {
    const d = left().find((n) => n.startsWith('cairn-xz-'));
    return d ? fs.statSync(path.join(scratch, d, 'out'), { throwIfNoEntry: false })?.size ?? 0 : 0;
  };
  for (let i = 0; i < 500 && out() === 0; i++) await tick(10);
  assert.ok(out() > 0, 'decoded output while half the input is still to come');
  await feed(slow, z.subarray(z.length >> 1));
  assert.ok((await slow.result).equals(data));

  const bomb = await xzCompress(Buffer.alloc(64 << 20));
  const b = unxzStream(1 << 20, 1 << 20, bomb.length)!;
  await feed(b, bomb);
  await assert.rejects(b.result, (e: unknown) => e instanceof DeltaCompressionError && /exceeds 1048576 bytes/.test(e.message));

  const flipped = Buffer.from(z);
  for (let i = 100; i < 200; i++) flipped[i]! ^= 0xff;
  const f = unxzStream(data.length, data.length, flipped.length)!;
  await feed(f, flipped);
  await assert.rejects(f.result, DeltaCompressionError);

  // given up half way, and before the first byte: each settles, nothing is left
  const half = unxzStream(data.length, data.length, z.length)!;
  await feed(half, z, z.length >> 1);
  half.abort();
  half.write(z.subarray(z.length >> 1)); // after abort: dropped
  await assert.rejects(half.result, (e: unknown) => e instanceof DeltaCompressionError && /abandoned/.test(e.message));
  const never = unxzStream(data.length, data.length, z.length)!;
  never.abort();
  await assert.rejects(never.result, DeltaCompressionError);
  const soon = unxzStream(data.length, data.length, z.length)!;
  await tick(20); // the FIFO is open by now
  soon.abort();
  await assert.rejects(soon.result, DeltaCompressionError);
  assert.deepEqual(left(), [], 'no temp files left after the failures');

  // several at once: each gets its own output
  const many = Array.from({ length: 4 }, () => unxzStream(data.length, data.length, z.length)!);
  await Promise.all(many.map((m) => feed(m, z)));
  for (const m of many) assert.ok((await m.result).equals(data));

  // a writer that never comes (its process killed before it opened the FIFO): xz's side gives up
  // after the time it was given, and nothing of it keeps running
  const lone = path.join(scratch, 'lone');
  fs.mkdirSync(lone);
  const waited = Date.now();
  const job = unxzFromFifoViaHelper('unlimited', path.join(lone, 'in'), 1000, path.join(lone, 'out'), path.join(lone, 'err'), 1)!;
  assert.equal(await job.ready, true);
  const status = await Promise.race([job.done, new Promise<string>((r) => setTimeout(() => r('still waiting'), 10_000).unref())]);
  assert.notEqual(status, 'still waiting', 'xz\'s side gave up');
  assert.notEqual(status, 0, 'xz failed: no input');
  assert.ok(Date.now() - waited < 10_000, `gave up in ${Date.now() - waited} ms`);
  assert.deepEqual(processesOn(path.join(lone, 'in')), [], 'no process left waiting on the FIFO');
  fs.rmSync(lone, { recursive: true });

  // the helper dies under a decode: it fails with one line, and the next finds no helper (its
  // caller decodes the whole input instead)
  const orphan = unxzStream(data.length, data.length, z.length)!;
  await feed(orphan, z, 1000);
  process.kill(processHelperPid()!, 'SIGKILL');
  await assert.rejects(orphan.result, (e: unknown) => e instanceof DeltaCompressionError && !/\n/.test(e.message));
  assert.equal(unxzStream(data.length, data.length, z.length), null);
  for (let i = 0; i < 200 && left().length > 0; i++) await tick(10);
  assert.deepEqual(left(), [], 'no temp files left');
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a process killed between making a FIFO and opening it leaves no decode waiting behind it', async () => {
  // (the kill tests did: their `head` waited for a writer until its hour was up)
  const dir = fs.mkdtempSync(path.join(TMP, 'cairn-unxz-owner-'));
  const fifo = path.join(dir, 'in');
  const fsutil = new URL('../../../src/repo/fsutil.ts', import.meta.url).href;
  const code = `import { startProcessHelper, unxzFromFifoViaHelper } from ${JSON.stringify(fsutil)};
    startProcessHelper();
    const job = unxzFromFifoViaHelper('unlimited', ${JSON.stringify(fifo)}, 1000, ${JSON.stringify(path.join(dir, 'out'))}, ${JSON.stringify(path.join(dir, 'err'))}, '3600');
    process.stdout.write(String(await job.ready) + '\\n');
    setInterval(() => {}, 1000);`;
  const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const waiting = (): number[] => processesOn(fifo);
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      owner.stdout.setEncoding('utf8').once('data', (d: string) => resolve(d.trim()));
      owner.once('exit', (c) => reject(new Error(`the owner exited ${c}`)));
    });
    assert.equal(ready, 'true', 'the helper made the FIFO');
    for (let i = 0; i < 100 && waiting().length === 0; i++) await tick(20);
    assert.ok(waiting().length > 0, "xz's side waits for a writer");
    owner.kill('SIGKILL');
    for (let i = 0; i < 250 && waiting().length > 0; i++) await tick(20);
    assert.deepEqual(waiting(), [], 'nothing left waiting on the FIFO once its owner is gone');
  } finally {
    owner.kill('SIGKILL');
    for (const pid of waiting()) process.kill(pid, 'SIGKILL'); // what this test started, if it failed
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
