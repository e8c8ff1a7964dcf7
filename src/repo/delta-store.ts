/**
 * Static delta files under a repository (spec §5.1, §5.7): deltas/<…>/{superblock,0,1,…} and
 * delta-indexes/<…>.index. The repo layer owns every write under a repo; src/delta computes
 * the bytes and hands them here. A delta directory appears complete or not at all: it is
 * written beside its final place and renamed in.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Checksum, sha256 } from '../format/index.js';
import { deltaIndexRelPath, deltaName, deltaRelDir, parseDeltaRelDir, serializeDeltaIndex } from '../format/index.js';
import { DeltaNotFoundError } from '../errors.js';
import { fsyncPath, isErrno, syncFilesystem, writeFileAtomic } from './fsutil.js';
import type { Repo } from './repo.js';

export interface DeltaRef {
  readonly from: Checksum | null;
  readonly to: Checksum;
  readonly name: string;
  /** Absolute path of the delta directory. */
  readonly dir: string;
}

export function deltaDir(repo: Repo, from: Checksum | null, to: Checksum): string {
  return path.join(repo.path, deltaRelDir(from, to));
}

/** Writes a delta's files (part files and "superblock") and replaces any previous copy. */
export function writeDeltaFiles(repo: Repo, from: Checksum | null, to: Checksum, files: ReadonlyMap<string, Uint8Array>): string {
  const dest = deltaDir(repo, from, to);
  const parent = path.dirname(dest);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = path.join(parent, `.tmp-${path.basename(dest)}-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(tmp);
  try {
    for (const [name, data] of files) {
      if (!/^(superblock|\d+)$/.test(name)) throw new Error(`bad delta file name ${name}`);
      fs.writeFileSync(path.join(tmp, name), data, { mode: 0o644 });
    }
    if (repo.durable) syncFilesystem(tmp);
    const old = fs.existsSync(dest) ? `${tmp}.old` : null;
    if (old) fs.renameSync(dest, old);
    fs.renameSync(tmp, dest);
    if (old) fs.rmSync(old, { recursive: true, force: true });
    if (repo.durable) fsyncPath(parent);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  updateDeltaIndex(repo, to);
  return dest;
}

/** Every delta in the repository, found by walking deltas/. */
export function listDeltas(repo: Repo): DeltaRef[] {
  const root = path.join(repo.path, 'deltas');
  const out: DeltaRef[] = [];
  let tops: string[];
  try {
    tops = fs.readdirSync(root).sort();
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return out;
    throw e;
  }
  for (const a of tops) {
    if (a.length !== 2) continue;
    for (const b of fs.readdirSync(path.join(root, a)).sort()) {
      const dir = path.join(root, a, b);
      if (!fs.existsSync(path.join(dir, 'superblock'))) continue;
      try {
        const { from, to } = parseDeltaRelDir(`deltas/${a}/${b}`);
        out.push({ from, to, name: deltaName(from, to), dir });
      } catch {
        // not a delta directory (e.g. a leftover temp dir): skip it
      }
    }
  }
  return out;
}

export function findDelta(repo: Repo, from: Checksum | null, to: Checksum): DeltaRef {
  const dir = deltaDir(repo, from, to);
  if (!fs.existsSync(path.join(dir, 'superblock'))) {
    throw new DeltaNotFoundError(`no static delta ${deltaName(from, to)} in ${repo.path}`, { path: dir });
  }
  return { from, to, name: deltaName(from, to), dir };
}

export function deleteDelta(repo: Repo, from: Checksum | null, to: Checksum): void {
  const d = findDelta(repo, from, to);
  fs.rmSync(d.dir, { recursive: true, force: true });
  updateDeltaIndex(repo, to);
}

/** Rewrites delta-indexes/<to>.index from the deltas present (removed when none are left). */
export function updateDeltaIndex(repo: Repo, to: Checksum): void {
  const entries = new Map<string, Checksum>();
  for (const d of listDeltas(repo)) {
    if (d.to !== to) continue;
    entries.set(d.name, sha256(fs.readFileSync(path.join(d.dir, 'superblock'))));
  }
  const p = path.join(repo.path, deltaIndexRelPath(to));
  if (entries.size === 0) {
    fs.rmSync(p, { force: true });
    return;
  }
  writeFileAtomic(p, serializeDeltaIndex(entries), { durable: repo.durable });
}
