// xz for delta parts (delta/xz.ts): round trip, a decompression bomb refused by its cap (the
// output file is capped, not only checked afterwards), corrupt input refused, no temp files left.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { xzCompress, xzDecompress } from '../../../src/delta/xz.js';
import { DeltaCompressionError } from '../../../src/errors.js';

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
