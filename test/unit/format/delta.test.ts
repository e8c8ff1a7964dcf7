// Static delta encodings (spec §5): names, varints, superblock, parts, ops, index, bundle.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../../../src/errors.js';
import {
  type Checksum, type GValue, EMPTY_DIRTREE_CHECKSUM, bswap32, bswap64, parse, parseChecksum, serialize, serializeCommit, sha256,
} from '../../../src/format/index.js';
import {
  OpWriter, checksumFromMb64, checksumToMb64, decodeOps, deltaIndexRelPath, deltaRelDir, isSignedSuperblock, parseBundleHeader,
  parseBundlePrefix, parseDeltaIndex, parseDeltaName, parseDeltaRelDir, parsePartPayload, parseSignedSuperblock, parseSuperblock,
  readVarint, serializeBundleHeader, serializeDeltaIndex, serializePartPayload, serializeSignedSuperblock, serializeSuperblock,
  superblockCommitmeta, writeVarint, SUPERBLOCK_TYPE, type Superblock,
} from '../../../src/format/delta.js';

const A = parseChecksum('928415' + '0'.repeat(54) + 'bc18');
const DIRMETA = parseChecksum('446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488');
const commitBytes = serializeCommit({ metadata: [], parent: null, subject: '', body: '', timestamp: 1704067200n, rootTree: EMPTY_DIRTREE_CHECKSUM, rootMeta: DIRMETA });
const TO = sha256(commitBytes);

function sample(): Superblock {
  return {
    metadata: [[`${deltaRelDir(A, TO)}/commitmeta`, { type: 'a{sv}', value: [['k', { type: 's', value: 'v' }]] }]],
    timestamp: 1795419124n,
    from: A,
    to: TO,
    commitBytes,
    parts: [{ version: 0, checksum: A, size: 300, usize: 1000, objects: [{ type: 'dirtree', checksum: EMPTY_DIRTREE_CHECKSUM }, { type: 'file', checksum: A }] }],
    fallbacks: [{ type: 'file', checksum: DIRMETA, size: 5_000_000, usize: 6_000_000 }],
  };
}

describe('delta names (§5.1)', () => {
  it('modified base64 matches the spec example and round-trips', () => {
    const rel = 'deltas/ko/QVSXEz_69Bs1uD3HV0aZ9dUTeVNcgyxvzvLGFsvBg-Ps3uop4pS0RcP41qLCRrNOqwU1HXlVCGxrlKftCZx84';
    const { from, to } = parseDeltaRelDir(rel);
    assert.ok(from!.startsWith('928415') && from!.endsWith('bc18'));
    assert.ok(to.startsWith('3ecdee') && to.endsWith('c7ce'));
    assert.equal(deltaRelDir(from, to), rel);
    assert.equal(checksumFromMb64(checksumToMb64(A)), A);
    assert.equal(checksumToMb64(A).length, 43);
    assert.ok(!checksumToMb64(A).includes('/'));
  });
  it('from-scratch paths, hex names and index paths', () => {
    const rel = deltaRelDir(null, TO);
    assert.match(rel, /^deltas\/[A-Za-z0-9+_]{2}\/[A-Za-z0-9+_]{41}$/);
    assert.deepEqual(parseDeltaRelDir(rel), { from: null, to: TO });
    assert.deepEqual(parseDeltaName(`${A}-${TO}`), { from: A, to: TO });
    assert.deepEqual(parseDeltaName(TO), { from: null, to: TO });
    assert.throws(() => parseDeltaName('xyz'), FormatError);
    assert.match(deltaIndexRelPath(TO), /^delta-indexes\/..\/.{41}\.index$/);
    assert.throws(() => checksumFromMb64('short'), FormatError);
  });
});

describe('varints (§5.5)', () => {
  it('round-trips LEB128 values', () => {
    for (const n of [0, 1, 127, 128, 300, 16383, 16384, 2 ** 32, 2 ** 53 - 1]) {
      const out: number[] = [];
      writeVarint(out, n);
      assert.deepEqual(readVarint(Uint8Array.from(out), 0), [n, out.length]);
    }
    const out: number[] = [];
    writeVarint(out, 300);
    assert.deepEqual(out, [0xac, 0x02]);
  });
  it('rejects truncated, over-long and negative varints', () => {
    assert.throws(() => readVarint(Uint8Array.from([0x80]), 0), FormatError);
    assert.throws(() => readVarint(Uint8Array.from(Array(11).fill(0x81)), 0), FormatError);
    assert.throws(() => writeVarint([], -1), FormatError);
  });
});

