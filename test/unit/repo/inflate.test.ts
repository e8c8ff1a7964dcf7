// Inflating archive content (repo/object-files.ts sizedInflate, inspectFilez): the content comes
// out whole and exact at every size, in one buffer; a header that lies about the size cannot
// make zlib allocate by the lie, and is still refused.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { inspectFilez, sizedInflate } from '../../../src/repo/object-files.js';
import { type FileHeader, fileChecksumPrefix, serializeArchiveHeader, sha256 } from '../../../src/format/index.js';
import { ObjectCorruptError } from '../../../src/errors.js';

const header: FileHeader = { uid: 0, gid: 0, mode: 0o100644, symlinkTarget: '', xattrs: [] };

function filez(content: Buffer, claimedSize = content.length): { csum: string; bytes: Buffer } {
  const bytes = Buffer.concat([serializeArchiveHeader(header, claimedSize), zlib.deflateRawSync(content)]);
  return { csum: sha256(fileChecksumPrefix(header), content), bytes };
}

it('inflates every size exactly, into one buffer', () => {
  for (const n of [0, 1, 63, 64, 65, 16_383, 16_384, 16_385, 300_000, 1 << 20, (1 << 20) + 7]) {
    const content = Buffer.concat([randomBytes(n >> 1), Buffer.alloc(n - (n >> 1), 5)]);
    const z = zlib.deflateRawSync(content);
    const out = zlib.inflateRawSync(z, sizedInflate(z.length, n));
    assert.ok(out.equals(content), `size ${n}`);
    // (under 4 KiB, Node carves buffers out of its shared 8 KiB pool)
    if (n + 1 > Buffer.poolSize >>> 1) assert.equal(out.buffer.byteLength, n + 1, `size ${n}: one buffer of the content's size`);
    const { csum, bytes } = filez(content);
    assert.ok(inspectFilez(csum as never, bytes).content.equals(content));
  }
});

it('a header claiming more than the body can hold: no allocation by the claim, and refused', () => {
  const o = sizedInflate(100, 1 << 30);
  assert.equal(o.maxOutputLength, 1 << 30);
  assert.equal(o.chunkSize, 100 * 1032 + 1024 + 1, 'bounded by what 100 compressed bytes can expand to');
  assert.equal(sizedInflate(1 << 20, 1 << 30).chunkSize, (16 << 20) + 1, 'never more than 16 MiB up front');
  const content = randomBytes(1000);
  for (const claimed of [999, 1001, 1 << 30]) {
    const { csum, bytes } = filez(content, claimed);
    assert.throws(() => inspectFilez(csum as never, bytes), (e: unknown) => e instanceof ObjectCorruptError, `claimed ${claimed}`);
  }
  // more output than claimed stops at the claim
  const z = zlib.deflateRawSync(Buffer.alloc(1 << 20));
  assert.throws(() => zlib.inflateRawSync(z, sizedInflate(z.length, 4096)), /Cannot create a Buffer larger than|RangeError|larger than/);
});
