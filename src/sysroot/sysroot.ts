/**
 * Loading a sysroot (spec §6.1, §6.3): the current bootversion and subbootversion, the BLS
 * entries of `boot/loader`, the deployments they point to (through the bootlinks) with their
 * origins, the booted deployment and a staged one. Also the sysroot lock.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KeyFile, parse as parseGVariant, serialize as serializeGVariant, lookup, type GValue, type Variant } from '../format/index.js';
import { Repo, commitVersion, readFileIfExists } from '../repo/index.js';
import {
  CairnError, SysrootInvalidError, SysrootLockedError, SysrootNotFoundError, SysrootOriginCorruptError,
} from '../errors.js';
import { type BlsEntry, blsGet, compareVersions, parseBlsEntry } from './bls.js';
import { type Deployment, deploymentName, sameDeployment } from './deployments-plan.js';
import { parseKargs, userKargs } from './kargs.js';
import { isErrno, readlinkOrNull, writeFileDurable } from './fsops.js';

export interface SysrootOptions {
  /**
   * The running root filesystem: the booted deployment is the one whose directory has the same
   * device and inode (ostree's test). null/undefined: nothing is booted (a sysroot being
   * prepared, or a test). Tests point it at a deployment directory to simulate a boot.
   */
  bootedRoot?: string | null;
  /** Set the immutable attribute on deployment roots (default true). */
  immutable?: boolean;
  /** fsync/syncfs before each rename (default true). */
  fsync?: boolean;
  /** Pretend /boot is a partition of this many bytes (for tests of a full /boot). */
  bootSizeLimit?: number;
  /** Boot-counting tries for new entries; default: repo config sysroot.boot-counting-tries, else 3. */
  bootTries?: number;
  /** Progress messages (the CLI prints them to stderr). */
  log?: (msg: string) => void;
}

export interface StagedInfo {
  readonly deployment: Deployment;
  readonly mergeName: string | null;
}

export interface SysrootState {
  readonly path: string;
  readonly repo: Repo;
  readonly bootversion: number;
  readonly subbootversion: number;
  /** Staged deployment (if any) first, then the bootloader's list in order. */
  readonly deployments: readonly Deployment[];
  readonly booted: Deployment | null;
  readonly staged: StagedInfo | null;
  /** The staged-deployment file names a deployment that is already in the list (finalized). */
  readonly staleStagedFile: boolean;
}

export const STAGED_FILE = 'run/ostree/staged-deployment';
const BOOTLINK = /^\/ostree\/boot\.([01])\/([^/]+)\/([^/]+)\/([0-9]+)$/;
const DEPLOY_NAME = /^([0-9a-f]{64})\.([0-9]+)$/;

export function deployDir(sysroot: string, d: Pick<Deployment, 'stateroot' | 'csum' | 'deployserial'>): string {
  return path.join(sysroot, 'ostree/deploy', d.stateroot, 'deploy', deploymentName(d));
}

export function originPath(sysroot: string, d: Pick<Deployment, 'stateroot' | 'csum' | 'deployserial'>): string {
  return deployDir(sysroot, d) + '.origin';
}

export function openSysrootRepo(sysroot: string): Repo {
  const repoPath = path.join(sysroot, 'ostree/repo');
  if (!fs.existsSync(path.join(repoPath, 'config'))) {
    throw new SysrootNotFoundError(`${sysroot}: not a sysroot (no ostree/repo; run "cairn admin init-fs ${sysroot}" first)`, { path: sysroot });
  }
  return Repo.open(repoPath);
}

function readVersionLink(p: string, prefix: string, name: string): number {
  const t = readlinkOrNull(p);
  if (t === null) {
    if (fs.existsSync(p)) throw new SysrootInvalidError(`${p}: not a symbolic link`, { path: p });
    return 0;
  }
  if (t === `${prefix}0`) return 0;
  if (t === `${prefix}1`) return 1;
  throw new SysrootInvalidError(`invalid target "${t}" of ${name}`, { path: p });
}

export function readBootversion(sysroot: string): number {
  return readVersionLink(path.join(sysroot, 'boot/loader'), 'loader.', 'boot/loader');
}

export function readSubbootversion(sysroot: string, bootversion: number): number {
  const p = path.join(sysroot, `ostree/boot.${bootversion}`);
  const t = readlinkOrNull(p);
  if (t === null) return 0;
  if (t.endsWith('.0')) return 0;
  if (t.endsWith('.1')) return 1;
  throw new SysrootInvalidError(`invalid target "${t}" of ostree/boot.${bootversion}`, { path: p });
}

export function loadOrigin(sysroot: string, d: Pick<Deployment, 'stateroot' | 'csum' | 'deployserial'>): string | null {
  const p = originPath(sysroot, d);
  const bytes = readFileIfExists(p);
  if (!bytes) return null;
  const text = bytes.toString('utf8');
  parseOrigin(text, p);
  return text;
}

