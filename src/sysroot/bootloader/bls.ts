/** BLS-native loaders (systemd-boot): the entries are the configuration, counting is in their names. */
import type { Bootloader } from './index.js';

export const blsBackend: Bootloader = {
  name: 'bls',
  countsInEntryNames: true,
  writeConfig() {
    // entries in /boot/loader.<B>/entries are read by the loader as they are
  },
};
