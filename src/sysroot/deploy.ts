/**
 * Deploying a commit (spec §6.2) and finalizing a staged deployment (§6.6). Order: validate
 * everything (stateroot, commit, kernel, /boot space) before the first write; check out into
 * ostree/deploy/<os>/deploy/<commit>.<serial>; /etc copy and three-way merge; origin; immutable
 * bit; then the new list (write.ts) and cleanup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KeyFile, type Checksum } from '../format/index.js';
import { checkout, resolveRev } from '../repo/index.js';
import { SysrootIndexError, SysrootUnknownOsError, UsageError } from '../errors.js';
import { cleanupSysroot, type CleanupResult } from './cleanup.js';
import {
  type Deployment, allocateDeployserial, assignBootserials, deploymentName, planDeployList, sameDeployment,
} from './deployments-plan.js';
import { type EtcMergeResult, mergeEtc, prepareEtc } from './etc-merge-apply.js';
import { removeTree, setImmutable, syncFilesystem, writeFileDurable } from './fsops.js';
import { appendKarg, deleteKarg, replaceKarg } from './kargs.js';
import { kernelInCommit, kernelInDir } from './kernel.js';
import {
  STAGED_FILE, type SysrootOptions, type SysrootState, deployDir, loadSysroot, lockSysroot, mergeDeployment, originPath,
  writeStagedFile,
} from './sysroot.js';
import { bootBytesNeeded, checkBootSpace, writeDeployments, type WriteResult } from './write.js';

export interface KargEdits {
  readonly replace?: readonly string[];
  readonly append?: readonly string[];
  readonly delete?: readonly string[];
}

export interface DeployOptions {
  /** Stateroot; default: the booted one, else the only one there is. */
  readonly os?: string;
  /** Ref, remote:ref or commit checksum in the sysroot repo. */
  readonly rev: string;
  readonly kargs?: KargEdits;
  readonly stage?: boolean;
  readonly retain?: boolean;
  readonly notAsDefault?: boolean;
}

export interface DeployResult {
  readonly deployment: Deployment;
  readonly etc: EtcMergeResult | null;
  readonly write: WriteResult | null;
  readonly cleanup: CleanupResult | null;
}

export function applyKargEdits(base: readonly string[], e: KargEdits | undefined): string[] {
  let k = [...base];
  for (const a of e?.replace ?? []) k = replaceKarg(k, a);
  for (const a of e?.append ?? []) k = appendKarg(k, a);
  for (const a of e?.delete ?? []) k = deleteKarg(k, a);
  return k;
}

export function hasKargEdits(e: KargEdits | undefined): boolean {
  return !!e && ((e.replace?.length ?? 0) + (e.append?.length ?? 0) + (e.delete?.length ?? 0)) > 0;
}

export function pickStateroot(st: SysrootState, os: string | undefined): string {
  const root = path.join(st.path, 'ostree/deploy');
  const known = fs.existsSync(root) ? fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, 'var'))) : [];
  const name = os ?? st.booted?.stateroot ?? (known.length === 1 ? known[0] : undefined);
  if (name === undefined) {
    throw new UsageError(known.length === 0 ? 'no stateroot exists; run "cairn admin os-init OSNAME" first' : `--os is required (stateroots: ${known.join(', ')})`);
  }
  if (!known.includes(name)) {
    throw new SysrootUnknownOsError(`unknown OS "${name}": no stateroot ${path.join(root, name)}; run "cairn admin os-init ${name}" first`, { path: path.join(root, name) });
  }
  return name;
}

function withLock<T>(sysroot: string, fn: () => Promise<T>): Promise<T> {
  const unlock = lockSysroot(sysroot);
  return fn().finally(unlock);
}