export function parseOrigin(text: string, p: string): KeyFile {
  try {
    const kf = KeyFile.parse(text);
    kf.getBoolean('libostree-transient', 'pinned', false);
    return kf;
  } catch (e) {
    throw new SysrootOriginCorruptError(`corrupt origin file ${p}: ${(e as Error).message}`, { path: p, cause: e });
  }
}

export function originRefspec(d: Deployment): string | null {
  if (d.originText === null) return null;
  return KeyFile.parse(d.originText).get('origin', 'refspec') ?? null;
}

function isPinned(originText: string | null): boolean {
  return originText !== null && KeyFile.parse(originText).getBoolean('libostree-transient', 'pinned', false);
}

function versionOf(repo: Repo, csum: string): string | undefined {
  try {
    return commitVersion(repo.loadCommit(csum as never));
  } catch (e) {
    if (e instanceof CairnError) return undefined;
    throw e;
  }
}

interface ParsedEntry {
  fileName: string;
  entry: BlsEntry;
}

function readEntries(sysroot: string, bootversion: number): ParsedEntry[] {
  const dir = path.join(sysroot, `boot/loader.${bootversion}/entries`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  }
  const out: ParsedEntry[] = [];
  for (const n of names) {
    if (!n.startsWith('ostree-') || !n.endsWith('.conf')) continue;
    const p = path.join(dir, n);
    if (!fs.statSync(p).isFile()) continue;
    out.push({ fileName: n, entry: parseBlsEntry(fs.readFileSync(p, 'utf8')) });
  }
  // ostree: sorted by `version`, highest first (strverscmp); entries without one last
  out.sort((a, b) => {
    const va = blsGet(a.entry, 'version');
    const vb = blsGet(b.entry, 'version');
    if (va !== undefined && vb !== undefined) return -compareVersions(va, vb);
    return va !== undefined ? -1 : vb !== undefined ? 1 : 0;
  });
  return out;
}

function deploymentFromEntry(sysroot: string, repo: Repo, e: ParsedEntry): Deployment {
  const kargs = parseKargs(blsGet(e.entry, 'options'));
  const arg = kargs.find((a) => a.startsWith('ostree='));
  const where = `boot entry ${e.fileName}`;
  if (!arg) throw new SysrootInvalidError(`${where}: no ostree= kernel argument`, { path: e.fileName });
  const m = BOOTLINK.exec(arg.slice('ostree='.length));
  if (!m) throw new SysrootInvalidError(`${where}: invalid ${arg}, expected ostree=/ostree/boot.BOOTVERSION/OSNAME/BOOTCSUM/TREESERIAL`);
  const link = path.join(sysroot, arg.slice('ostree=/'.length));
  const target = readlinkOrNull(link);
  if (target === null) throw new SysrootInvalidError(`${where}: bootlink ${link} is missing`, { path: link });
  const dm = DEPLOY_NAME.exec(path.basename(target));
  if (!dm) throw new SysrootInvalidError(`${where}: bootlink ${link} points to "${target}", not CHECKSUM.SERIAL`, { path: link });
  const stateroot = m[2]!;
  const id = { stateroot, csum: dm[1]!, deployserial: Number(dm[2]) };
  if (!fs.existsSync(deployDir(sysroot, id))) {
    throw new SysrootInvalidError(`${where}: deployment ${deployDir(sysroot, id)} is missing`, { path: deployDir(sysroot, id) });
  }
  const originText = loadOrigin(sysroot, id);
  const version = versionOf(repo, id.csum);
  return {
    ...id, bootcsum: m[3]!, bootserial: Number(m[4]), originText, pinned: isPinned(originText),
    kargs: userKargs(kargs), entry: e.entry, entryFile: e.fileName, staged: false,
    ...(version !== undefined ? { version } : {}),
  };
}

/** The staged-deployment file: GVariant a{sv} as ostree writes /run/ostree/staged-deployment. */
export function serializeStaged(d: Deployment, mergeName: string | null): Buffer {
  const dict = (o: Record<string, string>): Variant => ({ type: 'a{sv}', value: Object.entries(o).map(([k, v]) => [k, { type: 's', value: v }]) });
  const entries: [string, Variant][] = [
    ['target', dict({ name: deploymentName(d), osname: d.stateroot, bootcsum: d.bootcsum })],
    ['kargs', { type: 'as', value: [...d.kargs] }],
  ];
  if (mergeName) entries.push(['merge-deployment', dict({ name: mergeName, osname: d.stateroot })]);
  return serializeGVariant('a{sv}', entries);
}

