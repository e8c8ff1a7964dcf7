/** Small filesystem helpers shared by the repo layer: atomic writes, fsync, xattrs, the process helper. */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as XattrAddon from '@napi-rs/xattr';
import type { Xattr } from '../format/index.js';
import { IoError } from '../errors.js';

export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `data` to `dest` atomically: temp file beside it, fsync (if durable), rename, fsync dir. */
export function writeFileAtomic(dest: string, data: string | Uint8Array, opts: { durable: boolean; mode?: number }): void {
  const dir = path.dirname(dest);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.tmp-${path.basename(dest)}-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o644);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (opts.durable) fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, dest);
  if (opts.durable) fsyncPath(dir);
}

/**
 * Flushes the whole filesystem holding `p` (syncfs(2), via coreutils `sync -f`): one call
 * instead of an fsync per object, as ostree does at the end of a transaction.
 */
export function syncFilesystem(p: string): void {
  execFileSync('sync', ['-f', p], { stdio: 'ignore' });
}

/**
 * syncFilesystem without blocking this thread (a pull keeps fetching while a batch is flushed).
 * Runs through the process helper when one was started (see startProcessHelper).
 */
export function syncFilesystemAsync(p: string): Promise<void> {
  const viaHelper = helper?.run('sync', [p]);
  if (viaHelper) {
    return viaHelper.then((status) => {
      if (status !== 0) throw new IoError(`sync -f ${p} failed (exit status ${status})`, { path: p });
    });
  }
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', p], (e) => (e ? reject(new IoError(`sync -f ${p} failed: ${e.message}`, { path: p, cause: e })) : resolve()));
  });
}

/**
 * `xz -d` from the file `input` into the file `output`, which `ulimit -f` caps at `limitBlocks`
 * 512-byte blocks ('unlimited' for none), xz's messages going to `errors`: through the process
 * helper. Resolves with the exit status (128 + N when signal N ended xz: SIGXFSZ is 153), or is
 * null when no helper runs (the caller spawns xz itself).
 */
export function unxzViaHelper(limitBlocks: string, input: string, output: string, errors: string): Promise<number> | null {
  return helper?.run('unxz', [limitBlocks, input, output, errors]) ?? null;
}

/**
 * `xz -d` of the first `bytes` bytes written into the FIFO `fifo`, which the helper makes
 * (Node cannot), into the file `output` (capped as for unxzViaHelper), xz's messages going to
 * `errors`. `ready` resolves once the FIFO exists (false: it could not be made, and `done` is
 * 1); `done` with xz's exit status. xz reads through `head -c bytes`, so it sees the end of its
 * input with the last byte, not when the writer gets round to closing the FIFO. `head` runs
 * for at most `seconds`, then xz fails; and once this process is gone (killed before it opened
 * the FIFO, say), the helper ends the wait for a writer at once (see ProcessHelper). Null when
 * no helper runs.
 */
export function unxzFromFifoViaHelper(
  limitBlocks: string, fifo: string, bytes: number, output: string, errors: string, seconds: number,
): { ready: Promise<boolean>; done: Promise<number> } | null {
  return helper?.runFifo([limitBlocks, fifo, output, errors, String(bytes)], String(seconds)) ?? null;
}

/**
 * A shell that runs the few commands cairn starts often (`sync -f`, `xz -d`), one per request
 * line, each in the background, answering each with its exit status. Spawning forks this whole
 * process: ~8 ms of this thread each time once a pull holds 200 MB, and 2-5 ms for each of a
 * delta pull's xz processes, just as its parts arrive. The helper is forked once, early, while
 * the process is small, and afterwards it forks only itself. A request is tab-separated fields,
 * each quoted where the shell uses it: nothing in them is run as shell code. It ends when this
 * process closes its stdin (or exits).
 */
