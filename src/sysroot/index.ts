/** Public surface of the sysroot layer: the only code that writes under a sysroot or /boot. */
export {
  type SysrootOptions, type SysrootState, type StagedInfo, loadSysroot, deployDir, originPath, originRefspec,
  pendingAndRollback, STAGED_FILE,
} from './sysroot.js';
export { deploy, finalizeStaged, type DeployOptions, type DeployResult, type FinalizeResult, type KargEdits } from './deploy.js';
export {
  initFs, osInit, rollback, undeploy, pin, setOrigin, editKargs, bless, cleanup, status, type DeploymentStatus,
  type BlessResult, type ListChange,
} from './admin.js';
export type { CleanupResult } from './cleanup.js';
export type { Deployment } from './deployments-plan.js';
export {
  parseEntryFileName, formatEntryFileName, chooseBootEntry, sortMenuEntries, blessedFileName, badFileName,
  type EntryName, type MenuEntry, type BootChoice,
} from './boot-counting.js';
export { parseBlsEntry, blsGet, type BlsEntry } from './bls.js';
