// File headers, archive headers, dirmeta and bare-user meta are written out for their types; these
// tests hold them to the generic GVariant reader and writer: same bytes out, same bytes accepted.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type FileHeader, type FileMeta, type GValue, type Xattr, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, bswap32, bswap64, fileChecksumPrefix,
  parse, parseArchiveHeader, parseBareUserMeta, parseDirmeta, parseFileHeader, serialize, serializeArchiveHeader,
  serializeBareUserMeta, serializeDirmeta, serializeFileHeader, validateDirMode, validateFileMode,
} from '../../../src/format/index.js';
import { FormatError } from '../../../src/errors.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = ['a', '/', '.', '..', ' ', 'é', '日本', '\u{1F600}', '\uFEFF', 'usr/lib/x86_64-linux-gnu/libc.so.6'];

function randomString(r: () => number, max: number): string {
  let s = '';
  const n = Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

function randomXattrs(r: () => number): Xattr[] {
  const n = r() < 0.6 ? 0 : Math.floor(r() * 4);
  const out: Xattr[] = [];
  for (let i = 0; i < n; i++) {
    const name = `user.${randomString(r, 4) || 'x'}${i}`;
    const value = Buffer.from(Array.from({ length: Math.floor(r() * (r() < 0.1 ? 400 : 20)) }, () => Math.floor(r() * 256)));
    out.push({ name, value });
  }
  return out;
}

function randomHeader(r: () => number): FileHeader {
  const link = r() < 0.3;
  const big = (): number => (r() < 0.2 ? Math.floor(r() * 2 ** 32) : Math.floor(r() * 70000));
  // a long target now and then, so the framing offset reaches 2 and 4 bytes
  const target = link ? (randomString(r, r() < 0.1 ? 30000 : 12) || 't') : '';
  return { uid: big(), gid: big(), mode: (link ? S_IFLNK : S_IFREG) | Math.floor(r() * 0o7777), symlinkTarget: target, xattrs: randomXattrs(r) };
}

const xv = (xs: readonly Xattr[]): GValue => xs.map((x) => [Buffer.from(x.name + '\0', 'utf8'), x.value]);

const generic = {
  fileHeader: (h: FileHeader): Buffer => serialize('(uuuusa(ayay))', [bswap32(h.uid), bswap32(h.gid), bswap32(h.mode), 0, h.symlinkTarget, xv(h.xattrs)]),
  archiveHeader: (h: FileHeader, size: number): Buffer =>
    serialize('(tuuuusa(ayay))', [bswap64(BigInt(size)), bswap32(h.uid), bswap32(h.gid), bswap32(h.mode), 0, h.symlinkTarget, xv(h.xattrs)]),
  meta: (m: FileMeta): Buffer => serialize('(uuua(ayay))', [bswap32(m.uid), bswap32(m.gid), bswap32(m.mode), xv(m.xattrs)]),
};

function xattrsFrom(v: GValue): Xattr[] {
  return (v as [Uint8Array, Uint8Array][]).map(([n, value]) => {
    if (n.length < 2 || n[n.length - 1] !== 0) throw new FormatError('bad xattr name');
    return { name: Buffer.from(n.subarray(0, n.length - 1)).toString('utf8'), value };
  });
}

/** The generic reading of a header body: GVariant parse (normal form included), then ostree's rules. */
function genericHeader(body: Buffer, archive: boolean): { header: FileHeader; size: number } {
  const v = parse(archive ? '(tuuuusa(ayay))' : '(uuuusa(ayay))', body) as GValue[];
  const size = archive ? bswap64(v.shift() as bigint) : 0n;
  const mode = bswap32(v[2] as number);
  validateFileMode(mode);
  if (v[3] !== 0) throw new FormatError('rdev');
  const target = v[4] as string;
  if ((mode & S_IFMT) === S_IFLNK ? target === '' : target !== '') throw new FormatError('target');
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('size');
  return { header: { uid: bswap32(v[0] as number), gid: bswap32(v[1] as number), mode, symlinkTarget: target, xattrs: xattrsFrom(v[5]!) }, size: Number(size) };
}

function genericMeta(b: Buffer, dir: boolean): FileMeta {
  const v = parse('(uuua(ayay))', b) as GValue[];
  const mode = bswap32(v[2] as number);
  if (dir) validateDirMode(mode);
  else validateFileMode(mode);
  return { uid: bswap32(v[0] as number), gid: bswap32(v[1] as number), mode, xattrs: xattrsFrom(v[3]!) };
}

/** Xattr values as plain bytes, so values read back compare equal whatever their view type. */
function norm<T>(v: T): T {
  if (Array.isArray(v)) return v.map(norm) as T;
  if (v instanceof Uint8Array) return Buffer.from(v) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)])) as T;
  return v;
}

function outcome<T>(f: () => T): T | 'refused' {
  try {
    return norm(f());
  } catch (e) {
    assert.ok(e instanceof FormatError, `only FormatError may escape, got ${String(e)}`);
    return 'refused';
  }
}