describe('superblock (§5.2, §5.9)', () => {
  it('round-trips, with endianness l and the embedded commit', () => {
    const b = serializeSuperblock(sample());
    const sb = parseSuperblock(b);
    assert.equal(sb.from, A);
    assert.equal(sb.to, TO);
    assert.ok(sb.commitBytes.equals(commitBytes));
    assert.deepEqual(sb.parts, sample().parts);
    assert.deepEqual(sb.fallbacks, sample().fallbacks);
    assert.equal(sb.timestamp, 1795419124n);
    assert.deepEqual(sb.metadata.find(([k]) => k === 'ostree.endianness')?.[1], { type: 'y', value: 0x6c });
    assert.deepEqual(superblockCommitmeta(sb), [['k', { type: 's', value: 'v' }]]);
    assert.ok(serializeSuperblock(sb).equals(b));
  });
  it('reads big-endian sizes when ostree.endianness is B', () => {
    const v = parse(SUPERBLOCK_TYPE, serializeSuperblock(sample())) as GValue[];
    const swap = (x: bigint): bigint => bswap64(x);
    const parts = (v[6] as GValue[][]).map((p) => [bswap32(p[0] as number), p[1], swap(p[2] as bigint), swap(p[3] as bigint), p[4]]);
    const fbs = (v[7] as GValue[][]).map((f) => [f[0], f[1], swap(f[2] as bigint), swap(f[3] as bigint)]);
    const meta = (v[0] as [string, unknown][]).map(([k, val]) => (k === 'ostree.endianness' ? [k, { type: 'y', value: 0x42 }] : [k, val]));
    const be = serialize(SUPERBLOCK_TYPE, [meta, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!, parts, fbs] as GValue[]);
    const sb = parseSuperblock(be);
    assert.deepEqual(sb.parts, sample().parts);
    assert.deepEqual(sb.fallbacks, sample().fallbacks);
  });
  it('rejects malformed superblocks', () => {
    const b = serializeSuperblock(sample());
    assert.throws(() => parseSuperblock(b.subarray(0, b.length - 3)), FormatError);
    assert.throws(() => parseSuperblock(Buffer.concat([b, Buffer.from([0])])), FormatError);
    assert.throws(() => parseSuperblock(Buffer.alloc(0)), FormatError);
    const bad = serializeSuperblock({ ...sample(), parts: [{ ...sample().parts[0]!, objects: [{ type: 'file', checksum: A }] }] });
    const i = bad.indexOf(Buffer.from(A, 'hex'), bad.length - 200);
    const corrupt = Buffer.from(bad);
    corrupt[i - 1] = 9; // object type 9 does not exist
    assert.throws(() => parseSuperblock(corrupt), FormatError);
  });
  it('wraps and unwraps a signed superblock with the OSTSGNDT magic', () => {
    const inner = serializeSuperblock(sample());
    const signed = serializeSignedSuperblock(inner, [['ostree.sign.ed25519', { type: 'aay', value: [Buffer.alloc(64, 1)] }]]);
    assert.equal(signed.subarray(0, 8).toString('latin1'), 'OSTSGNDT');
    assert.ok(isSignedSuperblock(signed));
    assert.ok(parseSignedSuperblock(signed).inner.equals(inner));
    assert.equal(parseSuperblock(signed).to, TO);
  });
});

