/**
 * GVariant serialisation, the subset OSTree uses (spec §1), in normal form.
 *
 * Pure: bytes in, values out. Integers are written little-endian; OSTree's big-endian
 * fields are byte-swapped by the callers (see bswap32/bswap64), exactly as ostree does.
 *
 * Value model:
 *   y u n q i h d -> number     t x -> bigint     b -> boolean     s o g -> string
 *   ay -> Uint8Array            aT -> T[]         (T1..Tn) -> unknown[]   {KV} -> [K, V]
 *   v -> Variant                mT -> T | null
 */
import { FormatError } from '../errors.js';

export type GType =
  | { readonly k: 'y' | 'b' | 'n' | 'q' | 'i' | 'u' | 'h' | 'x' | 't' | 'd' | 's' | 'o' | 'g' | 'v' }
  | { readonly k: 'a'; readonly e: GType }
  | { readonly k: 'm'; readonly e: GType }
  | { readonly k: '('; readonly m: readonly GType[] }
  | { readonly k: '{'; readonly m: readonly [GType, GType] };

export interface Variant {
  readonly type: string;
  readonly value: GValue;
}
export type GValue =
  | number
  | bigint
  | boolean
  | string
  | Uint8Array
  | Variant
  | null
  | readonly GValue[];

const BASIC = 'ybnqiuhxtdsogv';
const FIXED: Record<string, [align: number, size: number]> = {
  y: [1, 1], b: [1, 1], n: [2, 2], q: [2, 2], i: [4, 4], u: [4, 4], h: [4, 4],
  x: [8, 8], t: [8, 8], d: [8, 8],
};

const typeCache = new Map<string, GType>();

/** Parses a complete GVariant type string (e.g. "(a{sv}aya(say)sstayay)"). */
export function parseType(sig: string): GType {
  const cached = typeCache.get(sig);
  if (cached) return cached;
  const [t, end] = parseTypeAt(sig, 0);
  if (end !== sig.length) throw new FormatError(`invalid GVariant type string "${sig}"`);
  if (typeCache.size < 1024) typeCache.set(sig, t);
  return t;
}

function parseTypeAt(sig: string, pos: number): [GType, number] {
  const c = sig[pos];
  if (c === undefined) throw new FormatError(`truncated GVariant type string "${sig}"`);
  if (BASIC.includes(c)) return [{ k: c as 'y' }, pos + 1];
  if (c === 'a' || c === 'm') {
    const [e, end] = parseTypeAt(sig, pos + 1);
    return [{ k: c, e }, end];
  }
  if (c === '(') {
    const m: GType[] = [];
    let p = pos + 1;
    while (sig[p] !== ')') {
      if (p >= sig.length) throw new FormatError(`unterminated tuple in type "${sig}"`);
      const [t, end] = parseTypeAt(sig, p);
      m.push(t);
      p = end;
    }
    return [{ k: '(', m }, p + 1];
  }
  if (c === '{') {
    const [key, p1] = parseTypeAt(sig, pos + 1);
    if (!('k' in key) || !BASIC.includes(key.k) || key.k === 'v') {
      throw new FormatError(`dict key must be a basic type in "${sig}"`);
    }
    const [val, p2] = parseTypeAt(sig, p1);
    if (sig[p2] !== '}') throw new FormatError(`unterminated dict entry in type "${sig}"`);
    return [{ k: '{', m: [key, val] }, p2 + 1];
  }
  throw new FormatError(`unsupported GVariant type character "${c}" in "${sig}"`);
}

export function typeString(t: GType): string {
  switch (t.k) {
    case 'a':
    case 'm':
      return t.k + typeString(t.e);
    case '(':
      return '(' + t.m.map(typeString).join('') + ')';
    case '{':
      return '{' + typeString(t.m[0]) + typeString(t.m[1]) + '}';
    default:
      return t.k;
  }
}

interface Layout {
  align: number;
  /** Fixed size in bytes, or null when variable-size. */
  size: number | null;
}
const layoutCache = new WeakMap<GType, Layout>();

function layout(t: GType): Layout {
  const cached = layoutCache.get(t);
  if (cached) return cached;
  let l: Layout;
  const f = FIXED[t.k];
  if (f) l = { align: f[0], size: f[1] };
  else if (t.k === 's' || t.k === 'o' || t.k === 'g') l = { align: 1, size: null };
  else if (t.k === 'v') l = { align: 8, size: null };
  else if (t.k === 'a' || t.k === 'm') l = { align: layout(t.e).align, size: null };
  else {
    const members = (t as { m: readonly GType[] }).m;
    let align = 1;
    let off = 0;
    let fixed = true;
    for (const m of members) {
      const ml = layout(m);
      align = Math.max(align, ml.align);
      off = alignUp(off, ml.align);
      if (ml.size === null) fixed = false;
      else off += ml.size;
    }
    if (fixed) l = { align, size: members.length === 0 ? 1 : alignUp(off, align) };
    else l = { align, size: null };
  }
  layoutCache.set(t, l);
  return l;
}

