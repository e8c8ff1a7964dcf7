/**
 * Pure planning of deployment lists (spec §6.3, §6.5): the list a deploy, rollback or undeploy
 * produces, bootserials, whether a new bootversion is needed, and the BLS entries and bootlinks
 * of a list. No I/O: the callers load the state and write the plan.
 */
import { type BlsEntry, blsSet, parseBlsEntry, serializeBlsEntry } from './bls.js';
import { formatEntryFileName, parseEntryFileName } from './boot-counting.js';
import { formatKargs, userKargs } from './kargs.js';

export interface Deployment {
  readonly stateroot: string;
  /** Commit checksum. */
  readonly csum: string;
  readonly deployserial: number;
  readonly bootcsum: string;
  /** Index among the deployments sharing `bootcsum` (-1 for a staged one). */
  readonly bootserial: number;
  /** Text of the .origin key file (null when there is none). */
  readonly originText: string | null;
  readonly pinned: boolean;
  /** Kernel arguments without ostree= (the user's). */
  readonly kargs: readonly string[];
  /** Current BLS entry and its file name (null for a deployment not yet in the bootloader). */
  readonly entry: BlsEntry | null;
  readonly entryFile: string | null;
  readonly staged: boolean;
  /** The commit's `version` metadata, when the commit is in the repo. */
  readonly version?: string;
}

export function deploymentName(d: Pick<Deployment, 'csum' | 'deployserial'>): string {
  return `${d.csum}.${d.deployserial}`;
}

export function sameDeployment(a: Deployment | null | undefined, b: Deployment | null | undefined): boolean {
  return !!a && !!b && a.stateroot === b.stateroot && a.csum === b.csum && a.deployserial === b.deployserial;
}

/** deployserial: one past the highest one of the same commit in the stateroot (taken or on disk). */
export function allocateDeployserial(taken: readonly { stateroot: string; csum: string; deployserial: number }[], stateroot: string, csum: string): number {
  let next = 0;
  for (const d of taken) if (d.stateroot === stateroot && d.csum === csum && d.deployserial >= next) next = d.deployserial + 1;
  return next;
}

export interface DeployPlanInput {
  readonly current: readonly Deployment[];
  readonly newDeployment: Deployment;
  readonly stateroot: string;
  readonly booted: Deployment | null;
  readonly merge: Deployment | null;
  /** Keep every existing deployment (ostree --retain). */
  readonly retain?: boolean;
  /** Add the new deployment after the booted/merge one instead of first (--not-as-default). */
  readonly notAsDefault?: boolean;
}

/**
 * The list after a deploy. Kept: the new deployment (first), the booted one, the merge one, one
 * rollback (the first deployment of the stateroot after the booted one; without a booted
 * deployment the merge deployment is the rollback), every pinned deployment and every
 * deployment of another stateroot. A staged deployment is replaced.
 */
export function planDeployList(p: DeployPlanInput): Deployment[] {
  const out: Deployment[] = [];
  if (!p.notAsDefault) out.push(p.newDeployment);
  const crossover = p.booted ?? p.merge;
  let passed = false;
  let rollbackKept = !p.booted;
  let added = !p.notAsDefault;
  for (const d of p.current) {
    if (d.staged) continue;
    const isCross = sameDeployment(d, crossover);
    const sameOs = d.stateroot === p.stateroot;
    const isRollback = !rollbackKept && passed && sameOs;
    if (isRollback) rollbackKept = true;
    if (p.retain || d.pinned || !sameOs || sameDeployment(d, p.booted) || sameDeployment(d, p.merge) || isRollback) out.push(d);
    if (isCross) passed = true;
    if (!added && passed) {
      out.push(p.newDeployment);
      added = true;
    }
  }
  if (!added) out.push(p.newDeployment);
  return out;
}

/** The deployment `rollback` makes the default, or null when there is none. */
export function rollbackTarget(current: readonly Deployment[], booted: Deployment | null, stateroot: string): Deployment | null {
  const mine = current.filter((d) => !d.staged && d.stateroot === stateroot);
  if (!booted) return mine[1] ?? null;
  const bi = mine.findIndex((d) => sameDeployment(d, booted));
  const after = mine[bi + 1];
  if (after) return after;
  // no rollback below the booted one: if a pending deployment sits above it, go back to the booted
  return bi > 0 ? booted : null;
}

/** rpm-ostree's rollback: the target moves to the front, the rest keeps its order. */
export function planRollbackList(current: readonly Deployment[], target: Deployment): Deployment[] {
  return [target, ...current.filter((d) => !d.staged && !sameDeployment(d, target))];
}

