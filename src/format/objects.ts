/**
 * OSTree object encodings (spec §2.3–2.10): file headers, dirmeta, dirtree, commit,
 * commitmeta, tombstone. Pure: values in, bytes out, and back with validation.
 */
import { FormatError } from '../errors.js';
import { type Checksum, checksumFromBytes, checksumToBytes, sha256 } from './checksum.js';
import { type GValue, type Variant, bswap64, decodeString, offsetSize, offsetWidthFor, parse, readOffset, serialize, writeOffset } from './gvariant.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;

export interface Xattr {
  /** Attribute name without the trailing NUL. */
  readonly name: string;
  readonly value: Uint8Array;
}

export interface FileMeta {
  readonly uid: number;
  readonly gid: number;
  /** Full st_mode, type bits included. */
  readonly mode: number;
  readonly xattrs: readonly Xattr[];
}

export interface FileHeader extends FileMeta {
  /** Symlink target, "" for regular files. */
  readonly symlinkTarget: string;
}

/**
 * Canonical xattr list as ostree builds it from disk: sorted by byte-wise name, empty values
 * dropped (spec §2.3).
 */
export function canonicalXattrs(xs: readonly Xattr[]): Xattr[] {
  return xs
    .filter((x) => x.value.length > 0)
    .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

function xattrsValue(xs: readonly Xattr[]): GValue {
  return xs.map((x) => [Buffer.from(x.name + '\0', 'utf8'), x.value]);
}

function xattrsFrom(v: GValue): Xattr[] {
  return (v as readonly (readonly [Uint8Array, Uint8Array])[]).map(([n, value]) => {
    if (n.length < 2 || n[n.length - 1] !== 0) throw new FormatError('xattr name is not a NUL-terminated bytestring');
    return { name: Buffer.from(n.subarray(0, n.length - 1)).toString('utf8'), value };
  });
}

export function validateFileMode(mode: number): void {
  const type = mode & S_IFMT;
  if ((type !== S_IFREG && type !== S_IFLNK) || (mode & ~(S_IFMT | 0o7777)) !== 0) {
    throw new FormatError(`invalid file mode 0${mode.toString(8)}`);
  }
}

export function validateDirMode(mode: number): void {
  if ((mode & S_IFMT) !== S_IFDIR || (mode & ~(S_IFMT | 0o7777)) !== 0) {
    throw new FormatError(`invalid directory mode 0${mode.toString(8)}`);
  }
}

// ---------------------------------------------------------------- file header (type 1)

// The headers below are written out for their types rather than run through the generic GVariant
// reader and writer (see the dirtree codec further down for why): every content object of a
// commit, pull, checkout and fsck goes through them. Their fixed fields are u32s (ostree's
// big-endian values inside a little-endian frame, i.e. big-endian bytes), then, for file
// headers, the symlink target (the tuple's one framing offset marks its end), then the xattrs
// (the last member, unframed). An empty xattr list, by far the common case, is zero bytes; a
// non-empty one goes through the generic codec. The unit tests compare all of it with the
// generic path.

const XATTRS = 'a(ayay)';
const NO_BYTES = Buffer.alloc(0);

function xattrsBytes(xs: readonly Xattr[]): Buffer {
  return xs.length === 0 ? NO_BYTES : serialize(XATTRS, xattrsValue(xs));
}

function xattrsFromBytes(b: Buffer): Xattr[] {
  return b.length === 0 ? [] : xattrsFrom(parse(XATTRS, b));
}

/** A GVariant string's bytes, NUL excluded. */
function stringBytes(v: string): Buffer {
  if (v.includes('\0')) throw new FormatError('GVariant strings cannot contain NUL');
  return Buffer.from(v, 'utf8');
}

/**
 * Writes a (<fixed> s a(ayay)) header into a new buffer; `fixed` fills the first `fixedSize`
 * bytes of the body. With `sizePrefix`, the body is preceded by its length (u32 BE)
 * and 4 zero bytes, as content objects store and hash it (spec §2.3).
 */
function writeHeader(fixedSize: number, fixed: (out: Buffer, at: number) => void, target: string, xs: readonly Xattr[], sizePrefix: boolean): Buffer {
  const t = stringBytes(target);
  const xa = xattrsBytes(xs);
  const body = fixedSize + t.length + 1 + xa.length;
  const w = offsetWidthFor(body, 1);
  const p = sizePrefix ? 8 : 0;
  const out = Buffer.allocUnsafe(p + body + w);
  if (sizePrefix) {
    out.writeUInt32BE(body + w, 0);
    out.writeUInt32BE(0, 4);
  }
  fixed(out, p);
  let at = p + fixedSize + t.copy(out, p + fixedSize);
  out[at++] = 0;
  at += xa.copy(out, at);
  writeOffset(out, at, w, fixedSize + t.length + 1);
  return out;
}

/** Reads a (<fixed> s a(ayay)) body: the symlink target and xattrs; fixed fields are the caller's. */
function readHeader(b: Buffer, fixedSize: number): { target: string; xattrs: Xattr[] } {
  const total = b.length;
  const w = offsetSize(total);
  if (total < fixedSize + w) throw new FormatError('GVariant tuple member out of range');
  const targetEnd = readOffset(b, total - w, w);
  if (targetEnd <= fixedSize || targetEnd > total - w) throw new FormatError('GVariant tuple member out of range');
  if (b[targetEnd - 1] !== 0) throw new FormatError('GVariant string is not NUL-terminated');
  return { target: decodeString(b, fixedSize, targetEnd - 1), xattrs: xattrsFromBytes(b.subarray(targetEnd, total - w)) };
}

function writeIds(out: Buffer, at: number, uid: number, gid: number, mode: number): void {
  out.writeUInt32BE(uid >>> 0, at);
  out.writeUInt32BE(gid >>> 0, at + 4);
  out.writeUInt32BE(mode >>> 0, at + 8);
}

/** File header (uuuusa(ayay)): uid, gid, mode, rdev (0), symlink target, xattrs. */
export function serializeFileHeader(h: FileHeader): Buffer {
  return writeHeader(16, (out, at) => fillFileFixed(out, at, h), h.symlinkTarget, h.xattrs, false);
}

function fillFileFixed(out: Buffer, at: number, h: FileHeader): void {
  writeIds(out, at, h.uid, h.gid, h.mode);
  out.writeUInt32BE(0, at + 12);
}

/** The bytes hashed before a file's content: u32 BE length, 4 zero bytes, header (spec §2.3). */
export function fileChecksumPrefix(h: FileHeader): Buffer {
  return writeHeader(16, (out, at) => fillFileFixed(out, at, h), h.symlinkTarget, h.xattrs, true);
}

/** Header of an archive-mode .filez object (tuuuusa(ayay)), prefix included (spec §2.4). */
export function serializeArchiveHeader(h: FileHeader, size: number): Buffer {
  return writeHeader(24, (out, at) => {
    out.writeBigUInt64BE(BigInt(size), at);
    fillFileFixed(out, at + 8, h);
  }, h.symlinkTarget, h.xattrs, true);
}

/** Largest header we accept in a content object; bounds hostile length prefixes. */
export const MAX_FILE_HEADER = 1 << 20;

/** Parses the prefix + archive header at the start of a .filez; returns header, size, header length. */
export function parseArchiveHeader(buf: Uint8Array): { header: FileHeader; size: number; headerLength: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8) throw new FormatError('content object is shorter than its header prefix');
  const len = b.readUInt32BE(0);
  if (len > MAX_FILE_HEADER) throw new FormatError(`content object header is too large (${len} bytes)`);
  if (b.length < 8 + len) throw new FormatError('content object header is truncated');
  const body = b.subarray(8, 8 + len);
  const { target, xattrs } = readHeader(body, 24);
  const size = body.readBigUInt64BE(0);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('content object size out of range');
  return { header: headerFrom(body, 8, target, xattrs), size: Number(size), headerLength: 8 + len };
}

