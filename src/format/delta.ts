/**
 * Static delta encodings (spec §5): names and paths, superblock (plain and signed), part
 * headers, part payloads, opcodes with LEB128 varints, delta index, and cairn's one-file
 * offline update bundle. Pure: bytes in, values out; every parser validates.
 */
import { FormatError } from '../errors.js';
import {
  type Checksum, type ObjectType, checksumFromBytes, checksumToBytes, objectTypeFromNumber, OBJECT_TYPE_NUMBER,
} from './checksum.js';
import { type GValue, type Variant, bswap32, bswap64, parse, serialize } from './gvariant.js';
import type { Metadata, Xattr } from './objects.js';

// ---------------------------------------------------------------- names (§5.1)

/** Modified base64 of a checksum: standard base64, '/' -> '_', no '=' padding (43 chars). */
export function checksumToMb64(c: Checksum): string {
  return checksumToBytes(c).toString('base64').replace(/\//g, '_').replace(/=+$/, '');
}

export function checksumFromMb64(s: string): Checksum {
  if (!/^[A-Za-z0-9+_]{43}$/.test(s)) throw new FormatError(`invalid delta name component "${s}"`);
  return checksumFromBytes(Buffer.from(s.replace(/_/g, '/') + '=', 'base64'));
}

/** deltas/<from[0:2]>/<from[2:]>-<to>, or deltas/<to[0:2]>/<to[2:]> for a from-scratch delta. */
export function deltaRelDir(from: Checksum | null, to: Checksum): string {
  const t = checksumToMb64(to);
  if (from === null) return `deltas/${t.slice(0, 2)}/${t.slice(2)}`;
  const f = checksumToMb64(from);
  return `deltas/${f.slice(0, 2)}/${f.slice(2)}-${t}`;
}

/** Hex name used in summaries and indexes: FROM-TO, or TO for from-scratch. */
export function deltaName(from: Checksum | null, to: Checksum): string {
  return from === null ? to : `${from}-${to}`;
}

export function parseDeltaName(name: string): { from: Checksum | null; to: Checksum } {
  const m = /^(?:([0-9a-f]{64})-)?([0-9a-f]{64})$/.exec(name);
  if (!m) throw new FormatError(`invalid delta name "${name}"`);
  return { from: (m[1] as Checksum | undefined) ?? null, to: m[2] as Checksum };
}

/** Parses a relative delta directory (deltas/XX/REST[-TO]) back into from/to. */
export function parseDeltaRelDir(rel: string): { from: Checksum | null; to: Checksum } {
  const m = /^deltas\/([A-Za-z0-9+_]{2})\/([A-Za-z0-9+_]{41})(?:-([A-Za-z0-9+_]{43}))?$/.exec(rel);
  if (!m) throw new FormatError(`invalid delta path "${rel}"`);
  if (m[3] === undefined) return { from: null, to: checksumFromMb64(m[1]! + m[2]!) };
  return { from: checksumFromMb64(m[1]! + m[2]!), to: checksumFromMb64(m[3]) };
}

/** delta-indexes/<to[0:2]>/<to[2:]>.index */
export function deltaIndexRelPath(to: Checksum): string {
  const t = checksumToMb64(to);
  return `delta-indexes/${t.slice(0, 2)}/${t.slice(2)}.index`;
}

// ---------------------------------------------------------------- superblock (§5.2, §5.3)

export interface DeltaObjectRef {
  readonly type: ObjectType;
  readonly checksum: Checksum;
}

export interface DeltaPartHeader {
  readonly version: number;
  readonly checksum: Checksum;
  /** Size of the part file in bytes. */
  readonly size: number;
  /** Total uncompressed size of the objects the part creates. */
  readonly usize: number;
  readonly objects: readonly DeltaObjectRef[];
}

export interface DeltaFallback {
  readonly type: ObjectType;
  readonly checksum: Checksum;
  /** Size of the archived (.filez) object. */
  readonly size: number;
  /** Uncompressed size. */
  readonly usize: number;
}

export interface Superblock {
  readonly metadata: Metadata;
  readonly timestamp: bigint;
  readonly from: Checksum | null;
  readonly to: Checksum;
  /** The to-commit object, embedded byte for byte. */
  readonly commitBytes: Buffer;
  readonly parts: readonly DeltaPartHeader[];
  readonly fallbacks: readonly DeltaFallback[];
}

export const SUPERBLOCK_TYPE = '(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))';
const COMMIT_TYPE = '(a{sv}aya(say)sstayay)';
export const SIGNED_SUPERBLOCK_TYPE = '(taya{sv})';
/** "OSTSGNDT" read as a big-endian u64 (spec §5.9). */
export const SIGNED_DELTA_MAGIC = 0x4f535453474e4454n;
export const ED25519_KEY = 'ostree.sign.ed25519';

const OBJREF_SIZE = 33;

function encodeObjects(objs: readonly DeltaObjectRef[]): Buffer {
  const b = Buffer.alloc(objs.length * OBJREF_SIZE);
  objs.forEach((o, i) => {
    b[i * OBJREF_SIZE] = OBJECT_TYPE_NUMBER[o.type];
    checksumToBytes(o.checksum).copy(b, i * OBJREF_SIZE + 1);
  });
  return b;
}

function decodeObjects(b: Uint8Array): DeltaObjectRef[] {
  if (b.length % OBJREF_SIZE !== 0) throw new FormatError('delta part object list is not a multiple of 33 bytes');
  // one hex conversion for the whole list, cut into checksums: a part lists up to thousands of
  // objects, and a conversion each was most of a superblock's parse (5.6 ms for 1,333, cold)
  const hex = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  const out: DeltaObjectRef[] = [];
  for (let p = 0; p < b.length; p += OBJREF_SIZE) {
    out.push({ type: objectTypeFromNumber(b[p]!), checksum: hex.slice(2 * p + 2, 2 * (p + OBJREF_SIZE)) as Checksum });
  }
  return out;
}

type Endian = 'l' | 'B';

function endianOf(m: Metadata): Endian | null {
  const v = m.find(([k]) => k === 'ostree.endianness')?.[1];
  if (!v) return null;
  if (v.type !== 'y' || (v.value !== 0x6c && v.value !== 0x42)) throw new FormatError('delta ostree.endianness is not \'l\' or \'B\'');
  return v.value === 0x6c ? 'l' : 'B';
}

const u32 = (v: number, e: Endian): number => (e === 'l' ? v : bswap32(v));
const u64 = (v: bigint, e: Endian): bigint => (e === 'l' ? v : bswap64(v));

function safe(n: bigint, what: string): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`delta ${what} out of range`);
  return Number(n);
}

