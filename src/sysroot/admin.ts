/**
 * The remaining admin operations: init-fs, os-init, rollback, undeploy, pin, set-origin, kargs,
 * bless, cleanup and status. Each one loads the sysroot, computes the new state with the pure
 * planners and writes it through write.ts (new files, fsync, one rename).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KeyFile } from '../format/index.js';
import { Repo, parseRefspec } from '../repo/index.js';
import { SysrootRefusedError, UsageError } from '../errors.js';
import { blessedFileName, parseEntryFileName } from './boot-counting.js';
import { cleanupSysroot, type CleanupResult } from './cleanup.js';
import { type Deployment, deploymentName, planRollbackList, planUndeployList, rollbackTarget, sameDeployment } from './deployments-plan.js';
import { type KargEdits, applyKargEdits, commitList, pickStateroot, requireIndex, withLock, writeOrigin } from './deploy.js';
import { fsyncPath } from './fsops.js';
import { detectBootloader } from './bootloader/index.js';
import {
  type SysrootOptions, type SysrootState, loadSysroot, mergeDeployment, originRefspec, parseOrigin, originPath,
  pendingAndRollback,
} from './sysroot.js';
import type { WriteResult } from './write.js';

/** `admin init-fs DIR`: the top-level directories of a physical root and a bare system repo. */
export function initFs(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const dirs: [string, number][] = [
    ['boot', 0o755], ['dev', 0o755], ['home', 0o755], ['proc', 0o755], ['root', 0o700], ['run', 0o755], ['sys', 0o755],
    ['tmp', 0o1777], ['ostree', 0o755], ['ostree/deploy', 0o755],
  ];
  for (const [d, mode] of dirs) {
    const p = path.join(dir, d);
    fs.mkdirSync(p, { recursive: true });
    fs.chmodSync(p, mode);
  }
  const repo = path.join(dir, 'ostree/repo');
  if (!fs.existsSync(path.join(repo, 'config'))) Repo.init(repo, { mode: 'bare' });
}

/** `admin os-init OSNAME`: the stateroot with its shared /var. */
export function osInit(sysroot: string, osname: string): void {
  if (!/^[A-Za-z0-9_][-A-Za-z0-9_.]*$/.test(osname)) throw new UsageError(`invalid OS name "${osname}"`);
  loadSysroot(sysroot);
  const root = path.join(sysroot, 'ostree/deploy', osname);
  const v = path.join(root, 'var');
  for (const [d, mode] of [['', 0o755], ['tmp', 0o1777], ['lib', 0o755], ['log', 0o755]] as const) {
    const p = path.join(v, d);
    fs.mkdirSync(p, { recursive: true });
    fs.chmodSync(p, mode);
  }
  for (const [name, target] of [['run', '../run'], ['lock', '../run/lock']]) {
    try {
      fs.symlinkSync(target!, path.join(v, name!));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  fs.mkdirSync(path.join(root, 'deploy'), { recursive: true });
}

export interface ListChange {
  readonly write: WriteResult;
  readonly cleanup: CleanupResult;
  readonly deployments: readonly Deployment[];
}

/** Makes the rollback deployment the default (rpm-ostree's rollback: a reordering). */
export function rollback(sysroot: string, o: { os?: string }, opts: SysrootOptions = {}): Promise<ListChange & { target: Deployment }> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const os = pickStateroot(st, o.os);
    const target = rollbackTarget(st.deployments, st.booted, os);
    if (!target) throw new SysrootRefusedError(`no rollback deployment for "${os}": there is only one deployment`);
    const list = planRollbackList(st.deployments, target);
    const r = commitList(st, list, opts);
    return { ...r, target, deployments: loadSysroot(sysroot, opts).deployments };
  });
}

export function undeploy(sysroot: string, index: number, opts: SysrootOptions = {}): Promise<ListChange & { removed: Deployment }> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const d = requireIndex(st, index);
    if (sameDeployment(d, st.booted)) throw new SysrootRefusedError(`cannot undeploy the booted deployment (index ${index})`);
    const list = d.staged ? st.deployments.filter((x) => !x.staged) : planUndeployList(st.deployments, index);
    const r = commitList(st, list, opts);
    return { ...r, removed: d, deployments: loadSysroot(sysroot, opts).deployments };
  });
}

export function pin(sysroot: string, index: number, on: boolean, opts: SysrootOptions = {}): Promise<Deployment> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const d = requireIndex(st, index);
    if (d.staged) throw new SysrootRefusedError(`cannot pin the staged deployment (index ${index}); finalize it first`);
    const kf = d.originText !== null ? parseOrigin(d.originText, originPath(sysroot, d)) : new KeyFile();
    if (on) kf.set('libostree-transient', 'pinned', 'true');
    else {
      kf.remove('libostree-transient', 'pinned');
      if (kf.keys('libostree-transient').length === 0) kf.remove('libostree-transient');
    }
    writeOrigin(sysroot, d, kf, opts);
    return { ...d, pinned: on, originText: kf.toString() };
  });
}

/**
 * `admin set-origin REMOTE URL [BRANCH]` (ostree's): adds the remote to the system repo and points
 * the deployment's origin at REMOTE:BRANCH (BRANCH defaults to the origin's current ref).
 */