function corrupt(r: () => number, good: Buffer): Buffer {
  const bad = Buffer.from(good);
  switch (Math.floor(r() * 4)) {
    case 0:
      for (let k = 0; k < 1 + Math.floor(r() * 2); k++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      return bad;
    case 1:
      return good.subarray(0, Math.floor(r() * good.length));
    case 2:
      return Buffer.concat([good, Buffer.from([Math.floor(r() * 256)])]);
    default: {
      const at = bad.length - 1 - Math.floor(r() * Math.min(3, bad.length));
      // offsets decide the framing: point one anywhere in the object
      bad[at] = [0, 0x80, 0xff, (bad[at]! + 1) & 0xff, Math.floor(r() * bad.length) & 0xff][Math.floor(r() * 5)]!;
      return bad;
    }
  }
}

describe('file header and meta codecs', () => {
  it('write the same bytes as the generic writer and read them back', () => {
    const r = rng(3);
    let wide = 0;
    for (let i = 0; i < 3000; i++) {
      const h = randomHeader(r);
      const body = serializeFileHeader(h);
      assert.ok(body.equals(generic.fileHeader(h)), `file header ${i}`);
      if (body.length > 0xffff) wide++;
      const prefix = fileChecksumPrefix(h);
      assert.equal(prefix.readUInt32BE(0), body.length);
      assert.equal(prefix.readUInt32BE(4), 0);
      assert.ok(prefix.subarray(8).equals(body));
      assert.deepEqual(norm(parseFileHeader(prefix).header), norm(h));
      const size = r() < 0.1 ? Number.MAX_SAFE_INTEGER : Math.floor(r() * 2 ** 40);
      const archive = serializeArchiveHeader(h, size);
      assert.ok(archive.subarray(8).equals(generic.archiveHeader(h, size)), `archive header ${i}`);
      assert.deepEqual(norm(parseArchiveHeader(archive)), norm({ header: h, size, headerLength: archive.length }));

      const dm: FileMeta = { uid: h.uid, gid: h.gid, mode: S_IFDIR | (h.mode & 0o7777), xattrs: h.xattrs };
      assert.ok(serializeDirmeta(dm).equals(generic.meta(dm)));
      assert.deepEqual(norm(parseDirmeta(serializeDirmeta(dm))), norm(dm));
      const um: FileMeta = { uid: h.uid, gid: h.gid, mode: h.mode, xattrs: h.xattrs };
      assert.ok(serializeBareUserMeta(um).equals(generic.meta(um)));
      assert.deepEqual(norm(parseBareUserMeta(serializeBareUserMeta(um))), norm(um));
    }
    assert.ok(wide > 0, 'some headers need 4-byte offsets');
  });

  it('accept exactly the bytes the generic reader accepts, under random corruption', () => {
    const r = rng(11);
    const seen = { refused: 0, accepted: 0 };
    const tally = (x: unknown): void => void (x === 'refused' ? seen.refused++ : seen.accepted++);
    for (let i = 0; i < 6000; i++) {
      const h = randomHeader(r);
      const prefixed = corrupt(r, fileChecksumPrefix(h));
      const body = prefixed.subarray(8);
      // the prefix's own length field is checked before the body is read; compare bodies with a sound prefix
      const sound = Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]), body]);
      sound.writeUInt32BE(body.length, 0);
      const mine = outcome(() => parseFileHeader(sound).header);
      assert.deepEqual(mine, outcome(() => genericHeader(body, false).header), `file header case ${i}`);
      tally(mine);

      const archiveBody = corrupt(r, serializeArchiveHeader(h, Math.floor(r() * 2 ** 40)).subarray(8));
      const archive = Buffer.concat([Buffer.alloc(8), archiveBody]);
      archive.writeUInt32BE(archiveBody.length, 0);
      const mineA = outcome(() => {
        const p = parseArchiveHeader(archive);
        return { header: p.header, size: p.size };
      });
      assert.deepEqual(mineA, outcome(() => genericHeader(archiveBody, true)), `archive header case ${i}`);
      tally(mineA);

      const dm = corrupt(r, serializeDirmeta({ uid: h.uid, gid: h.gid, mode: S_IFDIR | 0o755, xattrs: h.xattrs }));
      assert.deepEqual(outcome(() => parseDirmeta(dm)), outcome(() => genericMeta(dm, true)), `dirmeta case ${i}`);
      const um = corrupt(r, serializeBareUserMeta(h));
      assert.deepEqual(outcome(() => parseBareUserMeta(um)), outcome(() => genericMeta(um, false)), `bare-user meta case ${i}`);
    }
    assert.ok(seen.refused > 1000 && seen.accepted > 1000, `both outcomes exercised (${JSON.stringify(seen)})`);
  });

  it('refuses what ostree refuses', () => {
    const h: FileHeader = { uid: 0, gid: 0, mode: S_IFREG | 0o644, symlinkTarget: '', xattrs: [] };
    assert.throws(() => parseFileHeader(fileChecksumPrefix({ ...h, symlinkTarget: 'x' })), /symlink target/);
    assert.throws(() => parseFileHeader(fileChecksumPrefix({ ...h, mode: S_IFLNK | 0o777 })), /symlink target/);
    assert.throws(() => parseFileHeader(fileChecksumPrefix({ ...h, mode: 0o020644 })), /invalid file mode/);
    assert.throws(() => serializeFileHeader({ ...h, mode: S_IFLNK | 0o777, symlinkTarget: 'a\0b' }), /NUL/);
    assert.throws(() => parseDirmeta(serializeBareUserMeta(h)), /invalid directory mode/);
    const rdev = fileChecksumPrefix(h);
    rdev.writeUInt32BE(1, 8 + 12);
    assert.throws(() => parseFileHeader(rdev), /rdev/);
  });
});