/** Parses a canonical (bare) file header stream prefix; returns header and header length. */
export function parseFileHeader(buf: Uint8Array): { header: FileHeader; headerLength: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8) throw new FormatError('file header prefix is truncated');
  const len = b.readUInt32BE(0);
  if (len > MAX_FILE_HEADER || b.length < 8 + len) throw new FormatError('file header is truncated');
  const body = b.subarray(8, 8 + len);
  const { target, xattrs } = readHeader(body, 16);
  return { header: headerFrom(body, 0, target, xattrs), headerLength: 8 + len };
}

/** The header from its fixed fields at `at` (uid, gid, mode, rdev), target and xattrs. */
function headerFrom(b: Buffer, at: number, symlinkTarget: string, xattrs: Xattr[]): FileHeader {
  const mode = b.readUInt32BE(at + 8);
  validateFileMode(mode);
  if (b.readUInt32BE(at + 12) !== 0) throw new FormatError('content object has a non-zero rdev');
  if ((mode & S_IFMT) === S_IFLNK ? symlinkTarget === '' : symlinkTarget !== '') {
    throw new FormatError('symlink target does not match the file type');
  }
  return { uid: b.readUInt32BE(at), gid: b.readUInt32BE(at + 4), mode, symlinkTarget, xattrs };
}

