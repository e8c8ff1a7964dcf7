/**
 * `prune`: deletes objects no root reaches. Roots are the refs (--refs-only) or every commit
 * in the repo (default), each followed --depth parents (-1: all). Unreachable commits are
 * deleted before the objects they reference, so a prune killed half-way never leaves a
 * present commit with missing objects.
 */
import * as fs from 'node:fs';
import type { Checksum, ObjectType } from '../format/index.js';
import { ObjectNotFoundError } from '../errors.js';
import { isErrno } from './fsutil.js';
import { listRefs } from './refs.js';
import type { Repo } from './repo.js';

export interface PruneOptions {
  refsOnly?: boolean;
  /** Parents to keep behind each root; -1 (default) keeps the whole history. */
  depth?: number;
  /** Only count what would be deleted. */
  noPrune?: boolean;
  /** Commits to delete outright (their ref must not point at them). */
  deleteCommits?: Checksum[];
}

export interface PruneResult {
  total: number;
  deleted: number;
  freedBytes: number;
}

export function reachableObjects(repo: Repo, roots: Iterable<Checksum>, depth: number): Set<string> {
  const keep = new Set<string>();
  const walkTree = (tree: Checksum, meta: Checksum): void => {
    keep.add(`${meta}.dirmeta`);
    if (keep.has(`${tree}.dirtree`)) return;
    keep.add(`${tree}.dirtree`);
    if (!repo.hasObject(tree, 'dirtree')) return;
    const t = repo.loadDirtree(tree);
    for (const f of t.files) keep.add(`${f.checksum}.file`);
    for (const d of t.dirs) walkTree(d.tree, d.meta);
  };
  for (const root of roots) {
    let c: Checksum | null = root;
    for (let n = 0; c && (depth < 0 || n <= depth); n++) {
      if (keep.has(`${c}.commit`) && n > 0) break;
      if (!repo.hasObject(c, 'commit')) break;
      keep.add(`${c}.commit`);
      keep.add(`${c}.commitmeta`);
      const commit = repo.loadCommit(c);
      walkTree(commit.rootTree, commit.rootMeta);
      c = commit.parent;
    }
  }
  return keep;
}

const ORDER: Record<ObjectType, number> = { commit: 0, commitmeta: 1, 'tombstone-commit': 2, dirtree: 3, dirmeta: 4, file: 5 };

export function prune(repo: Repo, opts: PruneOptions = {}): PruneResult {
  const refs = listRefs(repo);
  const all = [...repo.listObjects()];
  for (const c of opts.deleteCommits ?? []) {
    if (!repo.hasObject(c, 'commit')) throw new ObjectNotFoundError(`commit ${c} is not in the repository`, { object: c });
    for (const [name, target] of refs) {
      if (target === c) throw new ObjectNotFoundError(`commit ${c} is the target of ref ${name}; delete the ref first`, { object: c, ref: name });
    }
  }
  const deleted = new Set(opts.deleteCommits ?? []);
  const roots = opts.refsOnly ? [...refs.values()] : all.filter((o) => o.type === 'commit').map((o) => o.checksum);
  const keep = reachableObjects(repo, roots.filter((c) => !deleted.has(c)), opts.depth ?? -1);
  for (const c of deleted) {
    keep.delete(`${c}.commit`);
    keep.delete(`${c}.commitmeta`);
  }
  const doomed = all
    .filter((o) => o.type !== 'tombstone-commit' && !keep.has(`${o.checksum}.${o.type}`))
    .sort((a, b) => ORDER[a.type] - ORDER[b.type]);
  let freed = 0;
  for (const o of doomed) {
    try {
      freed += fs.lstatSync(o.path).size;
      if (!opts.noPrune) fs.unlinkSync(o.path);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e;
    }
  }
  return { total: all.length, deleted: doomed.length, freedBytes: freed };
}
