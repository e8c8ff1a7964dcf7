/**
 * Bootloader backends (ostree-bootloader.h, trimmed): the BLS entries under /boot/loader are
 * always written by the sysroot layer; a backend adds what its bootloader needs on top, for the
 * new bootversion, before the atomic /boot/loader swap.
 */
import { blsBackend } from './bls.js';

export interface BootEntryFile {
  readonly fileName: string;
  readonly text: string;
}

export interface Bootloader {
  readonly name: string;
  /** Writes native configuration for `bootversion` (not yet active). */
  writeConfig(sysroot: string, bootversion: number, entries: readonly BootEntryFile[]): void;
}

/** systemd-boot and other BLS-native loaders read /boot/loader/entries directly. */
export function detectBootloader(_sysroot: string): Bootloader {
  return blsBackend;
}
