/** Public surface of the transport layer: pull over HTTP(S) or from a local repo, and serve. */
import { FormatError, RemoteInvalidError } from '../errors.js';
import { type Checksum, parseMetadata } from '../format/index.js';
import type { Repo } from '../repo/index.js';
import { getRemote, remoteSignPolicy, remoteTls } from '../repo/index.js';
import { verifyCommitSignature, verifySummarySignature } from '../repo/index.js';
import { HttpFetcher, type HttpFetcherOptions } from './fetcher.js';
import { type PullResult, type PullStats, Puller, newStats, parsePullRefs } from './pull.js';
import { HttpSource, LocalSource } from './source.js';

export { serveRepo, type RunningServer, type ServeOptions } from './server.js';
export { HttpFetcher, type Fetcher, type FetchRequest, type FetchResult } from './fetcher.js';
export { Puller, newStats, parsePullRefs, type PullResult, type PullStats, type PullRefSpec } from './pull.js';
export { MAX_CONTENT_OBJECT, MAX_METADATA_FETCH, MAX_SUMMARY_SIZE } from './source.js';
export { trustExtraCaCertsFile } from './trust.js';

export interface RemotePullOptions {
  refs: readonly string[];
  depth?: number;
  mirror?: boolean;
  commitMetadataOnly?: boolean;
  concurrency?: number;
  idleTimeoutMs?: number;
  lowSpeedLimit?: number;
  lowSpeedTimeMs?: number;
  retries?: number;
  maxRedirects?: number;
  /** auto: use a static delta when one is advertised; require: fail without one; disable: never. */
  staticDeltas?: 'auto' | 'disable' | 'require';
  stats?: PullStats;
  onRequest?: HttpFetcherOptions['onRequest'];
}

function commitVerifier(commit: Buffer, meta: Buffer | null, keys: string[]): boolean {
  if (!meta) return false;
  try {
    return verifyCommitSignature(commit, parseMetadata(meta), keys);
  } catch (e) {
    if (e instanceof FormatError) return false;
    throw e;
  }
}

function summaryVerifier(summary: Buffer, sig: Buffer | null, keys: string[]): boolean {
  return sig !== null && verifySummarySignature(summary, sig, keys);
}

/** `pull REMOTE REF[@COMMIT]...`: the remote's URL and signature policy come from the repo config. */
export async function pullRemote(repo: Repo, remoteName: string, opts: RemotePullOptions): Promise<PullResult> {
  const remote = getRemote(repo, remoteName);
  const policy = remoteSignPolicy(remote);
  const url = remote.options.contenturl && !remote.options.contenturl.startsWith('mirrorlist=') ? remote.options.contenturl : remote.url;
  if (url.startsWith('file://')) {
    return pullLocal(repo, decodeURIComponent(new URL(url).pathname), { ...opts, remote: remoteName });
  }
  if (!/^https?:\/\//.test(url)) throw new RemoteInvalidError(`remote "${remoteName}": unsupported URL "${url}"`);
  const stats = opts.stats ?? newStats();
  const fetcher = new HttpFetcher(url, {
    connections: Math.max(2, Math.ceil((opts.concurrency ?? 16) / 2)),
    ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
    ...(opts.lowSpeedLimit !== undefined ? { lowSpeedLimit: opts.lowSpeedLimit } : {}),
    ...(opts.lowSpeedTimeMs !== undefined ? { lowSpeedTimeMs: opts.lowSpeedTimeMs } : {}),
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.maxRedirects !== undefined ? { maxRedirects: opts.maxRedirects } : {}),
    ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
    tls: remoteTls(remote),
    onBytes: (n) => {
      stats.bytes += n;
    },
  });
  const puller = new Puller(repo, new HttpSource(url, fetcher), {
    remote: remoteName,
    refs: parsePullRefs(opts.refs),
    depth: opts.depth ?? 0,
    mirror: opts.mirror ?? false,
    commitMetadataOnly: opts.commitMetadataOnly ?? false,
    concurrency: opts.concurrency ?? 16,
    staticDeltas: opts.staticDeltas ?? 'auto',
    signPolicy: policy,
    verifyCommitSignature: commitVerifier,
    verifySummarySignature: summaryVerifier,
    stats,
  });
  return puller.run();
}

/** `pull-local SRC REF...`: copies from another repository on disk, verifying every object. */
export async function pullLocal(
  repo: Repo,
  srcPath: string,
  opts: { refs: readonly string[]; remote?: string | null; depth?: number; commitMetadataOnly?: boolean; stats?: PullStats },
): Promise<PullResult> {
  const puller = new Puller(repo, new LocalSource(srcPath), {
    remote: opts.remote ?? null,
    refs: parsePullRefs(opts.refs),
    depth: opts.depth ?? 0,
    commitMetadataOnly: opts.commitMetadataOnly ?? false,
    concurrency: 8,
    ...(opts.stats ? { stats: opts.stats } : {}),
  });
  return puller.run();
}

export type { Checksum };
