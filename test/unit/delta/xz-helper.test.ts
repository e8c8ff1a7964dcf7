// xz through the process helper (repo/fsutil.ts): once a durable transaction has started the
// helper, a delta part's decode is started by that long-lived shell, not by forking this process.
// The helper here finds a logging `xz` first on its PATH (this process's PATH is unchanged, so
// the log shows which way each decode went). The same guarantees as without it: round trip, a
// bomb stopped at its cap, corrupt input refused with xz's own line, no temp files left; and a
// helper that dies under a decode fails that decode with one line, the next going the direct way.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { xzCompress, xzDecompress } from '../../../src/delta/xz.js';
import { processHelperPid, startProcessHelper, syncFilesystemAsync } from '../../../src/repo/fsutil.js';
import { DeltaCompressionError } from '../../../src/errors.js';

it('decodes through the helper, with its cap and its errors', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-unxz-helper-'));
  // xz's temporary files go to $TMPDIR when it is set: here, a directory no other test uses
  const scratch = path.join(dir, 'tmp');
  fs.mkdirSync(scratch);
  process.env.TMPDIR = scratch;
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'log');
  fs.mkdirSync(bin);
  const which = (cmd: string): string => {
    const found = (process.env.PATH ?? '').split(':').map((d) => path.join(d, cmd)).find((p) => fs.existsSync(p));
    assert.ok(found, `${cmd} is installed`);
    return found;
  };
  for (const cmd of ['sh', 'sync']) fs.symlinkSync(which(cmd), path.join(bin, cmd));
  const slow = path.join(dir, 'slow'); // while it exists, the helper's xz waits before it runs
  fs.writeFileSync(path.join(bin, 'xz'), `#!/bin/sh\necho "$*" >> ${JSON.stringify(log)}\n[ -e ${JSON.stringify(slow)} ] && ${JSON.stringify(which('sleep'))} 3\nexec ${JSON.stringify(which('xz'))} "$@"\n`, { mode: 0o755 });
  const savedPath = process.env.PATH;
  process.env.PATH = bin;
  try {
    startProcessHelper();
  } finally {
    process.env.PATH = savedPath;
  }
  await syncFilesystemAsync(dir); // the helper runs

  const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 7)]);
  const z = await xzCompress(data); // compression is not the helper's
  assert.ok(!fs.existsSync(log), 'compressing does not go through the helper');
  assert.ok((await xzDecompress(z, data.length)).equals(data), 'round trip at exactly the cap');
  assert.equal(fs.readFileSync(log, 'utf8'), '-d -c -q\n', 'the helper ran the decode');
  const bomb = await xzCompress(Buffer.alloc(64 << 20));
  await assert.rejects(xzDecompress(bomb, 1 << 20), (e: unknown) => e instanceof DeltaCompressionError && /exceeds 1048576 bytes/.test(e.message));
  await assert.rejects(xzDecompress(Buffer.from(z.subarray(0, z.length >> 1)), data.length), (e: unknown) => e instanceof DeltaCompressionError && /: \(stdin\): Unexpected end of input$/.test(e.message));
  const flipped = Buffer.from(z);
  for (let i = 100; i < 200; i++) flipped[i]! ^= 0xff;
  await assert.rejects(xzDecompress(flipped, data.length), DeltaCompressionError);
  // several at once: each gets its own answer
  const many = await Promise.all(Array.from({ length: 6 }, () => xzDecompress(z, data.length)));
  for (const m of many) assert.ok(m.equals(data));
  assert.equal(fs.readFileSync(log, 'utf8').split('\n').length - 1, 10);
  assert.deepEqual(fs.readdirSync(scratch), [], 'no temp files left');
  // the helper dies while a decode waits on it: that decode fails with one line, and the next
  // one runs the direct way (this process's xz: the log gets no line for it)
  fs.writeFileSync(slow, '');
  const stuck = xzDecompress(z, data.length);
  while (fs.readFileSync(log, 'utf8').split('\n').length - 1 < 11) await new Promise((r) => setTimeout(r, 10));
  process.kill(processHelperPid()!, 'SIGKILL');
  await assert.rejects(stuck, (e: unknown) => e instanceof DeltaCompressionError && /^decompressing delta part: the process helper ended while running unxz$/.test(e.message));
  assert.ok((await xzDecompress(z, data.length)).equals(data), 'without the helper');
  assert.equal(fs.readFileSync(log, 'utf8').split('\n').length - 1, 11);
  fs.rmSync(dir, { recursive: true, force: true });
});
