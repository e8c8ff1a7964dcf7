/**
 * `summary -u`: writes the repository's summary file (spec §3.3) and, when static deltas exist,
 * the per-target delta indexes (spec §5.7), as `ostree summary -u` does. Regenerating the
 * summary deletes summary.sig, which no longer matches.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Summary, type SummaryDelta, deltaIndexRelPath, parseSummary, serializeSummary, sha256 } from '../format/index.js';
import { FormatError, ObjectCorruptError } from '../errors.js';
import { listDeltas, updateDeltaIndex } from './delta-store.js';
import { isErrno, readFileIfExists, writeFileAtomic } from './fsutil.js';
import { commitVersion } from './inspect.js';
import { listRefs } from './refs.js';
import type { Repo } from './repo.js';

const MODE_ON_DISK: Record<string, string> = { archive: 'archive-z2' };

/** Static deltas present under deltas/, with the checksums of their superblock files. */
function deltasWithChecksums(repo: Repo): SummaryDelta[] {
  return listDeltas(repo).map((d) => ({ from: d.from, to: d.to, superblockChecksum: sha256(fs.readFileSync(path.join(d.dir, 'superblock'))) }));
}

export interface SummaryUpdateResult {
  refs: number;
  deltas: number;
  bytes: number;
}

/** Regenerates `summary` from refs/heads (and deltas/), removing a stale summary.sig. */
export function updateSummary(repo: Repo, opts: { now?: bigint } = {}): SummaryUpdateResult {
  const refs = [...listRefs(repo)]
    .filter(([name]) => !name.includes(':'))
    .map(([name, commit]) => {
      let size: number;
      try {
        size = fs.statSync(repo.objectPath(commit, 'commit')).size;
      } catch (e) {
        if (isErrno(e, 'ENOENT')) throw new ObjectCorruptError(`ref ${name} points to missing commit ${commit}`, { ref: name, object: commit });
        throw e;
      }
      const c = repo.loadCommit(commit);
      return { name, commit, commitSize: size, timestamp: c.timestamp, version: commitVersion(c) ?? null };
    });
  const noDeltas = repo.config.getBoolean('core', 'no-deltas-in-summary', false);
  const deltas = deltasWithChecksums(repo);
  const bytes = serializeSummary({
    refs,
    lastModified: opts.now ?? BigInt(Math.floor(Date.now() / 1000)),
    mode: MODE_ON_DISK[repo.mode] ?? repo.mode,
    tombstoneCommits: repo.config.getBoolean('core', 'tombstone-commits', false),
    deltas: noDeltas ? [] : deltas,
  });
  writeDeltaIndexes(repo, deltas);
  fs.rmSync(path.join(repo.path, 'summary.sig'), { force: true });
  writeFileAtomic(path.join(repo.path, 'summary'), bytes, { durable: repo.durable });
  return { refs: refs.length, deltas: deltas.length, bytes: bytes.length };
}

function writeDeltaIndexes(repo: Repo, deltas: readonly SummaryDelta[]): void {
  const targets = new Set(deltas.map((d) => d.to));
  const want = new Set<string>();
  for (const to of targets) {
    want.add(deltaIndexRelPath(to));
    updateDeltaIndex(repo, to);
  }
  // drop indexes of deltas that were deleted
  const root = path.join(repo.path, 'delta-indexes');
  if (fs.existsSync(root)) {
    for (const pre of fs.readdirSync(root)) {
      const d = path.join(root, pre);
      if (!fs.statSync(d).isDirectory()) continue;
      for (const f of fs.readdirSync(d)) {
        if (f.endsWith('.index') && !want.has(`delta-indexes/${pre}/${f}`)) fs.rmSync(path.join(d, f), { force: true });
      }
    }
  }
  if (targets.size > 0 && !repo.config.getBoolean('core', 'indexed-deltas', false)) {
    repo.config.set('core', 'indexed-deltas', 'true');
    repo.saveConfig();
  }
}

/** Reads and parses the repository's own summary file (null when there is none). */
export function readSummary(repo: Repo): { bytes: Buffer; summary: Summary } | null {
  const p = path.join(repo.path, 'summary');
  const bytes = readFileIfExists(p);
  if (!bytes) return null;
  try {
    return { bytes, summary: parseSummary(bytes) };
  } catch (e) {
    if (e instanceof FormatError) throw new ObjectCorruptError(`${p}: summary is corrupt: ${e.message}`, { path: p, cause: e });
    throw e;
  }
}
