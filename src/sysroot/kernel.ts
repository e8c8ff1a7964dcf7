/**
 * Finding the kernel of a tree (spec §6.2 step 5): `usr/lib/modules/<kver>/vmlinuz` plus an
 * optional `initramfs.img` (or `initramfs`) and `devicetree`. The bootcsum is SHA-256 over
 * kernel ‖ initramfs ‖ devicetree (TV9). Works on a commit in the repo (before anything is
 * written) and on a checked-out deployment.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { S_IFLNK, S_IFMT, type Checksum } from '../format/index.js';
import type { Repo } from '../repo/index.js';
import { SysrootNoKernelError } from '../errors.js';
import type { KernelLayout } from './deployments-plan.js';

export interface KernelFiles extends KernelLayout {
  /** Sizes in bytes, by name under /boot/ostree/<stateroot>-<bootcsum>/ */
  readonly sizes: ReadonlyMap<string, number>;
  /** Paths relative to the tree root, by name under /boot/ostree/… */
  readonly sources: ReadonlyMap<string, string>;
}

const INITRAMFS = ['initramfs.img', 'initramfs'];

function layoutFrom(kver: string, has: (name: string) => boolean): { names: [string, string][]; layout: KernelLayout } {
  const names: [string, string][] = [[`vmlinuz-${kver}`, 'vmlinuz']];
  const initrd = INITRAMFS.find(has);
  if (initrd) names.push([`initramfs-${kver}.img`, initrd]);
  if (has('devicetree')) names.push([`devicetree-${kver}`, 'devicetree']);
  return {
    names,
    layout: {
      kver, kernelName: `vmlinuz-${kver}`,
      ...(initrd ? { initramfsName: `initramfs-${kver}.img` } : {}),
      ...(has('devicetree') ? { devicetreeName: `devicetree-${kver}` } : {}),
    },
  };
}

/** Kernel of a checked-out tree (a deployment directory). */
export function kernelInDir(root: string, what: string): KernelFiles {
  const modules = path.join(root, 'usr/lib/modules');
  let kvers: string[] = [];
  try {
    kvers = fs.readdirSync(modules).sort();
  } catch {
    kvers = [];
  }
  for (const kver of kvers) {
    const dir = path.join(modules, kver);
    const has = (n: string): boolean => {
      try {
        return fs.statSync(path.join(dir, n)).isFile();
      } catch {
        return false;
      }
    };
    if (!has('vmlinuz')) continue;
    const { names, layout } = layoutFrom(kver, has);
    const sizes = new Map<string, number>();
    const sources = new Map<string, string>();
    for (const [bootName, src] of names) {
      sizes.set(bootName, fs.statSync(path.join(dir, src)).size);
      sources.set(bootName, `usr/lib/modules/${kver}/${src}`);
    }
    return { ...layout, sizes, sources };
  }
  throw new SysrootNoKernelError(`${what} has no kernel: no usr/lib/modules/<kver>/vmlinuz`, { path: root });
}

/** Kernel of a commit, read from the repo; also returns the bootcsum. */
export async function kernelInCommit(repo: Repo, commit: Checksum): Promise<KernelFiles & { bootcsum: string }> {
  const c = repo.loadCommit(commit);
  let tree = repo.loadDirtree(c.rootTree);
  for (const part of ['usr', 'lib', 'modules']) {
    const d = tree.dirs.find((x) => x.name === part);
    if (!d) throw new SysrootNoKernelError(`commit ${commit} has no kernel: no usr/lib/modules/<kver>/vmlinuz`, { object: commit });
    tree = repo.loadDirtree(d.tree);
  }
  for (const kd of [...tree.dirs].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const t = repo.loadDirtree(kd.tree);
    const regular = new Map<string, Checksum>();
    for (const f of t.files) {
      const obj = repo.openContent(f.checksum);
      if ((obj.header.mode & S_IFMT) !== S_IFLNK) regular.set(f.name, f.checksum);
    }
    if (!regular.has('vmlinuz')) continue;
    const { names, layout } = layoutFrom(kd.name, (n) => regular.has(n));
    const hash = createHash('sha256');
    const sizes = new Map<string, number>();
    const sources = new Map<string, string>();
    for (const [bootName, src] of names) {
      const obj = repo.openContent(regular.get(src)!);
      for await (const chunk of obj.stream()) hash.update(chunk as Buffer);
      sizes.set(bootName, obj.size);
      sources.set(bootName, `usr/lib/modules/${kd.name}/${src}`);
    }
    return { ...layout, sizes, sources, bootcsum: hash.digest('hex') };
  }
  throw new SysrootNoKernelError(`commit ${commit} has no kernel: no usr/lib/modules/<kver>/vmlinuz`, { object: commit });
}

/** PRETTY_NAME (else ID) of a tree's usr/lib/os-release (else etc/os-release). */
export function osReleaseName(root: string): string {
  for (const rel of ['usr/lib/os-release', 'etc/os-release']) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(root, rel), 'utf8');
    } catch {
      continue;
    }
    const vals = new Map<string, string>();
    for (const line of text.split('\n')) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) vals.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'));
    }
    const v = vals.get('PRETTY_NAME') ?? vals.get('ID');
    if (v) return v;
  }
  return 'ostree';
}
