/**
 * Writing a new deployment list (spec §6.3). Everything for the new state is written beside the
 * current one, flushed, and made current by one rename: `boot/loader` (new bootversion) or
 * `ostree/boot.<B>` (bootlinks only). Killed at any point before that rename, the sysroot boots
 * exactly as before; the leftovers are removed by cleanup.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SysrootBootFullError, SysrootInvalidError } from '../errors.js';
import { detectBootloader } from './bootloader/index.js';
import {
  type Deployment, planBootlinks, planEntries, requiresNewBootversion,
} from './deployments-plan.js';
import { copyFileDurable, fsyncPath, swapSymlink, syncFilesystem, treeBytes, writeFileDurable } from './fsops.js';
import { kernelInDir, osReleaseName, type KernelFiles } from './kernel.js';
import { type SysrootOptions, type SysrootState, deployDir, readSubbootversion } from './sysroot.js';

export interface WriteResult {
  readonly bootversion: number;
  readonly subbootversion: number;
  readonly newBootversion: boolean;
}

export function bootTries(st: SysrootState, opts: SysrootOptions): number {
  if (opts.bootTries !== undefined) return opts.bootTries;
  const v = st.repo.config.get('sysroot', 'boot-counting-tries');
  if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  return 3;
}

function bootDir(sysroot: string, d: Pick<Deployment, 'stateroot' | 'bootcsum'>): string {
  return path.join(sysroot, 'boot/ostree', `${d.stateroot}-${d.bootcsum}`);
}

/** Bytes the kernels of `list` still need under /boot (files already there cost nothing). */
export function bootBytesNeeded(sysroot: string, list: readonly { d: Pick<Deployment, 'stateroot' | 'bootcsum'>; k: Pick<KernelFiles, 'sizes'> }[]): number {
  const seen = new Set<string>();
  let need = 0;
  for (const { d, k } of list) {
    for (const [name, size] of k.sizes) {
      const p = path.join(bootDir(sysroot, d), name);
      if (seen.has(p) || fs.existsSync(p)) continue;
      seen.add(p);
      need += size;
    }
  }
  return need;
}

export function bootBytesFree(sysroot: string, opts: SysrootOptions): number {
  const boot = path.join(sysroot, 'boot');
  const s = fs.statfsSync(boot);
  let free = Number(s.bavail) * Number(s.bsize);
  if (opts.bootSizeLimit !== undefined) free = Math.min(free, Math.max(0, opts.bootSizeLimit - treeBytes(boot)));
  return free;
}

function mb(n: number): string {
  return n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** Refuses, before anything is written, when /boot cannot take the new kernels. */
export function checkBootSpace(st: SysrootState, need: number, opts: SysrootOptions): void {
  if (need === 0) return;
  const free = bootBytesFree(st.path, opts);
  if (need <= free) return;
  const used = new Set(st.deployments.map((d) => `${d.stateroot}-${d.bootcsum}`));
  const root = path.join(st.path, 'boot/ostree');
  let stale = 0;
  for (const n of fs.existsSync(root) ? fs.readdirSync(root) : []) if (!used.has(n)) stale += treeBytes(path.join(root, n));
  const hints: string[] = [];
  if (stale > 0) hints.push(`"cairn admin cleanup" frees ${mb(stale)} of unused kernels`);
  st.deployments.forEach((d, i) => {
    if (i === 0 || d.staged || d.pinned || (st.booted && d.csum === st.booted.csum && d.deployserial === st.booted.deployserial)) return;
    if (st.deployments.filter((x) => x.bootcsum === d.bootcsum && x.stateroot === d.stateroot).length > 1) return;
    hints.push(`"cairn admin undeploy ${i}" frees ${mb(treeBytes(bootDir(st.path, d)))}`);
  });
  if (hints.length === 0) hints.push('remove files from /boot or enlarge it');
  throw new SysrootBootFullError(
    `not enough space in ${path.join(st.path, 'boot')}: the new kernel and initramfs need ${mb(need)}, only ${mb(free)} is free; ${hints.join('; ')}`,
    { path: path.join(st.path, 'boot') },
  );
}

function writeBootlinks(sysroot: string, list: readonly Deployment[], bootversion: number, sub: number): void {
  const dir = path.join(sysroot, `ostree/boot.${bootversion}.${sub}`);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const l of planBootlinks(list, bootversion, sub)) {
    const p = path.join(sysroot, l.path);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.symlinkSync(l.target, p);
  }
  fs.mkdirSync(dir, { recursive: true });
}