// ---------------------------------------------------------------- dirmeta and bare-user meta

// Both are (uuua(ayay)): three u32s, then the xattrs (the last member, unframed).

function serializeMeta(m: FileMeta): Buffer {
  const xa = xattrsBytes(m.xattrs);
  const out = Buffer.allocUnsafe(12 + xa.length);
  writeIds(out, 0, m.uid, m.gid, m.mode);
  xa.copy(out, 12);
  return out;
}

function parseMeta(buf: Uint8Array): FileMeta {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 12) throw new FormatError('GVariant tuple member out of range');
  return { uid: b.readUInt32BE(0), gid: b.readUInt32BE(4), mode: b.readUInt32BE(8), xattrs: xattrsFromBytes(b.subarray(12)) };
}

/** Value of the user.ostreemeta xattr on bare-user content objects (spec §2.5). */
export function serializeBareUserMeta(m: FileMeta): Buffer {
  return serializeMeta(m);
}

export function parseBareUserMeta(b: Uint8Array): FileMeta {
  const m = parseMeta(b);
  validateFileMode(m.mode);
  return m;
}

// ---------------------------------------------------------------- dirmeta (type 3)

export function serializeDirmeta(m: FileMeta): Buffer {
  validateDirMode(m.mode);
  return serializeMeta(m);
}

export function parseDirmeta(b: Uint8Array): FileMeta {
  const m = parseMeta(b);
  validateDirMode(m.mode);
  return m;
}

// ---------------------------------------------------------------- dirtree (type 2)

export interface DirtreeFile {
  readonly name: string;
  readonly checksum: Checksum;
}
export interface DirtreeDir {
  readonly name: string;
  readonly tree: Checksum;
  readonly meta: Checksum;
}
export interface Dirtree {
  readonly files: readonly DirtreeFile[];
  readonly dirs: readonly DirtreeDir[];
}

/** Byte-wise name order (strcmp), as ostree sorts dirtree entries. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function validateFileName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FormatError(`invalid file name "${name}"`);
  }
}

// The dirtree codec is written out for its one type, (a(say)a(sayay)), rather than run through
// the generic GVariant reader and writer: every checkout, commit, pull and fsck goes through it,
// and the generic path (values boxed into arrays, a re-serialisation to check normal form) cost
// ~1 ms per dirtree. Every member has alignment 1, so there is no padding; the only framing is
// the offset tables. The parser checks each offset against the layout the writer produces, which
// is what normal form means for this type (the unit tests compare it with the generic path).

const CHECKSUM_BYTES = 32;

interface EncodedEntry {
  readonly name: Buffer;
  readonly sums: readonly Checksum[];
}

/** Byte-wise name order, as ostree sorts dirtree entries. */
function sortByName(entries: EncodedEntry[]): EncodedEntry[] {
  return entries.sort((a, b) => Buffer.compare(a.name, b.name));
}

/** Size of one serialised (s ay...) element with `sums` checksums, and its offset width. */
function elementLayout(nameLen: number, sums: number): [size: number, width: number] {
  const body = nameLen + 1 + sums * CHECKSUM_BYTES;
  const w = offsetWidthFor(body, sums);
  return [body + sums * w, w];
}

