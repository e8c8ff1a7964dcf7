/** Applying the /etc three-way merge (plan in etc-merge-plan.ts) on disk. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type EtcMergePlan, type EtcNode, type EtcSnapshot, planEtcMerge } from './etc-merge-plan.js';
import { copyNode, isErrno } from './fsops.js';

/** Snapshot of a directory tree for the merge (xattrs ignored, as ostree does). */
export function snapshotEtc(root: string): EtcSnapshot {
  const out = new Map<string, EtcNode>();
  const walk = (dir: string, rel: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return;
      throw e;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = fs.lstatSync(p);
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isSymbolicLink()) out.set(r, { type: 'symlink', ...base, target: fs.readlinkSync(p) });
      else if (st.isDirectory()) {
        out.set(r, { type: 'dir', ...base });
        walk(p, r);
      } else if (st.isFile()) out.set(r, { type: 'file', ...base, hash: createHash('sha256').update(fs.readFileSync(p)).digest('hex') });
    }
  };
  walk(root, '');
  return out;
}

/** Makes the parents of `rel` exist in `dest`, taking their metadata from `src`. */
function ensureParents(src: string, dest: string, rel: string): void {
  const parts = rel.split('/').slice(0, -1);
  let cur = '';
  for (const part of parts) {
    cur = cur ? `${cur}/${part}` : part;
    const d = path.join(dest, cur);
    const st = fs.lstatSync(d, { throwIfNoEntry: false });
    if (st?.isDirectory()) continue;
    if (st) fs.rmSync(d, { recursive: true, force: true });
    const s = fs.lstatSync(path.join(src, cur));
    fs.mkdirSync(d, { mode: s.mode & 0o7777 });
    fs.chownSync(d, s.uid, s.gid);
    fs.chmodSync(d, s.mode & 0o7777);
  }
}

export interface EtcMergeResult {
  readonly modified: number;
  readonly removed: number;
  readonly added: number;
}

/**
 * Merges the admin's changes (merge deployment: `usr/etc` → `etc`) into `newEtc`. Idempotent:
 * running it again over a half-merged `newEtc` gives the same result, which is what lets
 * finalize-staged be re-run after a crash.
 */
export function mergeEtc(oldDefaults: string, current: string, newEtc: string): EtcMergeResult {
  const plan: EtcMergePlan = planEtcMerge(snapshotEtc(oldDefaults), snapshotEtc(current));
  for (const rel of [...plan.removed].reverse()) fs.rmSync(path.join(newEtc, rel), { recursive: true, force: true });
  const dirsOnly = new Set(plan.modifiedDirs);
  for (const rel of [...plan.added, ...plan.modified].sort()) {
    const src = path.join(current, rel);
    const dest = path.join(newEtc, rel);
    ensureParents(current, newEtc, rel);
    if (dirsOnly.has(rel)) {
      const s = fs.lstatSync(src);
      const d = fs.lstatSync(dest, { throwIfNoEntry: false });
      if (!d?.isDirectory()) {
        if (d) fs.rmSync(dest, { recursive: true, force: true });
        fs.mkdirSync(dest);
      }
      fs.chownSync(dest, s.uid, s.gid);
      fs.chmodSync(dest, s.mode & 0o7777);
    } else copyNode(src, dest);
  }
  return { modified: plan.modified.length, removed: plan.removed.length, added: plan.added.length };
}

/** The new deployment's /etc: a plain copy of its `usr/etc` (not hardlinks: /etc is writable). */
export function prepareEtc(deployment: string): void {
  const usrEtc = path.join(deployment, 'usr/etc');
  const etc = path.join(deployment, 'etc');
  if (!fs.existsSync(usrEtc)) return;
  fs.rmSync(etc, { recursive: true, force: true });
  copyNode(usrEtc, etc);
}