/**
 * Makes `list` (bootserials assigned, no staged deployment) the sysroot's deployment list.
 * `st` is the state it replaces.
 */
export function writeDeployments(st: SysrootState, list: readonly Deployment[], opts: SysrootOptions = {}): WriteResult {
  const S = st.path;
  const durable = opts.fsync !== false;
  const kernels = list.map((d) => {
    const dir = deployDir(S, d);
    if (!fs.existsSync(dir)) throw new SysrootInvalidError(`deployment directory ${dir} is missing`, { path: dir });
    return kernelInDir(dir, `deployment ${dir}`);
  });
  if (!requiresNewBootversion(st.deployments, list)) {
    // only the bootlinks change: write boot.B.(1-S) and swap the boot.B symlink
    const sub = 1 - st.subbootversion;
    writeBootlinks(S, list, st.bootversion, sub);
    if (durable) syncFilesystem(S);
    swapSymlink(`boot.${st.bootversion}.${sub}`, path.join(S, `ostree/boot.${st.bootversion}`), durable);
    opts.log?.(`Bootlinks swapped; bootversion: boot.${st.bootversion}.${sub}, deployment count ${list.length}`);
    return { bootversion: st.bootversion, subbootversion: sub, newBootversion: false };
  }
  checkBootSpace(st, bootBytesNeeded(S, list.map((d, i) => ({ d, k: kernels[i]! }))), opts);

  const B = 1 - st.bootversion;
  const loaderDir = path.join(S, `boot/loader.${B}`);
  fs.rmSync(loaderDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(loaderDir, 'entries'), { recursive: true });
  list.forEach((d, i) => {
    const k = kernels[i]!;
    const dest = bootDir(S, d);
    fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
    for (const [name, src] of k.sources) {
      if (!fs.existsSync(path.join(dest, name))) copyFileDurable(path.join(deployDir(S, d), src), path.join(dest, name), durable);
    }
  });
  const backend = detectBootloader(S, st.repo.config.get('sysroot', 'bootloader'));
  const tries = bootTries(st, opts);
  const entries = planEntries(list, list.map((d, i) => ({ layout: kernels[i]!, osName: osReleaseName(deployDir(S, d)) })), B, backend.countsInEntryNames ? tries : 0);
  for (const e of entries) writeFileDurable(path.join(loaderDir, 'entries', e.fileName), e.text, false);

  const sub = 1 - readSubbootversion(S, B);
  writeBootlinks(S, list, B, sub);
  swapSymlink(`boot.${B}.${sub}`, path.join(S, `ostree/boot.${B}`), false);

  backend.writeConfig(S, B, entries);
  try {
    fs.symlinkSync('.', path.join(S, 'boot/boot'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  if (durable) {
    syncFilesystem(S);
    syncFilesystem(path.join(S, 'boot'));
  }
  // the commit point
  swapSymlink(`loader.${B}`, path.join(S, 'boot/loader'), durable);
  if (durable) fsyncPath(path.join(S, 'boot'));
  const oldDefault = st.deployments.find((d) => !d.staged);
  const newDefault = list[0] !== undefined && list[0].entryFile === null;
  const defaultChanged = !!list[0] && (!oldDefault || oldDefault.csum !== list[0].csum || oldDefault.deployserial !== list[0].deployserial);
  backend.postSwap?.(S, { newDefault, defaultChanged, tries, durable });
  opts.log?.(`Bootloader updated; bootconfig swap: yes; bootversion: boot.${B}.${sub}, deployment count change: ${list.length - st.deployments.filter((d) => !d.staged).length}`);
  return { bootversion: B, subbootversion: sub, newBootversion: true };
}
