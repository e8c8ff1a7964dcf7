/** Public surface of the repo layer: the only code that writes under a repository. */
export { Repo, REPO_MODES, type RepoMode, type ContentObject, type InitOptions } from './repo.js';
export { ObjectPresence } from './presence.js';
export { resolveRev, setRef, deleteRef, listRefs, parseRefspec, validateRefName } from './refs.js';
export { Transaction } from './staging.js';
export { commitTree, type CommitOptions, type CommitResult, type TreeSource } from './commit-writer.js';
export { checkout, type CheckoutOptions, type CheckoutResult } from './checkout.js';
export { fsck, type FsckProblem, type FsckResult } from './fsck.js';
export { prune, reachableObjects, type PruneOptions, type PruneResult } from './prune.js';
export { log, ls, cat, diff, commitVersion, type LogEntry, type LsEntry, type DiffEntry } from './inspect.js';
export { SMALL_FILE } from './staging.js';
export { inspectFilezFile, sizedInflate } from './object-files.js';
export { isErrno, fsyncPath, readAt, readFileIfExists, startProcessHelper, sweepDeadOwners, unxzFromFifoViaHelper, unxzViaHelper, writeFileAtomic } from './fsutil.js';
export * from './sign.js';
export * from './delta-store.js';
export * from './summary.js';
export * from './remotes.js';
export * from './pull-state.js';
export { holdWriterPool, pullWorkers, startWriterPool } from './writer-pool.js';