/** Size of a serialised array of these elements, and its offset width (0 when empty). */
function arrayLayout(entries: readonly EncodedEntry[], sums: number): [size: number, width: number] {
  let body = 0;
  for (const e of entries) body += elementLayout(e.name.length, sums)[0];
  const w = offsetWidthFor(body, entries.length);
  return [body + entries.length * w, w];
}

function writeArrayOf(out: Buffer, at: number, entries: readonly EncodedEntry[], sums: number, width: number): number {
  const start = at;
  const ends: number[] = [];
  for (const e of entries) {
    const w = elementLayout(e.name.length, sums)[1];
    const elemStart = at;
    at += e.name.copy(out, at);
    out[at++] = 0;
    const memberEnds = [at - elemStart];
    for (const c of e.sums) {
      if (c.length !== 2 * CHECKSUM_BYTES || out.write(c, at, CHECKSUM_BYTES, 'hex') !== CHECKSUM_BYTES) {
        throw new FormatError(`invalid checksum "${c}"`);
      }
      at += CHECKSUM_BYTES;
      memberEnds.push(at - elemStart);
    }
    // framing offsets of every member but the last, last member first
    for (let i = sums - 1; i >= 0; i--) {
      writeOffset(out, at, w, memberEnds[i]!);
      at += w;
    }
    ends.push(at - start);
  }
  for (const e of ends) {
    writeOffset(out, at, width, e);
    at += width;
  }
  return at;
}

export function serializeDirtree(t: Dirtree): Buffer {
  const files = sortByName(t.files.map((f) => ({ name: stringBytes(f.name), sums: [f.checksum] })));
  const dirs = sortByName(t.dirs.map((d) => ({ name: stringBytes(d.name), sums: [d.tree, d.meta] })));
  const [filesSize, filesWidth] = arrayLayout(files, 1);
  const [dirsSize, dirsWidth] = arrayLayout(dirs, 2);
  const outerWidth = offsetWidthFor(filesSize + dirsSize, 1);
  const out = Buffer.allocUnsafe(filesSize + dirsSize + outerWidth);
  let at = writeArrayOf(out, 0, files, 1, filesWidth);
  at = writeArrayOf(out, at, dirs, 2, dirsWidth);
  writeOffset(out, at, outerWidth, filesSize);
  return out;
}

/** readArrayOf's scratch: where each member of the element being read ends (doubles: an offset can be any width). */
const MEMBER_ENDS = new Float64Array(3);

/**
 * Reads one array of (s ay...) elements in b[start, end). Returns, flat, for each element: its
 * name's start and end (NUL excluded), then where each of its `sums` checksums starts. (No
 * callback: one per call made the loop polymorphic, and V8 optimized it twice per pull.)
 */
function readArrayOf(b: Buffer, start: number, end: number, sums: 1 | 2, what: string): number[] {
  const out: number[] = [];
  const len = end - start;
  if (len === 0) return out;
  const w = offsetSize(len);
  if (len < w) throw new FormatError(`dirtree ${what} array is truncated`);
  const lastEnd = readOffset(b, end - w, w);
  if (lastEnd > len - w) throw new FormatError('GVariant array offset out of range');
  const tableBytes = len - lastEnd;
  if (tableBytes % w !== 0) throw new FormatError('GVariant array offset table is misaligned');
  const n = tableBytes / w;
  let elemStart = 0;
  for (let i = 0; i < n; i++) {
    const elemEnd = readOffset(b, start + lastEnd + i * w, w);
    if (elemEnd < elemStart || elemEnd > lastEnd) throw new FormatError('GVariant array element out of range');
    // one element: name NUL, `sums` checksums, then `sums` offsets (last member first)
    const e0 = start + elemStart;
    const size = elemEnd - elemStart;
    const ew = offsetSize(size);
    const tableAt = size - sums * ew;
    if (tableAt < 0) throw new FormatError('GVariant tuple offset table out of range');
    for (let m = 0; m < sums; m++) MEMBER_ENDS[m] = readOffset(b, e0 + size - (m + 1) * ew, ew);
    MEMBER_ENDS[sums] = tableAt;
    let pos = 0;
    for (let m = 0; m <= sums; m++) {
      const me = MEMBER_ENDS[m]!;
      if (me < pos || me > tableAt) throw new FormatError('GVariant tuple member out of range');
      pos = me;
    }
    for (let m = 0; m < sums; m++) {
      const got = MEMBER_ENDS[m + 1]! - MEMBER_ENDS[m]!;
      if (got !== CHECKSUM_BYTES) throw new FormatError(`checksum must be 32 bytes, got ${got}`);
    }
    const nameLen = MEMBER_ENDS[0]!;
    if (nameLen === 0 || b[e0 + nameLen - 1] !== 0) throw new FormatError('GVariant string is not NUL-terminated');
    out.push(e0, e0 + nameLen - 1);
    for (let m = 0; m < sums; m++) out.push(e0 + MEMBER_ENDS[m]!);
    elemStart = elemEnd;
  }
  return out;
}