/** Serialises an unsigned superblock. Sizes are written little-endian with ostree.endianness='l'. */
export function serializeSuperblock(sb: Superblock): Buffer {
  const meta = sb.metadata.filter(([k]) => k !== 'ostree.endianness');
  const metadata = [...meta, ['ostree.endianness', { type: 'y', value: 0x6c }] as const];
  return serialize(SUPERBLOCK_TYPE, [
    metadata.map(([k, v]) => [k, v]),
    bswap64(sb.timestamp),
    sb.from ? checksumToBytes(sb.from) : new Uint8Array(0),
    checksumToBytes(sb.to),
    parse(COMMIT_TYPE, sb.commitBytes),
    new Uint8Array(0),
    sb.parts.map((p) => [p.version, checksumToBytes(p.checksum), BigInt(p.size), BigInt(p.usize), encodeObjects(p.objects)]),
    sb.fallbacks.map((f) => [OBJECT_TYPE_NUMBER[f.type], checksumToBytes(f.checksum), BigInt(f.size), BigInt(f.usize)]),
  ]);
}

export interface SignedSuperblock {
  /** The inner, unsigned superblock bytes (what the signatures cover). */
  readonly inner: Buffer;
  readonly signatures: Metadata;
}

export function isSignedSuperblock(b: Uint8Array): boolean {
  return b.length >= 8 && Buffer.from(b.buffer, b.byteOffset, 8).toString('latin1') === 'OSTSGNDT';
}

