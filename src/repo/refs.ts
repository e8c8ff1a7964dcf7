/** Refs (spec §3): refs/heads/<ref>, refs/remotes/<remote>/<ref>; rev-parse. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Checksum, isChecksum } from '../format/index.js';
import { RefInvalidError, RefNotFoundError, RepoInvalidError } from '../errors.js';
import { isErrno, writeFileAtomic } from './fsutil.js';
import type { Repo } from './repo.js';

const REF_COMPONENT = /^[\w\d][-._\w\d]*$/;

export function validateRefName(ref: string): void {
  if (ref === '' || !ref.split('/').every((c) => REF_COMPONENT.test(c))) {
    throw new RefInvalidError(`invalid ref name "${ref}"`, { ref });
  }
}

/** Splits "remote:ref" into its parts; remote is null for a local ref. */
export function parseRefspec(spec: string): { remote: string | null; ref: string } {
  const i = spec.indexOf(':');
  const remote = i >= 0 ? spec.slice(0, i) : null;
  const ref = i >= 0 ? spec.slice(i + 1) : spec;
  validateRefName(ref);
  if (remote !== null && !REF_COMPONENT.test(remote)) throw new RefInvalidError(`invalid remote name "${remote}"`, { ref: spec });
  return { remote, ref };
}

function refFile(repo: Repo, remote: string | null, ref: string): string {
  return remote === null ? path.join(repo.path, 'refs/heads', ref) : path.join(repo.path, 'refs/remotes', remote, ref);
}

function readRefFile(p: string, name: string): Checksum | null {
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR') || isErrno(e, 'EISDIR')) return null;
    throw e;
  }
  const c = text.trim();
  if (!isChecksum(c)) throw new RepoInvalidError(`ref ${name} is corrupt (${p})`, { ref: name, path: p });
  return c;
}

/** Resolves a refspec, a full checksum, a unique checksum prefix, or REV^ (parent). */
export function resolveRev(repo: Repo, rev: string, opts: { allowMissing?: boolean } = {}): Checksum | null {
  if (rev.endsWith('^')) {
    const child = resolveRev(repo, rev.slice(0, -1));
    const parent = child ? repo.loadCommit(child).parent : null;
    if (!parent) throw new RefNotFoundError(`${rev}: commit has no parent`, { ref: rev });
    return parent;
  }
  if (isChecksum(rev)) return rev;
  let spec: { remote: string | null; ref: string } | null = null;
  try {
    spec = parseRefspec(rev);
  } catch {
    spec = null;
  }
  if (spec) {
    const c = readRefFile(refFile(repo, spec.remote, spec.ref), rev);
    if (c) return c;
  }
  if (/^[0-9a-f]{4,63}$/.test(rev)) {
    const dir = path.join(repo.path, 'objects', rev.slice(0, 2));
    const matches = (fs.existsSync(dir) ? fs.readdirSync(dir) : [])
      .filter((f) => f.endsWith('.commit') && (rev.slice(0, 2) + f).startsWith(rev))
      .map((f) => (rev.slice(0, 2) + f.slice(0, 62)) as Checksum);
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new RefInvalidError(`checksum prefix "${rev}" is ambiguous`, { ref: rev });
  }
  if (opts.allowMissing) return null;
  if (!spec) throw new RefInvalidError(`invalid ref or checksum "${rev}"`, { ref: rev });
  throw new RefNotFoundError(`ref "${rev}" not found`, { ref: rev });
}

export function setRef(repo: Repo, remote: string | null, ref: string, commit: Checksum): void {
  validateRefName(ref);
  const p = refFile(repo, remote, ref);
  writeFileAtomic(p, commit + '\n', { durable: repo.durable });
}

export function deleteRef(repo: Repo, remote: string | null, ref: string): boolean {
  validateRefName(ref);
  try {
    fs.unlinkSync(refFile(repo, remote, ref));
    return true;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return false;
    throw e;
  }
}

/** All refs: local ones by name, remote ones as "remote:ref". Sorted. */
export function listRefs(repo: Repo): Map<string, Checksum> {
  const out = new Map<string, Checksum>();
  const walk = (dir: string, prefix: string, name: (rel: string) => string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return;
      throw e;
    }
    for (const e of entries) {
      if (e.name.startsWith('.tmp-')) continue;
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), rel, name);
      else {
        const c = readRefFile(path.join(dir, e.name), name(rel));
        if (c) out.set(name(rel), c);
      }
    }
  };
  walk(path.join(repo.path, 'refs/heads'), '', (r) => r);
  const remotesDir = path.join(repo.path, 'refs/remotes');
  for (const remote of fs.existsSync(remotesDir) ? fs.readdirSync(remotesDir) : []) {
    walk(path.join(remotesDir, remote), '', (r) => `${remote}:${r}`);
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