describe('part payload and ops (§5.4, §5.5)', () => {
  it('round-trips modes (BE), xattrs, blob and ops', () => {
    const ops = new OpWriter().spliceMetadata(10, 0).spliceContent(0, 0, 5, 10).setReadSource(15).open(0, 0, 100).bspatch(47, 20).close().unsetReadSource().write(3, 4).finish();
    const p = { modes: [{ uid: 0, gid: 0, mode: 0o100644 }], xattrs: [[{ name: 'user.a', value: Buffer.from('1') }]], blob: Buffer.from('abc'), ops };
    const b = serializePartPayload(p);
    assert.ok(b.includes(Buffer.from('000081a4', 'hex')), 'mode stored big-endian');
    const q = parsePartPayload(b);
    assert.deepEqual(q.modes, p.modes);
    assert.equal(q.xattrs[0]![0]!.name, 'user.a');
    assert.ok(q.ops.equals(ops));
    const kinds = [true, false];
    const decoded = [...decodeOps(ops, () => kinds.shift() ?? false)];
    assert.deepEqual(decoded.map((o) => o.op), ['S', 'S', 'r', 'o', 'B', 'c', 'R', 'w']);
    assert.deepEqual(decoded[0], { op: 'S', args: [10, 0] });
    assert.deepEqual(decoded[1], { op: 'S', args: [0, 0, 5, 10] });
    assert.deepEqual(decoded[4], { op: 'B', offset: 47, length: 20 });
    assert.deepEqual(decoded[7], { op: 'w', length: 3, offset: 4 });
  });
  it('rejects unknown opcodes and truncated arguments', () => {
    assert.throws(() => [...decodeOps(Buffer.from([0x5a]), () => false)], FormatError);
    assert.throws(() => [...decodeOps(Buffer.from([0x77, 0x05]), () => false)], FormatError);
    assert.throws(() => parsePartPayload(Buffer.from([1, 2, 3])), FormatError);
  });
});

describe('delta index (§5.7) and offline bundle', () => {
  it('round-trips the index with sorted names', () => {
    const m = new Map<string, Checksum>([[`${A}-${TO}`, A], [TO, DIRMETA]]);
    const got = parseDeltaIndex(serializeDeltaIndex(m));
    assert.deepEqual([...got.keys()], [...m.keys()].sort());
    assert.equal(got.get(TO), DIRMETA);
  });
  it('round-trips the bundle header and refuses bad magic or versions', () => {
    const h = serializeBundleHeader({ metadata: [], entries: [{ name: 'superblock', offset: 0, size: 10, sha256: A }, { name: 'part/0', offset: 10, size: 5, sha256: TO }] });
    const len = parseBundlePrefix(h.subarray(0, 16));
    assert.equal(len, h.length - 16);
    assert.deepEqual(parseBundleHeader(h.subarray(16)).entries[1], { name: 'part/0', offset: 10, size: 5, sha256: TO });
    const bad = Buffer.from(h);
    bad[0] = 0x41;
    assert.throws(() => parseBundlePrefix(bad), FormatError);
    const v2 = Buffer.from(h);
    v2.writeUInt32LE(2, 8);
    assert.throws(() => parseBundlePrefix(v2), FormatError);
    const evil = serializeBundleHeader({ metadata: [], entries: [{ name: '../../etc/passwd', offset: 0, size: 1, sha256: A }] });
    assert.throws(() => parseBundleHeader(evil.subarray(16)), FormatError);
  });
});

describe('part payload framing', () => {
  it('parses payloads of every offset width exactly as the generic GVariant parser', async () => {
    const { parse } = await import('../../../src/format/gvariant.js');
    for (const size of [10, 300, 70_000]) {
      const p = { modes: [{ uid: 1, gid: 2, mode: 0o100755 }], xattrs: [[], [{ name: 'user.x', value: Buffer.from('y') }]], blob: Buffer.alloc(size, 3), ops: Buffer.from([0x53, 1, 2]) };
      const b = serializePartPayload(p);
      const q = parsePartPayload(b);
      const g = parse('(a(uuu)aa(ayay)ayay)', b) as unknown[];
      assert.ok(q.blob.equals(Buffer.from(g[2] as Uint8Array)));
      assert.ok(q.ops.equals(Buffer.from(g[3] as Uint8Array)));
      assert.deepEqual(q.modes, p.modes);
      assert.equal(q.xattrs[1]![0]!.name, 'user.x');
      const bad = Buffer.from(b);
      bad[bad.length - 1] = 0xff; // first member's end beyond the table
      assert.throws(() => parsePartPayload(bad), FormatError);
    }
  });
});
