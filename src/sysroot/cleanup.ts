/**
 * Cleanup (ostree-sysroot-cleanup.c): everything the current deployment list does not use goes —
 * deployment directories and origins, the other bootversion's loader and bootlinks, kernels
 * under /boot/ostree, then repo objects no ref reaches (after the internal
 * `ostree/<B>/<S>/<index>` refs that keep deployed commits alive are rewritten).
 * Only ever removes what the *current* state does not reference, so it is safe to kill anywhere.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deleteRef, listRefs, prune, setRef } from '../repo/index.js';
import { deploymentName } from './deployments-plan.js';
import { isErrno, removeTree } from './fsops.js';
import type { SysrootOptions, SysrootState } from './sysroot.js';

export interface CleanupResult {
  readonly deploymentsRemoved: number;
  readonly bootDirsRemoved: number;
  readonly objectsPruned: number;
  readonly bytesFreed: number;
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return [];
    throw e;
  }
}

/** Rewrites the refs that keep the deployed commits in the repo: ostree/<B>/<S>/<index>. */
export function writeDeploymentRefs(st: SysrootState): void {
  const want = new Map<string, string>();
  st.deployments.forEach((d, i) => want.set(`ostree/${st.bootversion}/${st.subbootversion}/${i}`, d.csum));
  const have = listRefs(st.repo);
  for (const [name, csum] of want) if (have.get(name) !== csum) setRef(st.repo, null, name, csum as never);
  for (const name of have.keys()) if (name.startsWith('ostree/') && !want.has(name)) deleteRef(st.repo, null, name);
  // drop the empty directories deleteRef leaves behind
  const refsOstree = path.join(st.repo.path, 'refs/heads/ostree');
  const prune = (d: string): void => {
    for (const n of list(d)) {
      const p = path.join(d, n);
      if (fs.lstatSync(p).isDirectory()) {
        prune(p);
        if (list(p).length === 0) fs.rmdirSync(p);
      }
    }
  };
  prune(refsOstree);
}

export function cleanupSysroot(st: SysrootState, opts: SysrootOptions = {}, what: { prune?: boolean } = {}): CleanupResult {
  const S = st.path;
  let deploymentsRemoved = 0;
  let bootDirsRemoved = 0;

  // deployment directories and origins nobody references
  const live = new Set(st.deployments.map((d) => `${d.stateroot}/${deploymentName(d)}`));
  for (const os of list(path.join(S, 'ostree/deploy'))) {
    const dir = path.join(S, 'ostree/deploy', os, 'deploy');
    for (const n of list(dir)) {
      const base = n.endsWith('.origin') ? n.slice(0, -'.origin'.length) : n;
      if (live.has(`${os}/${base}`)) continue;
      if (!/^[0-9a-f]{64}\.\d+$/.test(base) && !n.startsWith('.tmp-')) continue;
      const p = path.join(dir, n);
      if (n.endsWith('.origin') || n.startsWith('.tmp-')) fs.rmSync(p, { force: true, recursive: true });
      else {
        removeTree(p);
        deploymentsRemoved++;
      }
    }
  }

  // the other bootversion, the other bootlink sub-version, temporary links
  const B = st.bootversion;
  const other = 1 - B;
  for (const rel of [`boot/loader.${other}`, `ostree/boot.${other}`, `ostree/boot.${other}.0`, `ostree/boot.${other}.1`, `ostree/boot.${B}.${1 - st.subbootversion}`]) {
    fs.rmSync(path.join(S, rel), { recursive: true, force: true });
  }
  for (const dir of ['boot', 'ostree']) {
    for (const n of list(path.join(S, dir))) if (n.startsWith('.tmp-')) fs.rmSync(path.join(S, dir, n), { recursive: true, force: true });
  }
  for (const n of list(path.join(S, `boot/loader.${B}/entries`))) {
    if (n.startsWith('.tmp-')) fs.rmSync(path.join(S, `boot/loader.${B}/entries`, n), { force: true });
  }

  // kernels no deployment uses (a staged deployment's kernel is installed at finalization)
  const kernels = new Set(st.deployments.map((d) => `${d.stateroot}-${d.bootcsum}`));
  for (const n of list(path.join(S, 'boot/ostree'))) {
    const p = path.join(S, 'boot/ostree', n);
    if (kernels.has(n)) {
      for (const f of list(p)) if (f.startsWith('.tmp-')) fs.rmSync(path.join(p, f), { force: true });
      continue;
    }
    fs.rmSync(p, { recursive: true, force: true });
    bootDirsRemoved++;
  }

  writeDeploymentRefs(st);
  let objectsPruned = 0;
  let bytesFreed = 0;
  if (what.prune !== false) {
    const r = prune(st.repo, { refsOnly: true, depth: 0 });
    objectsPruned = r.deleted;
    bytesFreed = r.freedBytes;
    if (objectsPruned > 0) opts.log?.(`Freed objects: ${objectsPruned} (${bytesFreed} bytes)`);
  }
  return { deploymentsRemoved, bootDirsRemoved, objectsPruned, bytesFreed };
}