function alignUp(n: number, a: number): number {
  return (n + a - 1) & ~(a - 1);
}

/** Width of the framing offsets in a container of `total` bytes (as a reader derives it). */
export function offsetSize(total: number): number {
  if (total <= 0xff) return 1;
  if (total <= 0xffff) return 2;
  if (total <= 0xffffffff) return 4;
  return 8;
}

/** Chooses the smallest offset width w such that body + n*w fits in w bytes (as a writer picks it). */
export function offsetWidthFor(body: number, n: number): number {
  if (n === 0) return 0;
  for (const w of [1, 2, 4]) if (body + n * w <= 2 ** (8 * w) - 1) return w;
  return 8;
}

// ------------------------------------------------------------------ writing

class Writer {
  private chunks: Uint8Array[] = [];
  length = 0;

  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }
  pad(align: number): void {
    const n = alignUp(this.length, align) - this.length;
    if (n > 0) this.push(new Uint8Array(n));
  }
  pushOffsets(offsets: number[], w: number): void {
    const b = Buffer.alloc(offsets.length * w);
    offsets.forEach((o, i) => writeOffset(b, i * w, w, o));
    this.push(b);
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** Writes a framing offset `v` of width `w` (1, 2, 4 or 8 bytes, little-endian) at `pos`. */
export function writeOffset(b: Buffer, pos: number, w: number, v: number): void {
  if (w === 1) b[pos] = v;
  else if (w === 2) b.writeUInt16LE(v, pos);
  else if (w === 4) b.writeUInt32LE(v, pos);
  else b.writeBigUInt64LE(BigInt(v), pos);
}

/** Serialises `value` as type `sig` in normal form. */
export function serialize(sig: string | GType, value: GValue): Buffer {
  const t = typeof sig === 'string' ? parseType(sig) : sig;
  return write(t, value);
}

function write(t: GType, v: GValue): Buffer {
  switch (t.k) {
    case 'y': {
      const b = Buffer.alloc(1);
      b.writeUInt8(num(v, t.k));
      return b;
    }
    case 'b':
      if (typeof v !== 'boolean') throw new FormatError('GVariant b needs a boolean');
      return Buffer.from([v ? 1 : 0]);
    case 'n':
    case 'q': {
      const b = Buffer.alloc(2);
      if (t.k === 'n') b.writeInt16LE(num(v, t.k));
      else b.writeUInt16LE(num(v, t.k));
      return b;
    }
    case 'i':
    case 'h':
    case 'u': {
      const b = Buffer.alloc(4);
      if (t.k === 'u') b.writeUInt32LE(num(v, t.k));
      else b.writeInt32LE(num(v, t.k));
      return b;
    }
    case 'x':
    case 't': {
      const b = Buffer.alloc(8);
      if (typeof v !== 'bigint') throw new FormatError(`GVariant ${t.k} needs a bigint`);
      if (t.k === 't') b.writeBigUInt64LE(v);
      else b.writeBigInt64LE(v);
      return b;
    }
    case 'd': {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(num(v, 'd'));
      return b;
    }
    case 's':
    case 'o':
    case 'g': {
      if (typeof v !== 'string') throw new FormatError(`GVariant ${t.k} needs a string`);
      if (v.includes('\0')) throw new FormatError('GVariant strings cannot contain NUL');
      return Buffer.from(v + '\0', 'utf8');
    }
    case 'v': {
      const vv = v as Variant;
      if (!vv || typeof vv !== 'object' || typeof (vv as Variant).type !== 'string') {
        throw new FormatError('GVariant v needs a {type, value} object');
      }
      const inner = write(parseType(vv.type), vv.value);
      return Buffer.concat([inner, Buffer.from([0]), Buffer.from(vv.type, 'ascii')]);
    }
    case 'm': {
      if (v === null) return Buffer.alloc(0);
      const inner = write(t.e, v);
      return layout(t.e).size === null ? Buffer.concat([inner, Buffer.from([0])]) : inner;
    }
    case 'a':
      return writeArray(t.e, v);
    case '(':
    case '{':
      return writeTuple(t.m, v);
  }
}

function num(v: GValue, k: string): number {
  if (typeof v !== 'number') throw new FormatError(`GVariant ${k} needs a number`);
  return v;
}

function writeArray(e: GType, v: GValue): Buffer {
  if (e.k === 'y') {
    if (!(v instanceof Uint8Array)) throw new FormatError('GVariant ay needs a Uint8Array');
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }
  if (!Array.isArray(v)) throw new FormatError(`GVariant a${typeString(e)} needs an array`);
  const el = layout(e);
  const w = new Writer();
  const ends: number[] = [];
  for (const item of v as readonly GValue[]) {
    w.pad(el.align);
    w.push(write(e, item));
    ends.push(w.length);
  }
  if (el.size === null) {
    const ow = offsetWidthFor(w.length, ends.length);
    w.pushOffsets(ends, ow);
  }
  return w.finish();
}

function writeTuple(members: readonly GType[], v: GValue): Buffer {
  if (!Array.isArray(v) || v.length !== members.length) {
    throw new FormatError(`GVariant tuple needs ${members.length} members`);
  }
  if (members.length === 0) return Buffer.from([0]);
  const w = new Writer();
  const ends: number[] = [];
  let align = 1;
  members.forEach((m, i) => {
    const ml = layout(m);
    align = Math.max(align, ml.align);
    w.pad(ml.align);
    w.push(write(m, (v as readonly GValue[])[i] as GValue));
    if (ml.size === null && i !== members.length - 1) ends.push(w.length);
  });
  const tl = layout({ k: '(', m: members });
  if (tl.size !== null) {
    w.pad(align);
    return w.finish();
  }
  const ow = offsetWidthFor(w.length, ends.length);
  w.pushOffsets(ends.reverse(), ow);
  return w.finish();
}

// ------------------------------------------------------------------ reading

const parsedTypes = new Map<string, GType>();

/**
 * Parses `buf` as type `sig` and insists on normal form: the bytes must be exactly what
 * serialize() writes for the parsed value (ostree refuses non-normal metadata, spec §1.7).
 * `trusted` skips that re-serialisation, for bytes that were checked when they entered the
 * repository (ostree loads its own objects the same way); framing is still checked.
 */
export function parse(sig: string | GType, buf: Uint8Array, trusted = false): GValue {
  let t: GType;
  if (typeof sig === 'string') {
    t = parsedTypes.get(sig) ?? parseType(sig);
    if (parsedTypes.size < 64) parsedTypes.set(sig, t);
  } else t = sig;
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const v = read(t, b, 0);
  if (trusted) return v;
  const again = write(t, v);
  if (!again.equals(b)) throw new FormatError(`GVariant ${typeString(t)} is not in normal form`);
  return v;
}

/** Reads a framing offset of width `w` (1, 2, 4 or 8 bytes, little-endian) at `pos`. */
export function readOffset(b: Buffer, pos: number, w: number): number {
  if (w === 1) return b[pos]!;
  if (w === 2) return b.readUInt16LE(pos);
  if (w === 4) return b.readUInt32LE(pos);
  const v = b.readBigUInt64LE(pos);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('GVariant offset out of range');
  return Number(v);
}

// ignoreBOM: a leading U+FEFF is part of the string (the default would strip it, and the string
// would no longer be the bytes it came from)
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes b[s, e) as the contents of a GVariant string (its NUL excluded): no NUL, valid UTF-8. */
export function decodeString(b: Buffer, s: number, e: number): string {
  let ascii = true;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === 0) throw new FormatError('GVariant string contains NUL');
    if (c >= 0x80) ascii = false;
  }
  if (ascii) return b.toString('latin1', s, e);
  try {
    return utf8.decode(b.subarray(s, e));
  } catch {
    throw new FormatError('GVariant string is not valid UTF-8');
  }
}

