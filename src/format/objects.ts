/**
 * OSTree object encodings (spec §2.3–2.10): file headers, dirmeta, dirtree, commit,
 * commitmeta, tombstone. Pure: values in, bytes out, and back with validation.
 */
import { FormatError } from '../errors.js';
import { type Checksum, checksumFromBytes, checksumToBytes, sha256 } from './checksum.js';
import { type GValue, type Variant, bswap32, bswap64, parse, serialize } from './gvariant.js';

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

const FILE_HEADER = '(uuuusa(ayay))';
const ARCHIVE_HEADER = '(tuuuusa(ayay))';

export function serializeFileHeader(h: FileHeader): Buffer {
  return serialize(FILE_HEADER, [bswap32(h.uid), bswap32(h.gid), bswap32(h.mode), 0, h.symlinkTarget, xattrsValue(h.xattrs)]);
}

/** The bytes hashed before a file's content: u32 BE length, 4 zero bytes, header (spec §2.3). */
export function fileChecksumPrefix(h: FileHeader): Buffer {
  return sizePrefixed(serializeFileHeader(h));
}

function sizePrefixed(body: Buffer): Buffer {
  const out = Buffer.alloc(8 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 8);
  return out;
}

/** Header of an archive-mode .filez object, prefix included (spec §2.4). */
export function serializeArchiveHeader(h: FileHeader, size: number): Buffer {
  return sizePrefixed(
    serialize(ARCHIVE_HEADER, [
      bswap64(BigInt(size)), bswap32(h.uid), bswap32(h.gid), bswap32(h.mode), 0, h.symlinkTarget, xattrsValue(h.xattrs),
    ]),
  );
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
  const v = parse(ARCHIVE_HEADER, b.subarray(8, 8 + len)) as readonly GValue[];
  const size = bswap64(v[0] as bigint);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('content object size out of range');
  const header = headerFrom(v.slice(1));
  return { header, size: Number(size), headerLength: 8 + len };
}

/** Parses a canonical (bare) file header stream prefix; returns header and header length. */
export function parseFileHeader(buf: Uint8Array): { header: FileHeader; headerLength: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 8) throw new FormatError('file header prefix is truncated');
  const len = b.readUInt32BE(0);
  if (len > MAX_FILE_HEADER || b.length < 8 + len) throw new FormatError('file header is truncated');
  return { header: headerFrom(parse(FILE_HEADER, b.subarray(8, 8 + len)) as readonly GValue[]), headerLength: 8 + len };
}

function headerFrom(v: readonly GValue[]): FileHeader {
  const mode = bswap32(v[2] as number);
  validateFileMode(mode);
  if ((v[3] as number) !== 0) throw new FormatError('content object has a non-zero rdev');
  const symlinkTarget = v[4] as string;
  if ((mode & S_IFMT) === S_IFLNK ? symlinkTarget === '' : symlinkTarget !== '') {
    throw new FormatError('symlink target does not match the file type');
  }
  return { uid: bswap32(v[0] as number), gid: bswap32(v[1] as number), mode, symlinkTarget, xattrs: xattrsFrom(v[5] as GValue) };
}

// ---------------------------------------------------------------- bare-user xattr

const OSTREEMETA = '(uuua(ayay))';

/** Value of the user.ostreemeta xattr on bare-user content objects (spec §2.5). */
export function serializeBareUserMeta(m: FileMeta): Buffer {
  return serialize(OSTREEMETA, [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode), xattrsValue(m.xattrs)]);
}

export function parseBareUserMeta(b: Uint8Array): FileMeta {
  const v = parse(OSTREEMETA, b) as readonly GValue[];
  const mode = bswap32(v[2] as number);
  validateFileMode(mode);
  return { uid: bswap32(v[0] as number), gid: bswap32(v[1] as number), mode, xattrs: xattrsFrom(v[3] as GValue) };
}

// ---------------------------------------------------------------- dirmeta (type 3)

const DIRMETA = '(uuua(ayay))';

export function serializeDirmeta(m: FileMeta): Buffer {
  validateDirMode(m.mode);
  return serialize(DIRMETA, [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode), xattrsValue(m.xattrs)]);
}

/** `trusted`: bytes already checked when they entered the repository (see gvariant parse). */
export function parseDirmeta(b: Uint8Array, trusted = false): FileMeta {
  const v = parse(DIRMETA, b, trusted) as readonly GValue[];
  const mode = bswap32(v[2] as number);
  validateDirMode(mode);
  const xattrs = xattrsFrom(v[3] as GValue);
  return { uid: bswap32(v[0] as number), gid: bswap32(v[1] as number), mode, xattrs };
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

const DIRTREE = '(a(say)a(sayay))';

/** Byte-wise name order (strcmp), as ostree sorts dirtree entries. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function validateFileName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new FormatError(`invalid file name "${name}"`);
  }
}

export function serializeDirtree(t: Dirtree): Buffer {
  const files = [...t.files].sort((a, b) => compareNames(a.name, b.name));
  const dirs = [...t.dirs].sort((a, b) => compareNames(a.name, b.name));
  return serialize(DIRTREE, [
    files.map((f) => [f.name, checksumToBytes(f.checksum)]),
    dirs.map((d) => [d.name, checksumToBytes(d.tree), checksumToBytes(d.meta)]),
  ]);
}

export function parseDirtree(b: Uint8Array, trusted = false): Dirtree {
  const v = parse(DIRTREE, b, trusted) as readonly (readonly (readonly GValue[])[])[];
  const files = v[0]!.map(([name, c]) => ({ name: name as string, checksum: checksumFromBytes(c as Uint8Array) }));
  const dirs = v[1]!.map(([name, t, m]) => ({
    name: name as string,
    tree: checksumFromBytes(t as Uint8Array),
    meta: checksumFromBytes(m as Uint8Array),
  }));
  const check = (names: string[]): void => {
    for (let i = 0; i < names.length; i++) {
      validateFileName(names[i]!);
      if (i > 0 && compareNames(names[i - 1]!, names[i]!) >= 0) throw new FormatError('dirtree entries are not sorted and unique');
    }
  };
  check(files.map((f) => f.name));
  check(dirs.map((d) => d.name));
  return { files, dirs };
}

export const EMPTY_DIRTREE_CHECKSUM = sha256(serializeDirtree({ files: [], dirs: [] }));

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
