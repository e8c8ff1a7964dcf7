/** Public surface of static deltas: generate, apply (per part for pull, or offline), export. */
export { parseSuperblock, decodeDeltaPart, startPartDecode, type EarlyPartDecode, executeDeltaPart, type ExecuteOptions, type StagedObjects, applyDeltaOffline, applyFallbackObject, partSatisfied, verifyComplete, type ApplyOfflineOptions, type ApplyResult } from './apply.js';
export { generateStaticDelta, archivedObject, type GenerateOptions, type GenerateResult } from './generate.js';
export { exportDelta, type ExportOptions, type ExportResult } from './bundle.js';
export { bsdiff, bspatch } from './bsdiff.js';
export {
  deltaRelDir, deltaName, parseDeltaName, deltaIndexRelPath, superblockCommitmeta, superblockInlinePart, isSignedSuperblock,
  type Superblock, type DeltaPartHeader, type DeltaFallback, type DeltaObjectRef,
} from '../format/index.js';
export { listDeltas, findDelta, deleteDelta, updateDeltaIndex, type DeltaRef } from '../repo/index.js';