function read(t: GType, b: Buffer, depth: number): GValue {
  if (depth > 64) throw new FormatError('GVariant nesting too deep');
  const l = layout(t);
  if (l.size !== null && b.length !== l.size) {
    throw new FormatError(`GVariant ${typeString(t)} has size ${b.length}, expected ${l.size}`);
  }
  switch (t.k) {
    case 'y':
      return b.readUInt8(0);
    case 'b':
      if (b[0]! > 1) throw new FormatError('GVariant boolean is not 0 or 1');
      return b[0] === 1;
    case 'n':
      return b.readInt16LE(0);
    case 'q':
      return b.readUInt16LE(0);
    case 'i':
    case 'h':
      return b.readInt32LE(0);
    case 'u':
      return b.readUInt32LE(0);
    case 'x':
      return b.readBigInt64LE(0);
    case 't':
      return b.readBigUInt64LE(0);
    case 'd':
      return b.readDoubleLE(0);
    case 's':
    case 'o':
    case 'g': {
      if (b.length === 0 || b[b.length - 1] !== 0) throw new FormatError('GVariant string is not NUL-terminated');
      return decodeString(b, 0, b.length - 1);
    }
    case 'v': {
      const z = b.lastIndexOf(0);
      if (z < 0) throw new FormatError('GVariant variant has no type separator');
      const sig = b.subarray(z + 1).toString('ascii');
      const vt = parseType(sig);
      return { type: sig, value: read(vt, b.subarray(0, z), depth + 1) };
    }
    case 'm': {
      if (b.length === 0) return null;
      if (layout(t.e).size === null) {
        if (b[b.length - 1] !== 0) throw new FormatError('GVariant maybe lacks its trailing NUL');
        return read(t.e, b.subarray(0, b.length - 1), depth + 1);
      }
      return read(t.e, b, depth + 1);
    }
    case 'a':
      return readArray(t.e, b, depth);
    case '(':
    case '{':
      return readTuple(t.m, b, depth);
  }
}

