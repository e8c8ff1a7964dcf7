/**
 * The /etc three-way merge (spec §6.4), as a pure plan. Inputs are snapshots of the merge
 * deployment's `usr/etc` (old defaults) and `etc` (what the admin runs with); the new
 * deployment's `etc` starts as a copy of its own `usr/etc`. Everything the admin removed is
 * removed, everything added or modified is copied over (whole directories when added), and
 * everything untouched follows the new defaults. Extended attributes are ignored, as ostree does.
 */
export interface EtcNode {
  readonly type: 'file' | 'dir' | 'symlink';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Content hash (files) */
  readonly hash?: string;
  /** Link target (symlinks) */
  readonly target?: string;
}

/** Relative path ("a/b.conf", no leading slash) → node. The root itself is not included. */
export type EtcSnapshot = ReadonlyMap<string, EtcNode>;

export interface EtcMergePlan {
  /** Paths to delete from the new /etc (top-most only). */
  readonly removed: readonly string[];
  /** Paths to copy from the current /etc, replacing the new one's (directories recursively). */
  readonly added: readonly string[];
  /** Changed files/symlinks to copy; changed directories get only their metadata copied. */
  readonly modified: readonly string[];
  /** Directories among `modified` whose metadata only changed. */
  readonly modifiedDirs: readonly string[];
}

function sameNode(a: EtcNode, b: EtcNode): boolean {
  return a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.hash === b.hash && a.target === b.target;
}

function under(p: string, dirs: ReadonlySet<string>): boolean {
  for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) if (dirs.has(p.slice(0, i))) return true;
  return false;
}

const byPath = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function planEtcMerge(orig: EtcSnapshot, current: EtcSnapshot): EtcMergePlan {
  const removed: string[] = [];
  const added: string[] = [];
  const modified: string[] = [];
  const modifiedDirs: string[] = [];
  const wholeTrees = new Set<string>();
  for (const p of [...current.keys()].sort(byPath)) {
    if (under(p, wholeTrees)) continue;
    const now = current.get(p)!;
    const before = orig.get(p);
    if (!before) {
      added.push(p);
      if (now.type === 'dir') wholeTrees.add(p);
    } else if (!sameNode(before, now)) {
      modified.push(p);
      if (now.type === 'dir' && before.type === 'dir') modifiedDirs.push(p);
      else if (now.type === 'dir') wholeTrees.add(p);
    }
  }
  const gone = new Set<string>();
  for (const p of [...orig.keys()].sort(byPath)) {
    if (current.has(p) || under(p, gone)) continue;
    removed.push(p);
    if (orig.get(p)!.type === 'dir') gone.add(p);
  }
  return { removed, added, modified, modifiedDirs };
}