/** b[as, ae) against b[bs, be), bytewise, as Buffer#compare (whose checks cost more than these short names). */
function compareRange(b: Buffer, as: number, ae: number, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = b[as + i]! - b[bs + i]!;
    if (d !== 0) return d;
  }
  return ae - as - (be - bs);
}

/** Decodes and validates one entry name b[s, e) (NUL excluded); `prev` is the entry before. */
function readName(b: Buffer, s: number, e: number, prevStart: number, prevEnd: number): string {
  const name = decodeString(b, s, e);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new FormatError(`invalid file name "${name}"`);
  if (prevStart >= 0 && compareRange(b, prevStart, prevEnd, s, e) >= 0) throw new FormatError('dirtree entries are not sorted and unique');
  return name;
}

/** A dirtree's framing: where its files array ends (its dirs array begins) and where that ends. */
function dirtreeFrame(buf: Buffer): { filesEnd: number; dirsEnd: number } {
  const total = buf.length;
  const w = offsetSize(total);
  if (total < w || total === 0) throw new FormatError('GVariant tuple offset table out of range');
  const filesEnd = readOffset(buf, total - w, w);
  if (filesEnd > total - w) throw new FormatError('GVariant tuple member out of range');
  return { filesEnd, dirsEnd: total - w };
}

/** readName's checks without making the string (a non-ASCII name, rare, is decoded to check its UTF-8). */
function checkName(b: Buffer, s: number, e: number, prevStart: number, prevEnd: number): void {
  let ascii = true;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === 0 || c === 0x2f) {
      readName(b, s, e, prevStart, prevEnd); // throws the same error as a parse
    }
    if (c >= 0x80) ascii = false;
  }
  const len = e - s;
  if (len === 0 || (b[s] === 0x2e && (len === 1 || (len === 2 && b[s + 1] === 0x2e))) || !ascii) {
    readName(b, s, e, prevStart, prevEnd);
    return;
  }
  if (prevStart >= 0 && compareRange(b, prevStart, prevEnd, s, e) >= 0) throw new FormatError('dirtree entries are not sorted and unique');
}

/**
 * Checks a dirtree exactly as parseDirtree does, and throws the same errors, without building
 * its names and checksums: for bytes that are only stored (a delta's dirtrees), where making
 * ~7,000 strings was most of the cost.
 */
export function checkDirtree(b: Uint8Array): void {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const { filesEnd, dirsEnd } = dirtreeFrame(buf);
  checkNames(buf, readArrayOf(buf, 0, filesEnd, 1, 'files'), 3);
  checkNames(buf, readArrayOf(buf, filesEnd, dirsEnd, 2, 'dirs'), 4);
}

/** checkName over one array's entries (readArrayOf's flat list, `stride` numbers an entry). */
function checkNames(buf: Buffer, at: number[], stride: number): void {
  for (let i = 0; i < at.length; i += stride) checkName(buf, at[i]!, at[i + 1]!, i === 0 ? -1 : at[i - stride]!, i === 0 ? -1 : at[i - stride + 1]!);
}