export function setOrigin(sysroot: string, o: { remote: string; url: string; branch?: string; index?: number; set?: readonly [string, string][] }, opts: SysrootOptions = {}): Promise<Deployment> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const d = o.index !== undefined ? requireIndex(st, o.index) : (st.booted ?? st.deployments.find((x) => !x.staged) ?? requireIndex(st, 0));
    const cur = originRefspec(d);
    const branch = o.branch ?? (cur ? parseRefspec(cur).ref : undefined);
    if (!branch) throw new UsageError('the deployment has no origin ref; give the BRANCH argument');
    const refspec = `${o.remote}:${branch}`;
    parseRefspec(refspec);
    st.repo.config.set(`remote "${o.remote}"`, 'url', o.url);
    for (const [k, v] of o.set ?? []) st.repo.config.set(`remote "${o.remote}"`, k, v);
    st.repo.saveConfig();
    const kf = d.originText !== null ? parseOrigin(d.originText, originPath(sysroot, d)) : new KeyFile();
    kf.set('origin', 'refspec', refspec);
    writeOrigin(sysroot, d, kf, opts);
    return { ...d, originText: kf.toString() };
  });
}

/** Changes one deployment's kernel arguments (a new bootversion with the edited entry). */
export function editKargs(sysroot: string, index: number | undefined, edits: KargEdits, opts: SysrootOptions = {}): Promise<ListChange & { deployment: Deployment }> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const d = index !== undefined ? requireIndex(st, index) : (st.booted ?? requireIndex(st, 0));
    if (d.staged) throw new SysrootRefusedError('cannot change the kernel arguments of a staged deployment');
    const kargs = applyKargEdits(d.kargs, edits);
    const list = st.deployments.filter((x) => !x.staged).map((x) => (sameDeployment(x, d) ? { ...x, kargs } : x));
    const r = commitList(st, list, opts);
    return { ...r, deployment: { ...d, kargs }, deployments: loadSysroot(sysroot, opts).deployments };
  });
}

export interface BlessResult {
  readonly deployment: Deployment;
  readonly from: string;
  readonly to: string;
  readonly already: boolean;
}

/** Marks the booted deployment's entry good: `NAME+LEFT-DONE.conf` → `NAME.conf` (systemd-bless-boot). */
export function bless(sysroot: string, opts: SysrootOptions = {}): Promise<BlessResult> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const d = st.booted;
    if (!d) throw new SysrootRefusedError('not booted into a deployment of this sysroot; nothing to bless');
    const from = d.entryFile!;
    const to = blessedFileName(from);
    const backend = detectBootloader(sysroot, st.repo.config.get('sysroot', 'bootloader'));
    const envChanged = backend.bless?.(sysroot, opts.fsync !== false) ?? false;
    if (from === to) return { deployment: d, from, to, already: !envChanged };
    const dir = path.join(sysroot, `boot/loader.${st.bootversion}/entries`);
    fs.renameSync(path.join(dir, from), path.join(dir, to));
    if (opts.fsync !== false) fsyncPath(dir);
    return { deployment: { ...d, entryFile: to }, from, to, already: false };
  });
}

export function cleanup(sysroot: string, opts: SysrootOptions = {}): Promise<CleanupResult> {
  return withLock(sysroot, async () => cleanupSysroot(loadSysroot(sysroot, opts), opts));
}

export interface DeploymentStatus {
  readonly index: number;
  readonly stateroot: string;
  readonly checksum: string;
  readonly serial: number;
  readonly name: string;
  readonly refspec: string | null;
  readonly origin: 'none' | 'refspec' | 'unknown';
  readonly version: string | null;
  readonly booted: boolean;
  readonly pending: boolean;
  readonly rollback: boolean;
  readonly staged: boolean;
  readonly pinned: boolean;
  readonly kargs: readonly string[];
  readonly bootEntry: string | null;
  /** Boot counting: null when the entry carries no counter (blessed, or counting off). */
  readonly triesLeft: number | null;
  readonly triesDone: number | null;
  readonly blessed: boolean | null;
}

export function status(sysroot: string, opts: SysrootOptions = {}): { deployments: DeploymentStatus[]; state: SysrootState } {
  const st = loadSysroot(sysroot, opts);
  const { pending, rollback: rb } = pendingAndRollback(st);
  const backend = detectBootloader(sysroot, st.repo.config.get('sysroot', 'bootloader'));
  const firstListed = st.deployments.findIndex((d) => !d.staged);
  const deployments = st.deployments.map((d, index): DeploymentStatus => {
    let n = d.entryFile ? parseEntryFileName(d.entryFile) : null;
    if (n && !backend.countsInEntryNames && index === firstListed) {
      const left = backend.triesLeft?.(sysroot) ?? null;
      if (left !== null) n = { id: n.id, triesLeft: left, triesDone: 0 };
    }
    const refspec = originRefspec(d);
    return {
      index, stateroot: d.stateroot, checksum: d.csum, serial: d.deployserial, name: deploymentName(d), refspec,
      origin: d.originText === null ? 'none' : refspec === null ? 'unknown' : 'refspec',
      version: d.version ?? null, booted: sameDeployment(d, st.booted), pending: sameDeployment(d, pending),
      rollback: sameDeployment(d, rb), staged: d.staged, pinned: d.pinned, kargs: d.kargs, bootEntry: d.entryFile,
      triesLeft: n?.triesLeft ?? null, triesDone: n?.triesLeft === undefined ? null : (n.triesDone ?? 0),
      blessed: d.entryFile === null ? null : n?.triesLeft === undefined,
    };
  });
  return { deployments, state: st };
}

export { mergeDeployment };