export function serializeSignedSuperblock(inner: Uint8Array, signatures: Metadata): Buffer {
  return serialize(SIGNED_SUPERBLOCK_TYPE, [bswap64(SIGNED_DELTA_MAGIC), inner, signatures.map(([k, v]) => [k, v])]);
}

export function parseSignedSuperblock(b: Uint8Array): SignedSuperblock {
  const v = parse(SIGNED_SUPERBLOCK_TYPE, b) as readonly GValue[];
  if (bswap64(v[0] as bigint) !== SIGNED_DELTA_MAGIC) throw new FormatError('signed superblock has a bad magic number');
  return { inner: Buffer.from(v[1] as Uint8Array), signatures: v[2] as Metadata };
}

/** Parses a superblock file; a signed wrapper (§5.9) is unwrapped without verifying it. */
export function parseSuperblock(bytes: Uint8Array): Superblock {
  const b = isSignedSuperblock(bytes) ? parseSignedSuperblock(bytes).inner : Buffer.from(bytes);
  const v = parse(SUPERBLOCK_TYPE, b) as readonly GValue[];
  const metadata = v[0] as Metadata;
  const from = v[2] as Uint8Array;
  const commitValue = v[4] as GValue;
  if ((v[5] as Uint8Array).length !== 0) throw new FormatError('recursive static deltas are not supported');
  let e = endianOf(metadata);
  const rawParts = v[6] as readonly (readonly GValue[])[];
  if (e === null) {
    // ostree's guess (§5.2): sizes that look absurd in host order mean the other order
    e = 'l';
    let total = 0n;
    let count = 0;
    for (const p of rawParts) {
      const size = p[2] as bigint;
      const usize = p[3] as bigint;
      if (size * 10n > usize * 12n && usize > 0n) e = 'B';
      total += usize;
      count += (p[4] as Uint8Array).length / OBJREF_SIZE;
    }
    if (count > 0 && total / BigInt(count) > 4n << 30n) e = 'B';
  }
  const parts: DeltaPartHeader[] = rawParts.map((p) => {
    const version = u32(p[0] as number, e!);
    if (version !== 0) throw new FormatError(`delta part version ${version} is not supported`);
    return {
      version,
      checksum: checksumFromBytes(p[1] as Uint8Array),
      size: safe(u64(p[2] as bigint, e!), 'part size'),
      usize: safe(u64(p[3] as bigint, e!), 'part size'),
      objects: decodeObjects(p[4] as Uint8Array),
    };
  });
  const fallbacks: DeltaFallback[] = (v[7] as readonly (readonly GValue[])[]).map((f) => ({
    type: objectTypeFromNumber(f[0] as number),
    checksum: checksumFromBytes(f[1] as Uint8Array),
    size: safe(u64(f[2] as bigint, e!), 'fallback size'),
    usize: safe(u64(f[3] as bigint, e!), 'fallback size'),
  }));
  return {
    metadata,
    timestamp: bswap64(v[1] as bigint),
    from: from.length === 0 ? null : checksumFromBytes(from),
    to: checksumFromBytes(v[3] as Uint8Array),
    commitBytes: serialize(COMMIT_TYPE, commitValue),
    parts,
    fallbacks,
  };
}

/** The to-commit's detached metadata carried in the superblock, if any. */
export function superblockCommitmeta(sb: Superblock): Metadata | null {
  const key = `${deltaRelDir(sb.from, sb.to)}/commitmeta`;
  const v = sb.metadata.find(([k]) => k === key)?.[1];
  if (!v) return null;
  if (v.type !== 'a{sv}') throw new FormatError('delta commitmeta has the wrong type');
  return v.value as Metadata;
}