/**
 * Parses a dirtree, always strictly: framing, names (valid, sorted, unique) and every offset
 * against the writer's layout, so the bytes it accepts are in normal form. (There is no trusted
 * mode: the checks cost less than building the values.)
 */
export function parseDirtree(b: Uint8Array): Dirtree {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const { filesEnd, dirsEnd } = dirtreeFrame(buf);
  const files: DirtreeFile[] = [];
  const dirs: DirtreeDir[] = [];
  const hex = (at: number): Checksum => buf.toString('hex', at, at + CHECKSUM_BYTES) as Checksum;
  const f = readArrayOf(buf, 0, filesEnd, 1, 'files');
  for (let i = 0; i < f.length; i += 3) {
    files.push({ name: readName(buf, f[i]!, f[i + 1]!, i === 0 ? -1 : f[i - 3]!, i === 0 ? -1 : f[i - 2]!), checksum: hex(f[i + 2]!) });
  }
  const d = readArrayOf(buf, filesEnd, dirsEnd, 2, 'dirs');
  for (let i = 0; i < d.length; i += 4) {
    dirs.push({ name: readName(buf, d[i]!, d[i + 1]!, i === 0 ? -1 : d[i - 4]!, i === 0 ? -1 : d[i - 3]!), tree: hex(d[i + 2]!), meta: hex(d[i + 3]!) });
  }
  return { files, dirs };
}

/** sha256 of the empty dirtree (one NUL byte); a literal, so that loading this module hashes nothing. */
export const EMPTY_DIRTREE_CHECKSUM = '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d' as Checksum;

// ---------------------------------------------------------------- commit (type 4)

export type Metadata = readonly (readonly [string, Variant])[];

export interface Commit {
  readonly metadata: Metadata;
  readonly parent: Checksum | null;
  readonly subject: string;
  readonly body: string;
  /** Seconds since the epoch, UTC. */
  readonly timestamp: bigint;
  readonly rootTree: Checksum;
  readonly rootMeta: Checksum;
}

const COMMIT = '(a{sv}aya(say)sstayay)';

export function serializeCommit(c: Commit): Buffer {
  return serialize(COMMIT, [
    c.metadata.map(([k, v]) => [k, v]),
    c.parent ? checksumToBytes(c.parent) : new Uint8Array(0),
    [],
    c.subject,
    c.body,
    bswap64(c.timestamp),
    checksumToBytes(c.rootTree),
    checksumToBytes(c.rootMeta),
  ]);
}

export function parseCommit(b: Uint8Array, trusted = false): Commit {
  const v = parse(COMMIT, b, trusted) as readonly GValue[];
  const metadata = v[0] as Metadata;
  for (const [k] of metadata) if (k === '') throw new FormatError('commit metadata has an empty key');
  const parent = v[1] as Uint8Array;
  return {
    metadata,
    parent: parent.length === 0 ? null : checksumFromBytes(parent),
    subject: v[3] as string,
    body: v[4] as string,
    timestamp: bswap64(v[5] as bigint),
    rootTree: checksumFromBytes(v[6] as Uint8Array),
    rootMeta: checksumFromBytes(v[7] as Uint8Array),
  };
}

/**
 * ostree's "content checksum" of a commit: SHA-256 of the root dirtree and dirmeta checksums,
 * equal for two commits of the same tree whatever their metadata.
 */
export function contentChecksum(c: Commit): Checksum {
  return sha256(checksumToBytes(c.rootTree), checksumToBytes(c.rootMeta));
}

// ---------------------------------------------------------------- commitmeta, tombstone (types 5, 6)

export function serializeMetadata(m: Metadata): Buffer {
  return serialize('a{sv}', m.map(([k, v]) => [k, v]));
}

export function parseMetadata(b: Uint8Array): Metadata {
  return parse('a{sv}', b) as Metadata;
}

export function serializeTombstone(commit: Checksum): Buffer {
  return serializeMetadata([['commit', { type: 'ay', value: Buffer.from(commit + '\0', 'ascii') }]]);
}

/** Returns a metadata value by key. */
export function metaGet(m: Metadata, key: string): Variant | undefined {
  return m.find(([k]) => k === key)?.[1];
}
