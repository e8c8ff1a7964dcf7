/** Read-only views of a repo: log, ls, cat, diff. */
import type { Readable } from 'node:stream';
import { type Checksum, type Commit, type FileMeta, S_IFLNK, S_IFMT, metaGet } from '../format/index.js';
import { CheckoutError } from '../errors.js';
import { resolveRev } from './refs.js';
import type { Repo } from './repo.js';

export interface LogEntry {
  checksum: Checksum;
  commit: Commit;
  /** Present when the parent is referenced but not in the repo. */
  truncated: boolean;
}

export function log(repo: Repo, rev: string): LogEntry[] {
  const out: LogEntry[] = [];
  let c: Checksum | null = resolveRev(repo, rev);
  const seen = new Set<Checksum>();
  while (c && !seen.has(c)) {
    seen.add(c);
    const commit = repo.loadCommit(c);
    const parent = commit.parent;
    const truncated = parent !== null && !repo.hasObject(parent, 'commit');
    out.push({ checksum: c, commit, truncated });
    c = truncated ? null : parent;
  }
  return out;
}

export function commitVersion(c: Commit): string | undefined {
  const v = metaGet(c.metadata, 'version');
  return v && v.type === 's' ? (v.value as string) : undefined;
}

export interface LsEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  checksum: Checksum;
  /** dirmeta checksum for directories */
  metaChecksum?: Checksum;
  target?: string;
}

type Node = { kind: 'dir'; tree: Checksum; meta: Checksum } | { kind: 'file'; checksum: Checksum };

function resolvePath(repo: Repo, commit: Commit, p: string): Node {
  let node: Node = { kind: 'dir', tree: commit.rootTree, meta: commit.rootMeta };
  for (const part of p.split('/').filter(Boolean)) {
    if (node.kind !== 'dir') throw new CheckoutError(`${p}: not a directory`, { path: p });
    const t = repo.loadDirtree(node.tree);
    const d = t.dirs.find((x) => x.name === part);
    const f = t.files.find((x) => x.name === part);
    if (d) node = { kind: 'dir', tree: d.tree, meta: d.meta };
    else if (f) node = { kind: 'file', checksum: f.checksum };
    else throw new CheckoutError(`${p}: no such file or directory`, { path: p });
  }
  return node;
}

function dirEntry(p: string, tree: Checksum, meta: Checksum, m: FileMeta): LsEntry {
  return { path: p, type: 'dir', mode: m.mode, uid: m.uid, gid: m.gid, size: 0, checksum: tree, metaChecksum: meta };
}

function fileEntry(repo: Repo, p: string, csum: Checksum): LsEntry {
  const o = repo.openContent(csum);
  const isLink = (o.header.mode & S_IFMT) === S_IFLNK;
  return {
    path: p, type: isLink ? 'symlink' : 'file', mode: o.header.mode, uid: o.header.uid, gid: o.header.gid,
    size: o.size, checksum: csum, ...(isLink ? { target: o.header.symlinkTarget } : {}),
  };
}

/** Lists a path in a commit like `ostree ls`: the entry itself, then its children (all, with recursive). */
export function ls(repo: Repo, rev: string, p = '/', recursive = false): LsEntry[] {
  const commit = repo.loadCommit(resolveRev(repo, rev)!);
  const norm = '/' + p.split('/').filter(Boolean).join('/');
  const node = resolvePath(repo, commit, norm);
  if (node.kind === 'file') return [fileEntry(repo, norm, node.checksum)];
  const out: LsEntry[] = [dirEntry(norm, node.tree, node.meta, repo.loadDirmeta(node.meta))];
  const list = (tree: Checksum, base: string): void => {
    const t = repo.loadDirtree(tree);
    for (const f of t.files) out.push(fileEntry(repo, join(base, f.name), f.checksum));
    for (const d of t.dirs) {
      out.push(dirEntry(join(base, d.name), d.tree, d.meta, repo.loadDirmeta(d.meta)));
      if (recursive) list(d.tree, join(base, d.name));
    }
  };
  list(node.tree, norm);
  return out;
}

function join(base: string, name: string): string {
  return base === '/' ? `/${name}` : `${base}/${name}`;
}

/** Streams the content of a regular file in a commit. */
export function cat(repo: Repo, rev: string, p: string): Readable {
  const commit = repo.loadCommit(resolveRev(repo, rev)!);
  const node = resolvePath(repo, commit, p);
  if (node.kind !== 'file') throw new CheckoutError(`${p}: is a directory`, { path: p });
  return repo.openContent(node.checksum).stream();
}

export interface DiffEntry {
  kind: 'A' | 'D' | 'M';
  path: string;
}

/** Paths added, deleted or modified between two commits (by object checksum, as ostree diff). */
export function diff(repo: Repo, revA: string, revB: string): DiffEntry[] {
  const a = repo.loadCommit(resolveRev(repo, revA)!);
  const b = repo.loadCommit(resolveRev(repo, revB)!);
  const out: DiffEntry[] = [];
  const walkAll = (tree: Checksum, base: string, kind: 'A' | 'D'): void => {
    const t = repo.loadDirtree(tree);
    for (const f of t.files) out.push({ kind, path: join(base, f.name) });
    for (const d of t.dirs) {
      out.push({ kind, path: join(base, d.name) });
      walkAll(d.tree, join(base, d.name), kind);
    }
  };
  const cmp = (ta: Checksum, tb: Checksum, base: string): void => {
    if (ta === tb) return;
    const x = repo.loadDirtree(ta);
    const y = repo.loadDirtree(tb);
    const yf = new Map(y.files.map((f) => [f.name, f.checksum]));
    const xf = new Map(x.files.map((f) => [f.name, f.checksum]));
    const yd = new Map(y.dirs.map((d) => [d.name, d]));
    const xd = new Map(x.dirs.map((d) => [d.name, d]));
    for (const f of x.files) {
      const other = yf.get(f.name);
      if (other === undefined) {
        const od = yd.get(f.name);
        out.push({ kind: 'D', path: join(base, f.name) });
        if (od) {
          out.push({ kind: 'A', path: join(base, f.name) });
          walkAll(od.tree, join(base, f.name), 'A');
        }
      } else if (other !== f.checksum) out.push({ kind: 'M', path: join(base, f.name) });
    }
    for (const f of y.files) if (!xf.has(f.name) && !xd.has(f.name)) out.push({ kind: 'A', path: join(base, f.name) });
    for (const d of x.dirs) {
      const od = yd.get(d.name);
      if (!od) {
        out.push({ kind: 'D', path: join(base, d.name) });
        walkAll(d.tree, join(base, d.name), 'D');
        if (yf.has(d.name)) out.push({ kind: 'A', path: join(base, d.name) });
        continue;
      }
      if (od.meta !== d.meta) out.push({ kind: 'M', path: join(base, d.name) });
      cmp(d.tree, od.tree, join(base, d.name));
    }
    for (const d of y.dirs) {
      if (!xd.has(d.name) && !xf.has(d.name)) {
        out.push({ kind: 'A', path: join(base, d.name) });
        walkAll(d.tree, join(base, d.name), 'A');
      }
    }
  };
  if (a.rootMeta !== b.rootMeta) out.push({ kind: 'M', path: '/' });
  cmp(a.rootTree, b.rootTree, '/');
  // ostree lists modified, then removed, then added paths
  const order = { M: 0, D: 1, A: 2 };
  return out.map((e, i) => ({ e, i })).sort((x, y) => order[x.e.kind] - order[y.e.kind] || x.i - y.i).map((x) => x.e);
}
