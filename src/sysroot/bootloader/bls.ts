/** BLS-native loaders (systemd-boot): the entries are the configuration; nothing else to write. */
import type { Bootloader } from './index.js';

export const blsBackend: Bootloader = {
  name: 'bls',
  writeConfig() {
    // entries in /boot/loader.<B>/entries are read by the loader as they are
  },
};
