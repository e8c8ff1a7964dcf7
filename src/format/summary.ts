/**
 * The repository summary file (spec §3.3); delta names and indexes live in delta.ts. Pure.
 *
 * summary = (a(s(taya{sv}))a{sv}): refs sorted by name, each (name, (commit size, commit csum,
 * meta)); the commit size is stored in host order (LE) — the one integer ostree does not swap —
 * while ostree.commit.timestamp and ostree.summary.last-modified are big-endian.
 */
import { FormatError } from '../errors.js';
import { type Checksum, checksumFromBytes, checksumToBytes } from './checksum.js';
import { deltaName, parseDeltaName } from './delta.js';
import { type GValue, type Variant, bswap64, parse, serialize } from './gvariant.js';
import type { Metadata } from './objects.js';

const SUMMARY = '(a(s(taya{sv}))a{sv})';

export interface SummaryRef {
  readonly name: string;
  readonly commit: Checksum;
  /** Size in bytes of the commit object. */
  readonly commitSize: number;
  /** ostree.commit.timestamp, seconds since the epoch (null when absent). */
  readonly timestamp: bigint | null;
  /** ostree.commit.version (null when absent). */
  readonly version: string | null;
  /** Every per-ref metadata entry as stored (the two above included). */
  readonly metadata: Metadata;
}

/** A delta advertised in ostree.static-deltas: name FROM-TO (hex) or TO, and SHA256 of its superblock. */
export interface SummaryDelta {
  readonly from: Checksum | null;
  readonly to: Checksum;
  readonly superblockChecksum: Checksum;
}

export interface Summary {
  readonly refs: readonly SummaryRef[];
  /** The additional metadata dictionary as stored. */
  readonly metadata: Metadata;
  readonly lastModified: bigint | null;
  readonly mode: string | null;
  readonly tombstoneCommits: boolean;
  readonly indexedDeltas: boolean;
  readonly deltas: readonly SummaryDelta[];
}

export interface SummaryInput {
  refs: readonly { name: string; commit: Checksum; commitSize: number; timestamp: bigint; version?: string | null }[];
  lastModified: bigint;
  mode: string;
  tombstoneCommits: boolean;
  deltas?: readonly SummaryDelta[];
  /** Extra user keys (ostree summary -m), placed before the standard ones. */
  extra?: Metadata;
}

/** Byte-wise (strcmp) order, as ostree sorts refs and delta names. */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function deltasValue(deltas: readonly SummaryDelta[]): GValue {
  return [...deltas]
    .map((d) => [deltaName(d.from, d.to), d.superblockChecksum] as const)
    .sort((a, b) => byteCompare(a[0], b[0]))
    .map(([name, c]) => [name, { type: 'ay', value: checksumToBytes(c) }]);
}

function deltasFrom(v: Variant | undefined): SummaryDelta[] {
  if (!v) return [];
  if (v.type !== 'a{sv}') throw new FormatError('ostree.static-deltas is not an a{sv}');
  return (v.value as Metadata).map(([name, sv]) => {
    if (sv.type !== 'ay') throw new FormatError(`static delta ${name}: superblock checksum is not an ay`);
    return { ...parseDeltaName(name), superblockChecksum: checksumFromBytes(sv.value as Uint8Array) };
  });
}

export function serializeSummary(s: SummaryInput): Buffer {
  const refs = [...s.refs].sort((a, b) => byteCompare(a.name, b.name));
  for (let i = 1; i < refs.length; i++) {
    if (refs[i - 1]!.name === refs[i]!.name) throw new FormatError(`summary lists ref "${refs[i]!.name}" twice`);
  }
  const refValues = refs.map((r) => {
    const meta: [string, Variant][] = [];
    if (r.version) meta.push(['ostree.commit.version', { type: 's', value: r.version }]);
    meta.push(['ostree.commit.timestamp', { type: 't', value: bswap64(r.timestamp) }]);
    return [r.name, [BigInt(r.commitSize), checksumToBytes(r.commit), meta]];
  });
  const extra: [string, Variant][] = (s.extra ?? []).map(([k, v]) => [k, v]);
  const std = new Set(['ostree.summary.mode', 'ostree.summary.last-modified', 'ostree.summary.tombstone-commits',
    'ostree.summary.indexed-deltas', 'ostree.static-deltas']);
  const meta: [string, Variant][] = extra.filter(([k]) => !std.has(k));
  meta.push(['ostree.summary.mode', { type: 's', value: s.mode }]);
  meta.push(['ostree.summary.last-modified', { type: 't', value: bswap64(s.lastModified) }]);
  meta.push(['ostree.summary.tombstone-commits', { type: 'b', value: s.tombstoneCommits }]);
  meta.push(['ostree.summary.indexed-deltas', { type: 'b', value: true }]);
  if (s.deltas && s.deltas.length > 0) meta.push(['ostree.static-deltas', { type: 'a{sv}', value: deltasValue(s.deltas) }]);
  return serialize(SUMMARY, [refValues, meta]);
}

function metaGet(m: Metadata, key: string, type: string): Variant | undefined {
  const v = m.find(([k]) => k === key)?.[1];
  if (v && v.type !== type) throw new FormatError(`${key} has type ${v.type}, expected ${type}`);
  return v;
}

export function parseSummary(bytes: Uint8Array): Summary {
  const v = parse(SUMMARY, bytes) as readonly GValue[];
  const refs = (v[0] as readonly (readonly [string, readonly GValue[]])[]).map(([name, [size, csum, meta]]) => {
    const m = meta as Metadata;
    const ts = metaGet(m, 'ostree.commit.timestamp', 't');
    const ver = metaGet(m, 'ostree.commit.version', 's');
    const commitSize = size as bigint;
    if (commitSize > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`summary ref ${name}: commit size out of range`);
    return {
      name,
      commit: checksumFromBytes(csum as Uint8Array),
      commitSize: Number(commitSize),
      timestamp: ts ? bswap64(ts.value as bigint) : null,
      version: ver ? (ver.value as string) : null,
      metadata: m,
    };
  });
  for (let i = 1; i < refs.length; i++) {
    if (byteCompare(refs[i - 1]!.name, refs[i]!.name) >= 0) throw new FormatError('summary refs are not sorted and unique');
  }
  const metadata = v[1] as Metadata;
  const lm = metaGet(metadata, 'ostree.summary.last-modified', 't');
  const mode = metaGet(metadata, 'ostree.summary.mode', 's');
  const tomb = metaGet(metadata, 'ostree.summary.tombstone-commits', 'b');
  const idx = metaGet(metadata, 'ostree.summary.indexed-deltas', 'b');
  return {
    refs,
    metadata,
    lastModified: lm ? bswap64(lm.value as bigint) : null,
    mode: mode ? (mode.value as string) : null,
    tombstoneCommits: tomb ? (tomb.value as boolean) : false,
    indexedDeltas: idx ? (idx.value as boolean) : false,
    deltas: deltasFrom(metadata.find(([k]) => k === 'ostree.static-deltas')?.[1]),
  };
}
