/** `pull REMOTE REF[@COMMIT]...` and `pull-local SRC REF...`, with progress on stderr. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { type PullResult, type PullStats, newStats, pullLocal, pullRemote } from '../../transport/index.js';
import { formatBytes, json, out } from '../render.js';
import { openRepo } from './repo.js';

function intOpt(name: string, min = 0) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name}: "${v}" is not an integer >= ${min}`);
    return Number(v);
  };
}

function secondsOpt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name}: "${v}" is not a positive number of seconds`);
    return n;
  };
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** Renders progress on stderr: a bar on a TTY, a plain line every few seconds otherwise, or JSON lines. */
function startProgress(stats: PullStats, mode: 'json' | 'tty' | 'plain' | 'quiet'): (succeeded: boolean) => void {
  if (mode === 'quiet') return () => {};
  let lastPlain = 0;
  const snapshot = () => {
    const elapsed = (Date.now() - stats.startedAt) / 1000;
    const fetched = stats.metadataFetched + stats.contentFetched;
    const rate = elapsed > 0 ? stats.bytes / elapsed : 0;
    const left = Math.max(0, stats.requested - fetched);
    const eta = fetched > 0 ? (left * elapsed) / fetched : Infinity;
    return { elapsed, fetched, rate, eta, left };
  };
  const render = (final: boolean): void => {
    const s = snapshot();
    if (mode === 'json') {
      process.stderr.write(JSON.stringify({
        event: final ? 'done' : 'progress', phase: stats.phase, fetched: s.fetched, requested: stats.requested,
        metadata: stats.metadataFetched, content: stats.contentFetched, bytes: stats.bytes,
        bytesPerSecond: Math.round(s.rate), etaSeconds: Number.isFinite(s.eta) ? Math.round(s.eta) : null,
        elapsedSeconds: Math.round(s.elapsed * 10) / 10,
      }) + '\n');
      return;
    }
    const text = `${stats.phase}: ${s.fetched}/${stats.requested} objects, ${formatBytes(stats.bytes)}, ${formatBytes(Math.round(s.rate))}/s, ETA ${final ? '0s' : fmtTime(s.eta)}`;
    if (mode === 'tty') {
      const width = 24;
      const frac = stats.requested > 0 ? Math.min(1, s.fetched / stats.requested) : 0;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
      process.stderr.write(`\r\x1b[K[${bar}] ${text}${final ? '\n' : ''}`);
    } else if (final || Date.now() - lastPlain >= 2000) {
      lastPlain = Date.now();
      process.stderr.write(text + '\n');
    }
  };
  const t = setInterval(() => render(false), mode === 'tty' ? 200 : 500);
  return (succeeded: boolean) => {
    clearInterval(t);
    // on failure the error line is the last word: no closing progress line
    if (succeeded) render(true);
    else if (mode === 'tty') process.stderr.write('\r\x1b[K');
  };
}

/** Runs a pull with its progress on stderr (bar, plain lines, JSON lines or nothing). */
async function withProgress(o: { json?: boolean; quiet?: boolean }, run: (stats: PullStats) => Promise<PullResult>): Promise<PullResult> {
  const stats = newStats();
  const stop = startProgress(stats, o.quiet ? 'quiet' : o.json ? 'json' : process.stderr.isTTY ? 'tty' : 'plain');
  let done = false;
  try {
    const r = await run(stats);
    done = true;
    return r;
  } finally {
    stop(done);
  }
}

function report(r: PullResult, prefix: string, asJson: boolean): void {
  if (asJson) json(r);
  else for (const x of r.refs) out(`${prefix}${x.ref} ${x.commit}`);
}

export function registerPullCommands(program: Command): void {
  program
    .command('pull')
    .description('download commits and their objects from a remote, verifying every object')
    .argument('<remote>', 'remote name (see remote add)')
    .argument('<refs...>', 'REF or REF@COMMIT')
    .option('--repo <path>', 'repository path')
    .option('--depth <n>', 'also pull N parent commits (-1: all)', intOpt('--depth', -1), 0)
    .option('--mirror', 'write refs/heads/REF instead of refs/remotes/REMOTE/REF')
    .option('--commit-metadata-only', 'fetch only the commit objects')
    .option('--concurrency <n>', 'requests in flight', intOpt('--concurrency', 1), 16)
    .option('--idle-timeout <secs>', 'fail a request that receives nothing for this long', secondsOpt('--idle-timeout'), 30)
    .option('--low-speed-limit <bytes>', 'fail a request slower than this many bytes/s ...', intOpt('--low-speed-limit'), 0)
    .option('--low-speed-time <secs>', '... over this many seconds', secondsOpt('--low-speed-time'), 30)
    .option('--network-retries <n>', 'retries of transient network failures', intOpt('--network-retries'), 2)
    .option('--max-redirects <n>', 'redirects followed per request', intOpt('--max-redirects'), 5)
    .option('--disable-static-deltas', 'never use static deltas')
    .option('--require-static-deltas', 'fail unless a static delta can be used')
    .option('--json', 'progress as JSON lines on stderr, result as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .action(async (remote: string, refs: string[], o: {
      repo?: string; depth: number; mirror?: boolean; commitMetadataOnly?: boolean; concurrency: number;
      idleTimeout: number; lowSpeedLimit: number; lowSpeedTime: number; networkRetries: number; maxRedirects: number;
      disableStaticDeltas?: boolean; requireStaticDeltas?: boolean; json?: boolean; quiet?: boolean;
    }) => {
      const repo = openRepo(o);
      if (o.disableStaticDeltas && o.requireStaticDeltas) throw new UsageError('--disable-static-deltas and --require-static-deltas conflict');
      const r = await withProgress(o, (stats) =>
        pullRemote(repo, remote, {
          refs, depth: o.depth, mirror: o.mirror ?? false, commitMetadataOnly: o.commitMetadataOnly ?? false,
          concurrency: o.concurrency, idleTimeoutMs: o.idleTimeout * 1000, lowSpeedLimit: o.lowSpeedLimit,
          lowSpeedTimeMs: o.lowSpeedTime * 1000, retries: o.networkRetries, maxRedirects: o.maxRedirects,
          staticDeltas: o.disableStaticDeltas ? 'disable' : o.requireStaticDeltas ? 'require' : 'auto',
          stats,
        }),
      );
      report(r, o.mirror ? '' : `${remote}:`, o.json ?? false);
    });

  program
    .command('pull-local')
    .description('copy commits and their objects from another repository on disk, verifying every object')
    .argument('<src>', 'source repository path')
    .argument('<refs...>', 'REF or REF@COMMIT')
    .option('--repo <path>', 'repository path')
    .option('--remote <name>', 'write refs/remotes/NAME/REF instead of refs/heads/REF')
    .option('--depth <n>', 'also pull N parent commits (-1: all)', intOpt('--depth', -1), 0)
    .option('--commit-metadata-only', 'copy only the commit objects')
    .option('--json', 'progress as JSON lines on stderr, result as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .action(async (src: string, refs: string[], o: {
      repo?: string; remote?: string; depth: number; commitMetadataOnly?: boolean; json?: boolean; quiet?: boolean;
    }) => {
      const repo = openRepo(o);
      const r = await withProgress(o, (stats) =>
        pullLocal(repo, src, { refs, remote: o.remote ?? null, depth: o.depth, commitMetadataOnly: o.commitMetadataOnly ?? false, stats }),
      );
      report(r, o.remote ? `${o.remote}:` : '', o.json ?? false);
    });
}
