/**
 * cairn's error catalogue: one base class with a stable `code`, one subclass per failure kind.
 * docs/errors.md lists every code; test/unit/errors.test.ts keeps the two in step.
 * The CLI prints `message` (plus causes) on one line and exits non-zero.
 */
export interface ErrorFields {
  path?: string;
  object?: string;
  ref?: string;
  url?: string;
  cause?: unknown;
}

export abstract class CairnError extends Error {
  abstract readonly code: string;
  /** Exit status the CLI uses for this error (1 unless it is a usage error). */
  readonly exitCode: number = 1;
  readonly path?: string;
  readonly object?: string;
  readonly ref?: string;
  readonly url?: string;

  constructor(message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = new.target.name;
    if (fields.path !== undefined) this.path = fields.path;
    if (fields.object !== undefined) this.object = fields.object;
    if (fields.ref !== undefined) this.ref = fields.ref;
    if (fields.url !== undefined) this.url = fields.url;
  }
}

function define<C extends string>(code: C, exitCode = 1) {
  return class extends CairnError {
    static readonly code: C = code;
    readonly code: C = code;
    override readonly exitCode: number = exitCode;
  };
}

/** Malformed bytes handed to a pure codec (GVariant, object encodings). */
export class FormatError extends define('FORMAT_INVALID') {}
/** A command line that cannot be run as given. */
export class UsageError extends define('CLI_USAGE', 2) {}

export class RepoNotFoundError extends define('REPO_NOT_FOUND') {}
export class RepoInvalidError extends define('REPO_INVALID') {}
export class RepoExistsError extends define('REPO_EXISTS') {}
export class RepoConfigError extends define('REPO_CONFIG_INVALID') {}
export class RefNotFoundError extends define('REPO_REF_NOT_FOUND') {}
export class RefInvalidError extends define('REPO_REF_INVALID') {}
export class ObjectNotFoundError extends define('REPO_OBJECT_MISSING') {}
export class ObjectCorruptError extends define('REPO_OBJECT_CORRUPT') {}
export class UnsupportedFileError extends define('REPO_UNSUPPORTED_FILE') {}
export class SourceReadError extends define('REPO_SOURCE_UNREADABLE') {}
export class CheckoutError extends define('REPO_CHECKOUT_FAILED') {}
export class FsckFailedError extends define('REPO_FSCK_FAILED') {}
export class LockedError extends define('REPO_LOCKED') {}
export class IoError extends define('IO_FAILED') {}
/** A filesystem cairn writes to is full or over quota (ENOSPC, EDQUOT): free space, or prune, and run it again. */
export class NoSpaceError extends define('IO_NO_SPACE') {}
/** Network side (pull, remotes, serve). */
export class RemoteNotFoundError extends define('REMOTE_NOT_FOUND') {}
export class RemoteExistsError extends define('REMOTE_EXISTS') {}
export class RemoteInvalidError extends define('REMOTE_INVALID') {}
export class PullNetworkError extends define('PULL_NETWORK') {}
export class PullTimeoutError extends define('PULL_TIMEOUT') {}
export class PullHttpError extends define('PULL_HTTP_STATUS') {}
export class PullRedirectError extends define('PULL_REDIRECT') {}
export class PullTooLargeError extends define('PULL_TOO_LARGE') {}
export class PullObjectCorruptError extends define('PULL_OBJECT_CORRUPT') {}
export class PullSummaryError extends define('PULL_SUMMARY_INVALID') {}
export class PullRefNotFoundError extends define('PULL_REF_NOT_FOUND') {}
export class PullSignatureError extends define('PULL_SIGNATURE') {}
export class PullDeltaError extends define('PULL_DELTA') {}
export class ServeError extends define('SERVE_FAILED') {}

/** Static deltas (src/delta) and signatures (src/repo/sign.ts). */
export class DeltaInvalidError extends define('DELTA_INVALID') {}
export class DeltaCorruptError extends define('DELTA_PART_CORRUPT') {}
export class DeltaNotFoundError extends define('DELTA_NOT_FOUND') {}
export class DeltaFromMissingError extends define('DELTA_FROM_MISSING') {}
export class DeltaIncompleteError extends define('DELTA_INCOMPLETE') {}
export class DeltaCompressionError extends define('DELTA_XZ_FAILED') {}
export class SignKeyInvalidError extends define('SIGN_KEY_INVALID') {}
export class SignVerifyError extends define('SIGN_VERIFY_FAILED') {}
export class SignMissingError extends define('SIGN_NOT_SIGNED') {}

/** Sysroot, deployments and boot entries (src/sysroot). */
export class SysrootNotFoundError extends define('SYSROOT_NOT_FOUND') {}
export class SysrootInvalidError extends define('SYSROOT_INVALID') {}
export class SysrootUnknownOsError extends define('SYSROOT_UNKNOWN_OS') {}
export class SysrootIndexError extends define('SYSROOT_INDEX_OUT_OF_RANGE') {}
export class SysrootOriginCorruptError extends define('SYSROOT_ORIGIN_CORRUPT') {}
export class SysrootNoKernelError extends define('SYSROOT_NO_KERNEL') {}
export class SysrootBootFullError extends define('SYSROOT_BOOT_FULL') {}
export class SysrootLockedError extends define('SYSROOT_LOCKED') {}
export class SysrootRefusedError extends define('SYSROOT_REFUSED') {}

export const ERROR_CLASSES = [
  DeltaInvalidError, DeltaCorruptError, DeltaNotFoundError, DeltaFromMissingError, DeltaIncompleteError,
  DeltaCompressionError, SignKeyInvalidError, SignVerifyError, SignMissingError,
  FormatError, UsageError, RepoNotFoundError, RepoInvalidError, RepoExistsError, RepoConfigError,
  RefNotFoundError, RefInvalidError, ObjectNotFoundError, ObjectCorruptError, UnsupportedFileError,
  SourceReadError, CheckoutError, FsckFailedError, LockedError, IoError, NoSpaceError,
  RemoteNotFoundError, RemoteExistsError, RemoteInvalidError, PullNetworkError, PullTimeoutError, PullHttpError,
  PullRedirectError, PullTooLargeError, PullObjectCorruptError, PullSummaryError, PullRefNotFoundError,
  PullSignatureError, PullDeltaError, ServeError,
  SysrootNotFoundError, SysrootInvalidError, SysrootUnknownOsError, SysrootIndexError, SysrootOriginCorruptError,
  SysrootNoKernelError, SysrootBootFullError, SysrootLockedError, SysrootRefusedError,
] as const;

/** A system error code that means the filesystem is full or over quota (IO_NO_SPACE). */
export function isNoSpaceCode(code: unknown): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * `e` as a NoSpaceError that says what was being written (`what`: "cannot store objects in R"),
 * when it is a system error ENOSPC or EDQUOT; anything else is handed back as it is. The system's
 * message stays in it: "cannot store objects in R: ENOSPC: no space left on device, write".
 */
export function noSpace(e: unknown, what: string, path?: string): unknown {
  if (e instanceof CairnError) return e;
  if (!isNoSpaceCode((e as NodeJS.ErrnoException | null)?.code)) return e;
  return new NoSpaceError(`${what}: ${(e as Error).message}`, { cause: e, ...(path === undefined ? {} : { path }) });
}

/** One line: the message followed by its causes' messages. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e !== undefined && e !== null && i < 5; i++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (!parts.some((p) => p.includes(msg))) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}