function readStaged(sysroot: string, repo: Repo): StagedInfo | null {
  const p = path.join(sysroot, STAGED_FILE);
  const bytes = readFileIfExists(p);
  if (!bytes) return null;
  try {
    const v = parseGVariant('a{sv}', bytes);
    const target = lookup(v, 'target')?.value as GValue;
    const s = (dict: GValue, k: string): string => {
      const x = lookup(dict, k);
      if (!x || typeof x.value !== 'string') throw new Error(`missing key ${k}`);
      return x.value;
    };
    const dm = DEPLOY_NAME.exec(s(target, 'name'));
    if (!dm) throw new Error(`bad deployment name ${s(target, 'name')}`);
    const id = { stateroot: s(target, 'osname'), csum: dm[1]!, deployserial: Number(dm[2]) };
    const kargs = (lookup(v, 'kargs')?.value as string[] | undefined) ?? [];
    const merge = lookup(v, 'merge-deployment')?.value;
    const originText = loadOrigin(sysroot, id);
    const version = versionOf(repo, id.csum);
    const d: Deployment = {
      ...id, bootcsum: s(target, 'bootcsum'), bootserial: -1, originText, pinned: isPinned(originText),
      kargs: userKargs(kargs), entry: null, entryFile: null, staged: true, ...(version !== undefined ? { version } : {}),
    };
    return { deployment: d, mergeName: merge ? s(merge, 'name') : null };
  } catch (e) {
    if (e instanceof CairnError) throw e;
    throw new SysrootInvalidError(`corrupt staged deployment file ${p}: ${(e as Error).message}`, { path: p, cause: e });
  }
}

export function loadSysroot(sysroot: string, opts: SysrootOptions = {}): SysrootState {
  const repo = openSysrootRepo(sysroot);
  const bootversion = readBootversion(sysroot);
  const subbootversion = readSubbootversion(sysroot, bootversion);
  const listed = readEntries(sysroot, bootversion).map((e) => deploymentFromEntry(sysroot, repo, e));
  let staged = readStaged(sysroot, repo);
  let staleStagedFile = false;
  if (staged && (listed.some((d) => sameDeployment(d, staged!.deployment)) || !fs.existsSync(deployDir(sysroot, staged.deployment)))) {
    staged = null;
    staleStagedFile = true;
  }
  const deployments = staged ? [staged.deployment, ...listed] : listed;
  let booted: Deployment | null = null;
  const root = opts.bootedRoot ? fs.statSync(opts.bootedRoot, { throwIfNoEntry: false }) : undefined;
  if (root) {
    booted = listed.find((d) => {
      const st = fs.statSync(deployDir(sysroot, d));
      return st.dev === root.dev && st.ino === root.ino;
    }) ?? null;
  }
  return { path: sysroot, repo, bootversion, subbootversion, deployments, booted, staged, staleStagedFile };
}

export function writeStagedFile(sysroot: string, d: Deployment, mergeName: string | null, durable: boolean): void {
  const p = path.join(sysroot, STAGED_FILE);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  writeFileDurable(p, serializeStaged(d, mergeName), durable);
}

/** Pending (above the booted one) and rollback (below it) deployments of the booted stateroot. */
export function pendingAndRollback(st: SysrootState): { pending: Deployment | null; rollback: Deployment | null } {
  if (!st.booted) return { pending: null, rollback: null };
  let pending: Deployment | null = null;
  let rollback: Deployment | null = null;
  let found = false;
  for (const d of st.deployments) {
    if (d.stateroot !== st.booted.stateroot) continue;
    if (sameDeployment(d, st.booted)) {
      found = true;
      continue;
    }
    if (!found && !pending) pending = d;
    else if (found && !rollback) rollback = d;
  }
  return { pending, rollback };
}

/** The deployment whose /etc a new deployment of `stateroot` merges: the booted one, else the first. */
export function mergeDeployment(st: SysrootState, stateroot: string): Deployment | null {
  if (st.booted && st.booted.stateroot === stateroot) return st.booted;
  return st.deployments.find((d) => !d.staged && d.stateroot === stateroot) ?? null;
}

/**
 * The sysroot lock: `ostree/.cairn-lock` holding the owner's pid. A lock whose process is gone
 * (killed) is taken over, so a crash never wedges the sysroot.
 */
export function lockSysroot(sysroot: string): () => void {
  openSysrootRepo(sysroot); // a clear "not a sysroot" before anything else
  const p = path.join(sysroot, 'ostree/.cairn-lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(p, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(p, { force: true });
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
    }
    const pid = Number(fs.readFileSync(p, 'utf8').trim());
    let alive = false;
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = isErrno(e, 'EPERM');
      }
    }
    if (alive) throw new SysrootLockedError(`sysroot ${sysroot} is locked by process ${pid}`, { path: p });
    fs.rmSync(p, { force: true });
  }
  throw new SysrootLockedError(`sysroot ${sysroot}: could not take the lock ${p}`, { path: p });
}
