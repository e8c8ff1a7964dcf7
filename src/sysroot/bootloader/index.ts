/**
 * Bootloader backends (ostree-bootloader.h, trimmed): the BLS entries under /boot/loader are
 * always written by the sysroot layer; a backend adds what its bootloader needs on top.
 * `writeConfig` runs for the new bootversion before the atomic /boot/loader swap, `postSwap`
 * after it (ostree's post_bls_sync).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { blsBackend } from './bls.js';
import { grub2Backend, grubenvPath } from './grub2.js';

export interface BootEntryFile {
  readonly fileName: string;
  readonly text: string;
}

export interface Bootloader {
  readonly name: string;
  /** Boot counting through `+LEFT-DONE` entry file names (systemd-boot); otherwise the backend counts. */
  readonly countsInEntryNames: boolean;
  /** Writes native configuration for `bootversion` (not yet active). */
  writeConfig(sysroot: string, bootversion: number, entries: readonly BootEntryFile[]): void;
  /**
   * After the swap: `newDefault` is true when index 0 is a deployment new to the bootloader,
   * `defaultChanged` when index 0 is another deployment than before.
   */
  postSwap?(sysroot: string, info: { newDefault: boolean; defaultChanged: boolean; tries: number; durable: boolean }): void;
  /** Marks the current boot good. */
  bless?(sysroot: string, durable: boolean): boolean;
  /** Tries left for the default entry when the backend counts, else null. */
  triesLeft?(sysroot: string): number | null;
}

/**
 * `sysroot.bootloader` in the repo config (`bls`, `grub2`, `none`), else auto: grub2 when
 * /boot/grub2/grubenv or /boot/grub/grubenv exists, BLS (systemd-boot) otherwise.
 */
export function detectBootloader(sysroot: string, configured?: string): Bootloader {
  if (configured === 'grub2') return grub2Backend;
  if (configured && configured !== 'auto') return blsBackend;
  return fs.existsSync(grubenvPath(sysroot)) || fs.existsSync(path.join(sysroot, 'boot/grub/grubenv')) ? grub2Backend : blsBackend;
}