export function deploy(sysroot: string, o: DeployOptions, opts: SysrootOptions = {}): Promise<DeployResult> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const stateroot = pickStateroot(st, o.os);
    const csum = resolveRev(st.repo, o.rev)! as Checksum;
    st.repo.loadCommit(csum);
    const kernel = await kernelInCommit(st.repo, csum);
    const merge = mergeDeployment(st, stateroot);
    const deployserial = allocateDeployserial(st.deployments, stateroot, csum);
    // kernel arguments start from the merge deployment's (ostree's default), then the edits
    const base = merge?.kargs ?? [];
    const origin = new KeyFile();
    origin.set('origin', 'refspec', o.rev);
    const d: Deployment = {
      stateroot, csum, deployserial, bootcsum: kernel.bootcsum, bootserial: -1, originText: origin.toString(), pinned: false,
      kargs: applyKargEdits(base, o.kargs), entry: null, entryFile: null, staged: !!o.stage,
      ...versionField(st, csum),
    };
    const list = o.stage ? null : assignBootserials(planDeployList({
      current: st.deployments, newDeployment: d, stateroot, booted: st.booted, merge,
      ...(o.retain ? { retain: true } : {}), ...(o.notAsDefault ? { notAsDefault: true } : {}),
    }));
    // /boot space, before anything is written
    if (list) {
      const need = bootBytesNeeded(sysroot, list.map((x) => ({ d: x, k: sameDeployment(x, d) ? kernel : kernelInDir(deployDir(sysroot, x), deployDir(sysroot, x)) })));
      checkBootSpace(st, need, opts);
    }

    const dir = deployDir(sysroot, d);
    opts.log?.(`Checking out ${csum} into ${dir}`);
    removeTree(dir); // a leftover of a killed deploy: nothing references it
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    await checkout(st.repo, csum, dir);
    prepareEtc(dir);
    let etc: EtcMergeResult | null = null;
    if (!o.stage && merge) {
      etc = mergeEtc(path.join(deployDir(sysroot, merge), 'usr/etc'), path.join(deployDir(sysroot, merge), 'etc'), path.join(dir, 'etc'));
      opts.log?.(`Copying /etc changes: ${etc.modified} modified, ${etc.removed} removed, ${etc.added} added`);
    }
    writeFileDurable(originPath(sysroot, d), d.originText!, opts.fsync !== false);
    if (opts.immutable !== false) setImmutable(dir, true);

    if (o.stage) {
      if (opts.fsync !== false) syncFilesystem(sysroot); // the tree is on disk before it is named
      writeStagedFile(sysroot, d, merge ? deploymentName(merge) : null, opts.fsync !== false);
      opts.log?.(`Staged ${deploymentName(d)}; run "cairn admin finalize-staged" (at shutdown) to make it the default`);
      const after = loadSysroot(sysroot, opts);
      return { deployment: d, etc: null, write: null, cleanup: cleanupSysroot(after, opts, { prune: false }) };
    }
    const { write, cleanup } = commitList(st, list!, opts);
    return { deployment: list!.find((x) => sameDeployment(x, d))!, etc, write, cleanup };
  });
}

function versionField(st: SysrootState, csum: Checksum): { version?: string } {
  const v = st.repo.loadCommit(csum).metadata.find(([k]) => k === 'version')?.[1];
  return v && v.type === 's' ? { version: v.value as string } : {};
}

export interface FinalizeResult {
  readonly finalized: Deployment | null;
  readonly message: string;
}

/** ostree-finalize-staged: /etc merge, kernel, new list with the staged deployment first. */
export function finalizeStaged(sysroot: string, opts: SysrootOptions = {}): Promise<FinalizeResult> {
  return withLock(sysroot, async () => {
    const st = loadSysroot(sysroot, opts);
    const file = path.join(sysroot, STAGED_FILE);
    if (!st.staged) {
      if (st.staleStagedFile) {
        fs.rmSync(file, { force: true });
        return { finalized: null, message: 'Staged deployment was already finalized' };
      }
      return { finalized: null, message: 'No staged deployment' };
    }
    const d = st.staged.deployment;
    const current = st.deployments.filter((x) => !x.staged);
    const merge = current.find((x) => deploymentName(x) === st.staged!.mergeName && x.stateroot === d.stateroot)
      ?? mergeDeployment({ ...st, deployments: current }, d.stateroot);
    const list = assignBootserials(planDeployList({ current, newDeployment: { ...d, staged: false }, stateroot: d.stateroot, booted: st.booted, merge }));
    const dir = deployDir(sysroot, d);
    checkBootSpace(st, bootBytesNeeded(sysroot, list.map((x) => ({ d: x, k: kernelInDir(deployDir(sysroot, x), deployDir(sysroot, x)) }))), opts);
    if (merge) {
      const etc = mergeEtc(path.join(deployDir(sysroot, merge), 'usr/etc'), path.join(deployDir(sysroot, merge), 'etc'), path.join(dir, 'etc'));
      opts.log?.(`Copying /etc changes: ${etc.modified} modified, ${etc.removed} removed, ${etc.added} added`);
    }
    writeDeployments({ ...st, deployments: current }, list, opts);
    fs.rmSync(file, { force: true });
    cleanupSysroot(loadSysroot(sysroot, opts), opts);
    return { finalized: d, message: `Finalized ${d.stateroot} ${deploymentName(d)}` };
  });
}

/** Rewrites one deployment's origin file (pin, set-origin). */
export function writeOrigin(sysroot: string, d: Deployment, kf: KeyFile, opts: SysrootOptions): void {
  writeFileDurable(originPath(sysroot, d), kf.toString(), opts.fsync !== false);
}

export function requireIndex(st: SysrootState, index: number): Deployment {
  const d = st.deployments[index];
  if (!Number.isInteger(index) || index < 0 || !d) {
    const n = st.deployments.length;
    throw new SysrootIndexError(`deployment index ${index} is out of range (${n === 0 ? 'there are no deployments' : `valid: 0..${n - 1}`})`);
  }
  return d;
}

/** Makes `list` current: drops a staged deployment it does not keep, writes, cleans up. */
export function commitList(st: SysrootState, list: readonly Deployment[], opts: SysrootOptions): { write: WriteResult; cleanup: CleanupResult } {
  if (st.staged) fs.rmSync(path.join(st.path, STAGED_FILE), { force: true });
  const current = st.deployments.filter((x) => !x.staged);
  const write = writeDeployments({ ...st, deployments: current }, assignBootserials(list), opts);
  const cleanup = cleanupSysroot(loadSysroot(st.path, opts), opts);
  return { write, cleanup };
}

export { withLock };
