/**
 * Tar header decoding (POSIX ustar + pax extended headers + GNU long names), pure.
 * Pax values are kept as raw bytes so binary xattrs (SCHILY.xattr.security.capability)
 * survive exactly, which commit checksums depend on.
 */
import { FormatError } from '../errors.js';

export const BLOCK = 512;

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'directory' | 'chardev' | 'blockdev' | 'fifo' | 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink' | 'other';

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  type: TarEntryType;
  typeflag: string;
  linkname: string;
}

function field(b: Uint8Array, off: number, len: number): Buffer {
  const f = Buffer.from(b.buffer, b.byteOffset + off, len);
  const z = f.indexOf(0);
  return z < 0 ? f : f.subarray(0, z);
}

function numeric(b: Uint8Array, off: number, len: number, what: string): number {
  const f = Buffer.from(b.buffer, b.byteOffset + off, len);
  if (f[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit set
    let v = BigInt(f[0]! & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(f[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`tar ${what} is too large`);
    return Number(v);
  }
  const s = field(b, off, len).toString('ascii').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new FormatError(`tar ${what} "${s}" is not an octal number`);
  return parseInt(s, 8);
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'chardev', '4': 'blockdev',
  '5': 'directory', '6': 'fifo', x: 'pax', g: 'pax-global', L: 'gnu-longname', K: 'gnu-longlink',
};

/** True for the all-zero block that ends an archive. */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

export function parseTarHeader(b: Uint8Array): TarHeader {
  if (b.length < BLOCK) throw new FormatError('truncated tar header');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  const stored = numeric(b, 148, 8, 'checksum');
  if (stored !== sum) throw new FormatError('tar header checksum mismatch (not a tar archive, or corrupt)');
  const magic = field(b, 257, 6).toString('ascii');
  let name = field(b, 0, 100).toString('utf8');
  if (magic.startsWith('ustar')) {
    const prefix = field(b, 345, 155).toString('utf8');
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(b[156]!);
  return {
    name,
    mode: numeric(b, 100, 8, 'mode'),
    uid: numeric(b, 108, 8, 'uid'),
    gid: numeric(b, 116, 8, 'gid'),
    size: numeric(b, 124, 12, 'size'),
    type: TYPES[typeflag] ?? 'other',
    typeflag,
    linkname: field(b, 157, 100).toString('utf8'),
  };
}

/** Parses pax records "LEN KEY=VALUE\n"; values stay raw bytes. */
export function parsePax(data: Uint8Array): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  while (pos < b.length) {
    if (b[pos] === 0) break;
    const sp = b.indexOf(0x20, pos);
    if (sp < 0) throw new FormatError('malformed pax record');
    const len = Number(b.subarray(pos, sp).toString('ascii'));
    if (!Number.isInteger(len) || len <= sp - pos + 1 || pos + len > b.length || b[pos + len - 1] !== 0x0a) {
      throw new FormatError('malformed pax record length');
    }
    const rec = b.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new FormatError('malformed pax record');
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

/** Blocks occupied by `size` bytes of entry data. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}
