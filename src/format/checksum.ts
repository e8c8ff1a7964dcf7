/** Checksums and object names (spec §2.1–2.2). Pure. */
import { createHash } from 'node:crypto';
import { FormatError } from '../errors.js';

/** 64 lowercase hex characters: the SHA-256 naming an object. */
export type Checksum = string & { readonly __brand: 'Checksum' };

const HEX64 = /^[0-9a-f]{64}$/;

export function isChecksum(s: string): s is Checksum {
  return HEX64.test(s);
}

export function parseChecksum(s: string): Checksum {
  if (!HEX64.test(s)) throw new FormatError(`invalid checksum "${s.length > 80 ? s.slice(0, 80) + '…' : s}"`);
  return s as Checksum;
}

export function checksumFromBytes(b: Uint8Array): Checksum {
  if (b.length !== 32) throw new FormatError(`checksum must be 32 bytes, got ${b.length}`);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') as Checksum;
}

export function checksumToBytes(c: Checksum): Buffer {
  return Buffer.from(c, 'hex');
}

export function sha256(...parts: Uint8Array[]): Checksum {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex') as Checksum;
}

export type ObjectType = 'file' | 'dirtree' | 'dirmeta' | 'commit' | 'tombstone-commit' | 'commitmeta';

export const OBJECT_TYPE_NUMBER: Record<ObjectType, number> = {
  file: 1, dirtree: 2, dirmeta: 3, commit: 4, 'tombstone-commit': 5, commitmeta: 6,
};

export function objectTypeFromNumber(n: number): ObjectType {
  const t = (Object.keys(OBJECT_TYPE_NUMBER) as ObjectType[]).find((k) => OBJECT_TYPE_NUMBER[k] === n);
  if (!t) throw new FormatError(`unknown object type ${n}`);
  return t;
}

export function isMetadataType(t: ObjectType): boolean {
  return t !== 'file';
}

/** Loose-object path relative to the repo: objects/XX/rest.ext (filez for archive content). */
export function objectRelPath(csum: Checksum, type: ObjectType, archive: boolean): string {
  const ext = type === 'file' && archive ? 'filez' : type;
  return `objects/${csum.slice(0, 2)}/${csum.slice(2)}.${ext}`;
}