/** An inline part (generated with --inline): the part file bytes stored in the superblock. */
export function superblockInlinePart(sb: Superblock, index: number): Buffer | null {
  const key = `${deltaRelDir(sb.from, sb.to)}/${index}`;
  const v = sb.metadata.find(([k]) => k === key)?.[1];
  if (!v) return null;
  if (v.type !== '(yay)') throw new FormatError('delta inline part has the wrong type');
  const [comp, data] = v.value as readonly [number, Uint8Array];
  return Buffer.concat([Buffer.from([comp]), data]);
}

export function inlinePartEntry(from: Checksum | null, to: Checksum, index: number, partFile: Buffer): [string, Variant] {
  return [`${deltaRelDir(from, to)}/${index}`, { type: '(yay)', value: [partFile[0]!, partFile.subarray(1)] }];
}

// ---------------------------------------------------------------- part payload (§5.4)

export const PART_PAYLOAD_TYPE = '(a(uuu)aa(ayay)ayay)';
export const COMPRESSION_NONE = 0;
export const COMPRESSION_XZ = 0x78;

export interface DeltaMode {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

export interface PartPayload {
  readonly modes: readonly DeltaMode[];
  readonly xattrs: readonly (readonly Xattr[])[];
  readonly blob: Buffer;
  readonly ops: Buffer;
}

export function serializePartPayload(p: PartPayload): Buffer {
  return serialize(PART_PAYLOAD_TYPE, [
    p.modes.map((m) => [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode)]),
    p.xattrs.map((xs) => xs.map((x) => [Buffer.from(x.name + '\0', 'utf8'), x.value])),
    p.blob,
    p.ops,
  ]);
}

/**
 * Parses a part payload without copying its (large) blob and ops: the tuple's framing offsets
 * are read directly, the small mode and xattr tables go through the normal-form parser.
 * (The part file's checksum was verified before it is decompressed.)
 */
export function parsePartPayload(b: Uint8Array): PartPayload {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const len = buf.length;
  const w = len <= 0xff ? 1 : len <= 0xffff ? 2 : len <= 0xffffffff ? 4 : 8;
  if (len < 3 * w) throw new FormatError('delta part payload is truncated');
  const off = (i: number): number => {
    const p = len - (i + 1) * w;
    const v = w === 8 ? Number(buf.readBigUInt64LE(p)) : buf.readUIntLE(p, w);
    return v;
  };
  const end0 = off(0);
  const end1 = off(1);
  const end2 = off(2);
  const tableStart = len - 3 * w;
  if (!(end0 <= end1 && end1 <= end2 && end2 <= tableStart)) throw new FormatError('delta part payload framing is out of range');
  const v0 = parse('a(uuu)', buf.subarray(0, end0)) as readonly (readonly number[])[];
  const v1 = parse('aa(ayay)', buf.subarray(end0, end1)) as readonly (readonly (readonly [Uint8Array, Uint8Array])[])[];
  const modes = v0.map(([uid, gid, mode]) => ({ uid: bswap32(uid!), gid: bswap32(gid!), mode: bswap32(mode!) }));
  const xattrs = v1.map((xs) =>
    xs.map(([n, value]) => {
      if (n.length < 2 || n[n.length - 1] !== 0) throw new FormatError('delta xattr name is not NUL-terminated');
      return { name: Buffer.from(n.subarray(0, n.length - 1)).toString('utf8'), value };
    }),
  );
  return { modes, xattrs, blob: buf.subarray(end1, end2), ops: buf.subarray(end2, tableStart) };
}

// ---------------------------------------------------------------- ops (§5.5)

export const OP = {
  OPEN_SPLICE_AND_CLOSE: 0x53, // S
  OPEN: 0x6f, // o
  WRITE: 0x77, // w
  SET_READ_SOURCE: 0x72, // r
  UNSET_READ_SOURCE: 0x52, // R
  CLOSE: 0x63, // c
  BSPATCH: 0x42, // B
} as const;