export function planUndeployList(current: readonly Deployment[], index: number): Deployment[] {
  return current.filter((d, i) => i !== index && !d.staged);
}

/** Bootserials: 0, 1, … among the deployments sharing a bootcsum, in list order. */
export function assignBootserials(list: readonly Deployment[]): Deployment[] {
  const seen = new Map<string, number>();
  return list.map((d) => {
    const n = seen.get(d.bootcsum) ?? 0;
    seen.set(d.bootcsum, n + 1);
    return { ...d, bootserial: n };
  });
}

/**
 * Whether the bootloader configuration must change (new bootversion) or swapping the bootlinks
 * is enough: same count, and per position the same kernel, user kargs, version and stateroot.
 */
export function requiresNewBootversion(current: readonly Deployment[], next: readonly Deployment[]): boolean {
  const cur = current.filter((d) => !d.staged);
  if (cur.length !== next.length) return true;
  return next.some((n, i) => {
    const c = cur[i]!;
    return c.bootcsum !== n.bootcsum || formatKargs(c.kargs) !== formatKargs(n.kargs) || c.version !== n.version || c.stateroot !== n.stateroot;
  });
}

export interface KernelLayout {
  /** e.g. 6.1.0-test */
  readonly kver: string;
  /** Names under /boot/ostree/<stateroot>-<bootcsum>/ */
  readonly kernelName: string;
  readonly initramfsName?: string;
  readonly devicetreeName?: string;
}

export interface EntryInput {
  readonly layout: KernelLayout;
  /** PRETTY_NAME (or ID) from the deployment's os-release. */
  readonly osName: string;
}

export interface PlannedEntry {
  readonly fileName: string;
  readonly text: string;
  readonly entry: BlsEntry;
}

export interface Bootlink {
  /** Relative to the sysroot: ostree/boot.B.S/<stateroot>/<bootcsum>/<bootserial> */
  readonly path: string;
  readonly target: string;
}

export function bootlinkArg(bootversion: number, d: Deployment): string {
  return `/ostree/boot.${bootversion}/${d.stateroot}/${d.bootcsum}/${d.bootserial}`;
}

/**
 * BLS entries for a list written at `bootversion` (install_deployment_kernel): file
 * `ostree-<N>-<stateroot>.conf` with N = count − index, a `+TRIES` counter for entries new to
 * the bootloader when boot counting is on, and the counter an existing entry already has.
 */
export function planEntries(list: readonly Deployment[], inputs: readonly EntryInput[], bootversion: number, bootTries: number): PlannedEntry[] {
  const showOs = list.some((d) => d.stateroot !== list[0]!.stateroot);
  return list.map((d, i) => {
    const { layout, osName } = inputs[i]!;
    const n = list.length - i;
    const dir = `/ostree/${d.stateroot}-${d.bootcsum}`;
    let title = osName;
    if (d.version && !osName.includes(d.version)) title += ` ${d.version}`;
    title += ` (ostree${showOs ? `:${d.stateroot}` : ''}:${i})`;
    const kargs = [...userKargs(d.kargs)];
    if (!layout.initramfsName) kargs.push(`init=${bootlinkArg(bootversion, d)}/usr/lib/ostree/ostree-prepare-root`);
    kargs.push(`ostree=${bootlinkArg(bootversion, d)}`);
    let e: BlsEntry = d.entry ?? parseBlsEntry('');
    e = blsSet(e, 'title', title);
    e = blsSet(e, 'version', String(n));
    e = blsSet(e, 'options', formatKargs(kargs));
    e = blsSet(e, 'linux', `${dir}/${layout.kernelName}`);
    if (layout.initramfsName) e = blsSet(e, 'initrd', `${dir}/${layout.initramfsName}`);
    if (layout.devicetreeName) e = blsSet(e, 'devicetree', `${dir}/${layout.devicetreeName}`);
    const id = `ostree-${n}-${d.stateroot}`;
    const old = d.entryFile ? parseEntryFileName(d.entryFile) : null;
    const counter = old ? { triesLeft: old.triesLeft, triesDone: old.triesDone } : bootTries > 0 ? { triesLeft: bootTries } : {};
    const fileName = formatEntryFileName({ id, ...counter } as { id: string; triesLeft?: number; triesDone?: number });
    return { fileName, text: serializeBlsEntry(e), entry: e };
  });
}

export function planBootlinks(list: readonly Deployment[], bootversion: number, subbootversion: number): Bootlink[] {
  return list.map((d) => ({
    path: `ostree/boot.${bootversion}.${subbootversion}/${d.stateroot}/${d.bootcsum}/${d.bootserial}`,
    target: `../../../deploy/${d.stateroot}/deploy/${deploymentName(d)}`,
  }));
}