class ProcessHelper {
  dead = false;
  get pid(): number | undefined {
    return this.child.pid;
  }

  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { op: string; args: string[]; resolve: (status: number) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private pending = '';

  constructor() {
    // When this process is gone (its end of stdin closed), a FIFO that it never opened for
    // writing (killed in between) would keep its `head` waiting for a writer until the timeout
    // (an hour): each FIFO made is opened for writing once and closed, so that head sees an end
    // of input, xz fails, and the job ends. (Fields never hold a newline: see usable().)
    const script = [
      "fifos=''",
      "while IFS='\t' read -r id op a b c d e f g; do",
      '  case $op in',
      '  sync) { sync -f -- "$a" 2>/dev/null; echo "$id $?"; } & ;;',
      '  unxz) { (ulimit -f "$a" && exec xz -d -c -q <"$b" >"$c" 2>"$d"); echo "$id $?"; } & ;;',
      '  unxzfifo) if mkfifo -m 600 -- "$b" 2>/dev/null; then fifos="$fifos$b\n"; echo "$id 0"; { (ulimit -f "$a" && timeout "$g" head -c "$e" -- "$b" | xz -d -c -q >"$c" 2>"$d"); echo "$f $?"; } & else echo "$id 1"; echo "$f 1"; fi ;;',
      '  *) echo "$id 2" ;;',
      '  esac',
      'done',
      "set -f; IFS='\n'",
      'for f in $fifos; do if [ -p "$f" ]; then : 1<>"$f"; fi; done',
    ].join('\n');
    this.child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
    // a helper that cannot start or dies hands its waiting requests to one process each
    const fail = (): void => {
      this.dead = true;
      const orphans = [...this.waiting.values()];
      this.waiting.clear();
      for (const w of orphans) {
        if (w.op === 'sync') syncFilesystemAsync(w.args[0]!).then(() => w.resolve(0), w.reject);
        else w.reject(new IoError(`the process helper ended while running ${w.op}`));
      }
    };
    this.child.on('error', fail);
    this.child.on('exit', fail);
    this.child.stdin!.on('error', () => {}); // an exit is reported above
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      this.pending += d;
      let nl: number;
      while ((nl = this.pending.indexOf('\n')) >= 0) {
        const [id, status] = this.pending.slice(0, nl).split(' ');
        this.pending = this.pending.slice(nl + 1);
        const w = this.waiting.get(Number(id));
        if (!w) continue;
        this.waiting.delete(Number(id));
        w.resolve(Number(status));
      }
      if (this.waiting.size === 0) this.idle();
    });
    this.idle();
  }

  /** Lets this process exit while no request is waiting. */
  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
    (this.child.stdin as unknown as { unref(): void }).unref();
  }

  /** The request's exit status; null when the helper cannot take it (gone, or a field with a tab or newline). */
  run(op: 'sync' | 'unxz', args: string[]): Promise<number> | null {
    if (!this.usable(args)) return null;
    const [id, status] = this.expect(op, args);
    this.child.stdin!.write(`${[id, op, ...args].join('\t')}\n`);
    return status;
  }

  /** An unxzfifo request: answered twice, when the FIFO is made and when xz ends. */
  runFifo(args: string[], seconds: string): { ready: Promise<boolean>; done: Promise<number> } | null {
    if (!this.usable([...args, seconds])) return null;
    const [readyId, ready] = this.expect('unxzfifo', args);
    const [doneId, done] = this.expect('unxzfifo', args);
    this.child.stdin!.write(`${[readyId, 'unxzfifo', ...args, doneId, seconds].join('\t')}\n`);
    return { ready: ready.then((status) => status === 0), done };
  }

  private usable(args: string[]): boolean {
    return !this.dead && !args.some((a) => /[\t\n]/.test(a));
  }

  /** A new request id and the promise of its answer. */
  private expect(op: string, args: string[]): [number, Promise<number>] {
    if (this.waiting.size === 0) {
      this.child.ref();
      (this.child.stdout as unknown as { ref(): void }).ref();
    }
    const id = this.nextId++;
    return [id, new Promise((resolve, reject) => void this.waiting.set(id, { op, args, resolve, reject }))];
  }
}

let helper: ProcessHelper | null = null;

/** Starts the process helper (once per process): durable transactions call it when they begin, early part decodes (delta/xz.ts) when they start. */
export function startProcessHelper(): void {
  helper ??= new ProcessHelper();
}

/** The helper's process id (tests: a helper that dies must not lose a sync). */
export function processHelperPid(): number | undefined {
  return helper?.pid;
}

const load = createRequire(import.meta.url);
let addon: typeof XattrAddon | undefined;

/** The native xattr addon, loaded on first use: ~3 ms of start-up that a bare checkout never needs. */
function xattr(): typeof XattrAddon {
  return (addon ??= load('@napi-rs/xattr') as typeof XattrAddon);
}

/** Reads all xattrs of a path without following symlinks, canonicalised by the caller. */
export function readXattrs(p: string): Xattr[] {
  let names: string[];
  try {
    names = xattr().listAttributesSync(p);
  } catch (e) {
    if ((e as Error).message.includes('not supported')) return [];
    throw e;
  }
  const out: Xattr[] = [];
  for (const name of names) {
    const value = xattr().getAttributeSync(p, name);
    if (value) out.push({ name, value });
  }
  return out;
}

export function setXattr(p: string, name: string, value: Uint8Array): void {
  xattr().setAttributeSync(p, name, value);
}

export function getXattr(p: string, name: string): Buffer | null {
  return xattr().getAttributeSync(p, name);
}

/** Up to `len` bytes of the open file `fd` from `pos`: fewer only where the file ends first. */
export function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, b, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? b : b.subarray(0, got);
}

/** A file's bytes, or null when it does not exist. */
export function readFileIfExists(p: string): Buffer | null {
  try {
    return fs.readFileSync(p);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
}

/** Whether a process with this id runs (one of another user's counts). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false; // kill(0 or -1, 0) asks about groups
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isErrno(e, 'EPERM');
  }
}

/**
 * Removes the entries of `dir` that a process now gone left behind (killed while it used them),
 * at most once a minute per directory in this process. `owner` names an entry's process: null
 * for an entry that is not one of these (kept); an id that is not a process id (removed).
 */
export function sweepDeadOwners(dir: string, owner: (name: string) => number | null): void {
  const now = Date.now();
  if (now - (swept.get(dir) ?? -Infinity) < SWEEP_EVERY_MS) return;
  swept.set(dir, now);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = owner(name);
    if (pid === null || pid === process.pid || processAlive(pid)) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}
const SWEEP_EVERY_MS = 60_000;
const swept = new Map<string, number>();

export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code;
}