/** Appends an unsigned LEB128 varint. */
export function writeVarint(out: number[], n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new FormatError(`varint out of range: ${n}`);
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** Reads an unsigned LEB128 varint at `pos`; returns value and the position after it. */
export function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const byte = b[pos + i];
    if (byte === undefined) throw new FormatError('truncated varint in delta');
    v += (byte & 0x7f) * mul;
    if (!Number.isSafeInteger(v)) throw new FormatError('varint in delta is too large');
    if ((byte & 0x80) === 0) return [v, pos + i + 1];
    mul *= 0x80;
  }
  throw new FormatError('varint in delta is longer than 10 bytes');
}

export type DeltaOp =
  | { op: 'S'; args: readonly number[] }
  | { op: 'o'; modeIdx: number; xattrIdx: number; size: number }
  | { op: 'w'; length: number; offset: number }
  | { op: 'r'; offset: number }
  | { op: 'R' }
  | { op: 'c' }
  | { op: 'B'; offset: number; length: number };

/**
 * Decodes the op stream. `S` takes 2 varints for metadata objects and 4 for content, so the
 * caller says which object each `S` creates through `isMetadata(opIndexOfObject)`.
 */
export function* decodeOps(ops: Uint8Array, nextIsMetadata: () => boolean): Generator<DeltaOp> {
  let p = 0;
  const v = (): number => {
    const [n, np] = readVarint(ops, p);
    p = np;
    return n;
  };
  while (p < ops.length) {
    const code = ops[p++];
    switch (code) {
      case OP.OPEN_SPLICE_AND_CLOSE:
        if (nextIsMetadata()) yield { op: 'S', args: [v(), v()] };
        else yield { op: 'S', args: [v(), v(), v(), v()] };
        break;
      case OP.OPEN:
        yield { op: 'o', modeIdx: v(), xattrIdx: v(), size: v() };
        break;
      case OP.WRITE:
        yield { op: 'w', length: v(), offset: v() };
        break;
      case OP.SET_READ_SOURCE:
        yield { op: 'r', offset: v() };
        break;
      case OP.UNSET_READ_SOURCE:
        yield { op: 'R' };
        break;
      case OP.CLOSE:
        yield { op: 'c' };
        break;
      case OP.BSPATCH:
        yield { op: 'B', offset: v(), length: v() };
        break;
      default:
        throw new FormatError(`unknown delta opcode 0x${(code ?? 0).toString(16)}`);
    }
  }
}

/** Builds an op stream. */
export class OpWriter {
  private readonly bytes: number[] = [];

  private emit(code: number, ...args: number[]): this {
    this.bytes.push(code);
    for (const a of args) writeVarint(this.bytes, a);
    return this;
  }
  spliceMetadata(length: number, offset: number): this {
    return this.emit(OP.OPEN_SPLICE_AND_CLOSE, length, offset);
  }
  spliceContent(modeIdx: number, xattrIdx: number, size: number, offset: number): this {
    return this.emit(OP.OPEN_SPLICE_AND_CLOSE, modeIdx, xattrIdx, size, offset);
  }
  open(modeIdx: number, xattrIdx: number, size: number): this {
    return this.emit(OP.OPEN, modeIdx, xattrIdx, size);
  }
  write(length: number, offset: number): this {
    return this.emit(OP.WRITE, length, offset);
  }
  setReadSource(offset: number): this {
    return this.emit(OP.SET_READ_SOURCE, offset);
  }
  unsetReadSource(): this {
    return this.emit(OP.UNSET_READ_SOURCE);
  }
  close(): this {
    return this.emit(OP.CLOSE);
  }
  bspatch(offset: number, length: number): this {
    return this.emit(OP.BSPATCH, offset, length);
  }
  get length(): number {
    return this.bytes.length;
  }
  finish(): Buffer {
    return Buffer.from(this.bytes);
  }
}

// ---------------------------------------------------------------- delta index (§5.7)

