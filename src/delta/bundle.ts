/**
 * Offline (air-gapped) updates: one file carrying everything a host at commit A needs to reach
 * commit B — the delta superblock (with the to-commit and its detached metadata, so commit
 * signatures travel too), every part, and the fallback objects as .filez. Applied by
 * applyDeltaOffline(), which verifies each entry, each part and each object.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Checksum, sha256 } from '../format/index.js';
import { type BundleEntry, deltaName, parseSuperblock as parseSb, serializeBundleHeader, superblockInlinePart } from '../format/index.js';
import { DeltaInvalidError } from '../errors.js';
import type { Repo } from '../repo/index.js';
import { findDelta } from '../repo/index.js';
import { archivedObject, generateStaticDelta, type GenerateOptions } from './generate.js';

export interface ExportOptions extends Omit<GenerateOptions, 'write' | 'inline'> {
  /** Output file. */
  file: string;
  /** Reuse the delta already in deltas/ when there is one (default true). */
  reuse?: boolean;
}

export interface ExportResult {
  readonly file: string;
  readonly size: number;
  readonly parts: number;
  readonly fallbacks: number;
}

export async function exportDelta(repo: Repo, opts: ExportOptions): Promise<ExportResult> {
  let superblock: Buffer;
  let parts: Buffer[];
  let existing: string | null = null;
  if (opts.reuse !== false) {
    try {
      existing = findDelta(repo, opts.from, opts.to).dir;
    } catch {
      existing = null;
    }
  }
  if (existing) {
    superblock = fs.readFileSync(path.join(existing, 'superblock'));
    const sb = parseSb(superblock);
    parts = sb.parts.map((_, i) => superblockInlinePart(sb, i) ? Buffer.alloc(0) : fs.readFileSync(path.join(existing!, String(i))));
  } else {
    const g = await generateStaticDelta(repo, { ...opts, write: false });
    superblock = g.superblock;
    parts = [...g.parts];
  }
  const sb = parseSb(superblock);
  if (sb.from !== opts.from || sb.to !== opts.to) throw new DeltaInvalidError(`delta in the repository is not ${deltaName(opts.from, opts.to)}`);
  const blobs: { name: string; data: Buffer }[] = [{ name: 'superblock', data: superblock }];
  parts.forEach((p, i) => {
    if (!superblockInlinePart(sb, i)) blobs.push({ name: `part/${i}`, data: p });
  });
  for (const f of sb.fallbacks) blobs.push({ name: `fallback/${f.checksum}.filez`, data: await archivedObject(repo, f.checksum as Checksum) });
  let off = 0;
  const entries: BundleEntry[] = blobs.map((b) => {
    const e = { name: b.name, offset: off, size: b.data.length, sha256: sha256(b.data) };
    off += b.data.length;
    return e;
  });
  const header = serializeBundleHeader({
    metadata: [
      ['cairn.delta', { type: 's', value: deltaName(sb.from, sb.to) }],
      ['cairn.created', { type: 't', value: BigInt(Math.floor(Date.now() / 1000)) }],
    ],
    entries,
  });
  const tmp = path.join(path.dirname(path.resolve(opts.file)), `.${path.basename(opts.file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeSync(fd, header);
    for (const b of blobs) fs.writeSync(fd, b.data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, opts.file);
  return { file: opts.file, size: header.length + off, parts: sb.parts.length, fallbacks: sb.fallbacks.length };
}
