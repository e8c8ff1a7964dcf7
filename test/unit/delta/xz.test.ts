// xz for delta parts (delta/xz.ts): round trip (one block or several), a decompression bomb refused by its cap (the
// output file is capped, not only checked afterwards), corrupt input refused, no temp files left.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { xzCompress, xzDecompress } from '../../../src/delta/xz.js';
import { partBlockSize } from '../../../src/delta/generate.js';
import { DeltaCompressionError } from '../../../src/errors.js';
import { xzBlockCount } from '../../lib/helpers.js';

const leftovers = (): string[] => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('cairn-xz-'));

it('decompresses what it compressed, refuses output over the cap and corrupt streams', async () => {
  const before = leftovers();
  const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 7)]);
  const z = await xzCompress(data);
  assert.ok((await xzDecompress(z, data.length)).equals(data), 'round trip at exactly the cap');
  // 64 MiB of zeros: a few kB compressed; with a 1 MiB cap xz is stopped at the cap
  const bomb = await xzCompress(Buffer.alloc(64 << 20));
  assert.ok(bomb.length < 64 << 10);
  await assert.rejects(xzDecompress(bomb, 1 << 20), (e: unknown) => e instanceof DeltaCompressionError && /exceeds 1048576 bytes/.test(e.message));
  await assert.rejects(xzDecompress(data.length > 0 ? Buffer.from(z.subarray(0, z.length >> 1)) : z, data.length), DeltaCompressionError);
  const flipped = Buffer.from(z);
  for (let i = 100; i < 200; i++) flipped[i]! ^= 0xff;
  await assert.rejects(xzDecompress(flipped, data.length), DeltaCompressionError);
  assert.deepEqual(leftovers().filter((n) => !before.includes(n)), [], 'no temp files left');
});

it('a stream cut into blocks decodes to the same bytes; the block size policy', async () => {
  const data = Buffer.concat([randomBytes(200_000), Buffer.alloc(300_000, 3), randomBytes(100_000)]);
  const one = await xzCompress(data);
  const three = await xzCompress(data, { blockSize: 200_000 });
  assert.equal(xzBlockCount(one), 1);
  assert.equal(xzBlockCount(three), 3);
  assert.ok((await xzDecompress(three, data.length)).equals(data));
  await assert.rejects(xzDecompress(three, data.length - 1), /exceeds/);
  // parts under 8 MiB stay one block; then blocks of at least 4 MiB, at most four
  const MiB = 1 << 20;
  assert.equal(partBlockSize(8 * MiB - 1), undefined);
  assert.equal(partBlockSize(8 * MiB), 4 * MiB);
  assert.equal(partBlockSize(9_533_120), 4_766_560);
  assert.equal(partBlockSize(13 * MiB), Math.ceil((13 * MiB) / 3));
  assert.equal(partBlockSize(32 * MiB), 8 * MiB);
});