/** a{sv} {ostree.static-deltas: a{sv} {hex name: ay sha256(superblock)}}, names sorted. */
export function serializeDeltaIndex(entries: ReadonlyMap<string, Checksum>): Buffer {
  const names = [...entries.keys()].sort();
  return serialize('a{sv}', [
    ['ostree.static-deltas', { type: 'a{sv}', value: names.map((n) => [n, { type: 'ay', value: checksumToBytes(entries.get(n)!) }]) }],
  ]);
}

export function parseDeltaIndex(b: Uint8Array): Map<string, Checksum> {
  const m = parse('a{sv}', b) as Metadata;
  const out = new Map<string, Checksum>();
  const v = m.find(([k]) => k === 'ostree.static-deltas')?.[1];
  if (!v) return out;
  if (v.type !== 'a{sv}') throw new FormatError('delta index has the wrong type');
  for (const [name, val] of v.value as Metadata) {
    parseDeltaName(name);
    if (val.type !== 'ay') throw new FormatError('delta index entry has the wrong type');
    out.set(name, checksumFromBytes(val.value as Uint8Array));
  }
  return out;
}

// ---------------------------------------------------------------- offline bundle (cairn)

/**
 * One file carrying a static delta and everything it references, for air-gapped hosts:
 *   "CAIRNUPD" ‖ u32 LE version (1) ‖ u32 LE header length ‖ header ‖ entry bytes…
 *   header = GVariant (a{sv} a(sttay)): metadata, entries (name, offset from the end of the
 *   header, size, sha256). Entry names: "superblock", "part/<n>", "fallback/<hex>.filez".
 */
export const BUNDLE_MAGIC = 'CAIRNUPD';
export const BUNDLE_VERSION = 1;
export const BUNDLE_HEADER_TYPE = '(a{sv}a(sttay))';
/** Caps the header we read from an untrusted bundle (a real one is a few kB). */
export const MAX_BUNDLE_HEADER = 16 * 1024 * 1024;

export interface BundleEntry {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly sha256: Checksum;
}

export interface BundleHeader {
  readonly metadata: Metadata;
  readonly entries: readonly BundleEntry[];
}

/** Serialises the fixed prefix plus header; entry offsets are relative to its end. */
export function serializeBundleHeader(h: BundleHeader): Buffer {
  const body = serialize(BUNDLE_HEADER_TYPE, [
    h.metadata.map(([k, v]) => [k, v]),
    h.entries.map((e) => [e.name, BigInt(e.offset), BigInt(e.size), checksumToBytes(e.sha256)]),
  ]);
  const pre = Buffer.alloc(16);
  pre.write(BUNDLE_MAGIC, 0, 'latin1');
  pre.writeUInt32LE(BUNDLE_VERSION, 8);
  pre.writeUInt32LE(body.length, 12);
  return Buffer.concat([pre, body]);
}

/** Reads the 16-byte prefix: returns the header length that follows. */
export function parseBundlePrefix(b: Uint8Array): number {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== BUNDLE_MAGIC) throw new FormatError('not a cairn update bundle (bad magic)');
  const version = buf.readUInt32LE(8);
  if (version !== BUNDLE_VERSION) throw new FormatError(`unsupported update bundle version ${version}`);
  const len = buf.readUInt32LE(12);
  if (len > MAX_BUNDLE_HEADER) throw new FormatError(`update bundle header is too large (${len} bytes)`);
  return len;
}

export function parseBundleHeader(body: Uint8Array): BundleHeader {
  const v = parse(BUNDLE_HEADER_TYPE, body) as readonly GValue[];
  const entries = (v[1] as readonly (readonly GValue[])[]).map(([name, off, size, sum]) => {
    const n = name as string;
    if (!/^(superblock|part\/\d+|fallback\/[0-9a-f]{64}\.filez)$/.test(n)) throw new FormatError(`update bundle has an unknown entry "${n}"`);
    return { name: n, offset: safe(off as bigint, 'bundle offset'), size: safe(size as bigint, 'bundle size'), sha256: checksumFromBytes(sum as Uint8Array) };
  });
  return { metadata: v[0] as Metadata, entries };
}
