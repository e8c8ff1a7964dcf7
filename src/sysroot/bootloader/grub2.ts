/**
 * GRUB 2 with BLS support (blscfg reads /boot/loader/entries, sorted by `version`): entries are
 * named without counters; the counter lives in grubenv (see grubenv.ts). The counter is armed
 * after the /boot/loader swap, so a crash in between leaves the new default uncounted rather
 * than counting down the old one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { armCounter, blessEnv, grubTriesLeft, parseGrubenv, serializeGrubenv } from '../grubenv.js';
import { writeFileDurable } from '../fsops.js';
import type { Bootloader } from './index.js';

export function grubenvPath(sysroot: string): string {
  const fedora = path.join(sysroot, 'boot/grub2/grubenv');
  const debian = path.join(sysroot, 'boot/grub/grubenv');
  return fs.existsSync(fedora) || !fs.existsSync(debian) ? fedora : debian;
}

function readEnv(sysroot: string): Map<string, string> {
  const p = grubenvPath(sysroot);
  return fs.existsSync(p) ? parseGrubenv(fs.readFileSync(p)) : new Map();
}

function writeEnv(sysroot: string, env: Map<string, string>, durable: boolean): void {
  const p = grubenvPath(sysroot);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  writeFileDurable(p, serializeGrubenv(env), durable);
}

export const grub2Backend: Bootloader = {
  name: 'grub2',
  countsInEntryNames: false,
  writeConfig() {
    // blscfg reads the BLS entries directly; no grub.cfg regeneration
  },
  postSwap(sysroot, { newDefault, defaultChanged, tries, durable }) {
    if (newDefault && tries > 0) writeEnv(sysroot, armCounter(readEnv(sysroot), tries), durable);
    else if (defaultChanged) {
      // e.g. a rollback: the counter armed for the old default must not count down the new one
      const env = readEnv(sysroot);
      if (env.has('boot_counter')) {
        env.delete('boot_counter');
        writeEnv(sysroot, env, durable);
      }
    }
  },
  bless(sysroot, durable) {
    const env = readEnv(sysroot);
    if (env.get('boot_success') === '1' && !env.has('boot_counter')) return false;
    writeEnv(sysroot, blessEnv(env), durable);
    return true;
  },
  triesLeft(sysroot) {
    return grubTriesLeft(readEnv(sysroot));
  },
};
