/**
 * `fsck`: every loose object is re-hashed and re-parsed, every commit's tree is walked to find
 * missing objects, every ref must point to a commit that is present.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import {
  type Checksum, type Dirtree, type ObjectType, S_IFLNK, S_IFMT, fileChecksumPrefix, parseCommit, parseDirmeta,
  parseDirtree, parseMetadata, sha256,
} from '../format/index.js';
import { inspectFilezFile, problemMessage } from './object-files.js';
import { listRefs } from './refs.js';
import type { Repo } from './repo.js';
import { SMALL_FILE } from './staging.js';
import { ANY_LANE, runObjectJob, startWriterPool } from './writer-pool.js';

export type FsckProblemKind = 'corrupt' | 'missing' | 'bad-ref' | 'partial';

export interface FsckProblem {
  kind: FsckProblemKind;
  object?: Checksum;
  type?: ObjectType;
  ref?: string;
  message: string;
}

export interface FsckResult {
  objects: number;
  commits: number;
  problems: FsckProblem[];
}

export interface FsckOptions {
  onProgress?: (p: { checked: number; total: number }) => void;
  concurrency?: number;
}

export async function fsck(repo: Repo, opts: FsckOptions = {}): Promise<FsckResult> {
  const problems: FsckProblem[] = [];
  const present = new Set<string>();
  const dirtrees = new Map<Checksum, Dirtree>();
  const commits = new Map<Checksum, ReturnType<typeof parseCommit>>();
  const all = [...repo.listObjects()];
  for (const o of all) present.add(`${o.checksum}.${o.type}`);
  let checked = 0;

  const checkOne = async (o: { checksum: Checksum; type: ObjectType; path: string }): Promise<void> => {
    try {
      if (o.type === 'file') {
        await verifyLargeContent(repo, o.checksum, o.path);
      } else {
        const bytes = fs.readFileSync(o.path);
        if (o.type === 'commit' || o.type === 'dirtree' || o.type === 'dirmeta') {
          const got = sha256(bytes);
          if (got !== o.checksum) throw new Error(`checksum mismatch, bytes hash to ${got}${bytes.length === 0 ? ' (empty file)' : ''}`);
        }
        if (o.type === 'commit') commits.set(o.checksum, parseCommit(bytes));
        else if (o.type === 'dirtree') dirtrees.set(o.checksum, parseDirtree(bytes));
        else if (o.type === 'dirmeta') parseDirmeta(bytes);
        else parseMetadata(bytes);
      }
    } catch (e) {
      const why = problemMessage(e);
      problems.push({ kind: 'corrupt', object: o.checksum, type: o.type, message: `corrupt ${o.type} object ${o.checksum}: ${why}` });
    }
    checked++;
    if (checked % 256 === 0) opts.onProgress?.({ checked, total: all.length });
  };

  // small content objects go to the worker pool; everything else is checked here
  const pooled = all.filter((o) => o.type === 'file' && fs.lstatSync(o.path).size <= SMALL_FILE);
  const pooledSet = new Set(pooled);
  const rest = all.filter((o) => !pooledSet.has(o));
  // read, inflated (archive) and hashed on the writer pool's workers, 64 at a time, by whichever is free
  if (pooled.length > 256) startWriterPool();
  const batches: Promise<void>[] = [];
  for (let i = 0; i < pooled.length; i += 64) {
    const objects = pooled.slice(i, i + 64).map((o) => ({ path: o.path, csum: o.checksum }));
    batches.push(runObjectJob({ op: 'verify', objects, mode: repo.mode }, ANY_LANE).then((r) => {
      for (const [c, why] of (r as { problems: [Checksum, string][] }).problems) {
        problems.push({ kind: 'corrupt', object: c, type: 'file', message: `corrupt file object ${c}: ${why}` });
      }
      checked += objects.length;
    }));
  }
  const pool = Promise.all(batches);
  const width = opts.concurrency ?? 8;
  let next = 0;
  await Promise.all([
    pool,
    ...Array.from({ length: width }, async () => {
      while (next < rest.length) await checkOne(rest[next++]!);
    }),
  ]);
  opts.onProgress?.({ checked, total: all.length });

  // connectivity: every object a complete commit references must be present
  const walked = new Set<Checksum>();
  const need = (csum: Checksum, type: ObjectType, from: string): boolean => {
    if (present.has(`${csum}.${type}`)) return true;
    problems.push({ kind: 'missing', object: csum, type, message: `missing ${type} object ${csum} (referenced by ${from})` });
    return false;
  };
  const walk = (tree: Checksum, meta: Checksum, from: string): void => {
    need(meta, 'dirmeta', from);
    if (!need(tree, 'dirtree', from) || walked.has(tree)) return;
    walked.add(tree);
    const t = dirtrees.get(tree);
    if (!t) return; // corrupt, already reported
    for (const f of t.files) need(f.checksum, 'file', `dirtree ${tree}`);
    for (const d of t.dirs) walk(d.tree, d.meta, `dirtree ${tree}`);
  };
  for (const [csum, c] of commits) {
    if (repo.isCommitPartial(csum)) continue;
    walk(c.rootTree, c.rootMeta, `commit ${csum}`);
  }
  for (const [name, csum] of listRefs(repo)) {
    if (!present.has(`${csum}.commit`)) {
      problems.push({ kind: 'bad-ref', ref: name, object: csum, message: `ref ${name} points to missing commit ${csum}` });
    }
  }
  return { objects: all.length, commits: commits.size, problems };
}

/**
 * Checks a content object too large for the pool's read-whole jobs, streamed: an archive .filez
 * by inspectFilezFile (the rules a pulled object must pass), a bare one by hashing its content.
 */
async function verifyLargeContent(repo: Repo, csum: Checksum, p: string): Promise<void> {
  if (repo.archive) {
    await inspectFilezFile(csum, p);
    return;
  }
  const obj = repo.openContent(csum);
  const h = createHash('sha256').update(fileChecksumPrefix(obj.header));
  if ((obj.header.mode & S_IFMT) !== S_IFLNK) {
    let n = 0;
    for await (const c of obj.stream()) {
      n += (c as Buffer).length;
      if (n > obj.size) throw new Error(`content is longer than the ${obj.size} bytes its header says`);
      h.update(c as Buffer);
    }
    if (n !== obj.size) throw new Error(`content is ${n} bytes, header says ${obj.size} (truncated)`);
  }
  const got = h.digest('hex');
  if (got !== csum) throw new Error(`checksum mismatch, content hashes to ${got}`);
}