function readArray(e: GType, b: Buffer, depth: number): GValue {
  if (e.k === 'y') return new Uint8Array(b);
  const el = layout(e);
  const out: GValue[] = [];
  if (b.length === 0) return out;
  if (el.size !== null) {
    if (b.length % el.size !== 0) throw new FormatError('GVariant fixed array size is not a multiple of its element');
    for (let p = 0; p < b.length; p += el.size) out.push(read(e, b.subarray(p, p + el.size), depth + 1));
    return out;
  }
  const w = offsetSize(b.length);
  const lastEnd = readOffset(b, b.length - w, w);
  if (lastEnd > b.length - w) throw new FormatError('GVariant array offset out of range');
  const tableBytes = b.length - lastEnd;
  if (tableBytes % w !== 0) throw new FormatError('GVariant array offset table is misaligned');
  const n = tableBytes / w;
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = readOffset(b, lastEnd + i * w, w);
    start = alignUp(start, el.align);
    if (end < start || end > lastEnd) throw new FormatError('GVariant array element out of range');
    out.push(read(e, b.subarray(start, end), depth + 1));
    start = end;
  }
  return out;
}

function readTuple(members: readonly GType[], b: Buffer, depth: number): GValue {
  if (members.length === 0) {
    if (b.length !== 1 || b[0] !== 0) throw new FormatError('GVariant unit is not a single 0 byte');
    return [];
  }
  const w = offsetSize(b.length);
  let tableEnd = b.length; // offsets are read backwards from the end
  let pos = 0;
  const out: GValue[] = [];
  members.forEach((m, i) => {
    const ml = layout(m);
    pos = alignUp(pos, ml.align);
    let end: number;
    if (ml.size !== null) end = pos + ml.size;
    else if (i === members.length - 1) end = tableEnd;
    else {
      tableEnd -= w;
      if (tableEnd < 0) throw new FormatError('GVariant tuple offset table out of range');
      end = readOffset(b, tableEnd, w);
    }
    if (pos > end || end > tableEnd) throw new FormatError('GVariant tuple member out of range');
    out.push(read(m, b.subarray(pos, end), depth + 1));
    pos = end;
  });
  return out;
}

// ------------------------------------------------------------------ helpers

/** Byte-swaps a uint32, for ostree's big-endian fields inside LE-framed variants. */
export function bswap32(n: number): number {
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | ((n >>> 24) & 0xff)) >>> 0;
}

export function bswap64(n: bigint): bigint {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b.readBigUInt64BE(0);
}

/** Looks a key up in a parsed a{sv} dictionary. */
export function lookup(dict: GValue, key: string): Variant | undefined {
  if (!Array.isArray(dict)) return undefined;
  for (const entry of dict as readonly (readonly [string, Variant])[]) {
    if (entry[0] === key) return entry[1];
  }
  return undefined;
}

/** Renders a value in (roughly) GLib's text format, for `show --raw` style output. */
export function printValue(t: GType, v: GValue): string {
  switch (t.k) {
    case 's':
    case 'o':
    case 'g':
      return `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    case 't':
    case 'x':
    case 'u':
    case 'i':
    case 'n':
    case 'q':
    case 'h':
    case 'y':
    case 'd':
      return String(v);
    case 'b':
      return v ? 'true' : 'false';
    case 'v': {
      const vv = v as Variant;
      return `<${printValue(parseType(vv.type), vv.value)}>`;
    }
    case 'm':
      return v === null ? 'nothing' : printValue(t.e, v);
    case 'a':
      if (t.e.k === 'y') return `[${Array.from(v as Uint8Array, (x) => `0x${x.toString(16).padStart(2, '0')}`).join(', ')}]`;
      if (t.e.k === '{') {
        return `{${(v as readonly GValue[])
          .map((e) => {
            const [k, val] = e as readonly GValue[];
            return `${printValue(t.e.k === '{' ? t.e.m[0] : t.e, k as GValue)}: ${printValue(t.e.k === '{' ? t.e.m[1] : t.e, val as GValue)}`;
          })
          .join(', ')}}`;
      }
      return `[${(v as readonly GValue[]).map((x) => printValue(t.e, x)).join(', ')}]`;
    case '(':
    case '{':
      return `(${t.m.map((m, i) => printValue(m, (v as readonly GValue[])[i] as GValue)).join(', ')})`;
  }
}
