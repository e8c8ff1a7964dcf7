/**
 * xz for delta parts, through the `xz` CLI (Debian xz-utils: the same liblzma ostree links).
 * Node 20 has no xz; the npm bindings either need a native build with downloads or are a
 * different encoder. One process per part costs a few milliseconds, parts are few and large.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaCompressionError } from '../errors.js';
import { startProcessHelper, sweepDeadOwners, unxzFromFifoViaHelper, unxzViaHelper } from '../repo/index.js';

/** xz stream, CRC64, preset 8 as ostree; optionally with the x86 BCJ filter for executables. */
export function xzCompress(data: Uint8Array, opts: { preset?: number; extreme?: boolean; threads?: number; x86?: boolean } = {}): Promise<Buffer> {
  const preset = `${opts.preset ?? 8}${opts.extreme ? 'e' : ''}`;
  // --x86: the BCJ filter for x86 machine code (any xz/liblzma decoder, ostree's included, reads it)
  const filters = opts.x86 ? ['--x86', `--lzma2=preset=${preset}`] : [`-${preset}`];
  const args = ['-z', '-c', '-q', '--check=crc64', ...filters, `-T${opts.threads ?? 1}`];
  return run(args, data, Number.MAX_SAFE_INTEGER, 'compressing delta part');
}

/**
 * Decompresses one xz stream, refusing output larger than `maxOutput` (decompression bombs).
 * `expectedSize`: what the output should be (a delta part's declared size), for choosing where
 * the temporary files go.
 */
export function xzDecompress(data: Uint8Array, maxOutput: number, expectedSize?: number): Promise<Buffer> {
  return run(['-d', '-c', '-q'], data, maxOutput, 'decompressing delta part', expectedSize, true);
}

/**
 * Where the temporary files go: $TMPDIR if set; else, for up to 64 MiB of data expected,
 * /dev/shm (memory: the files live for milliseconds, and on a disk the next syncfs wrote them
 * out before they were deleted); else the system's temporary directory.
 */
function scratchDir(expectedBytes: number): string {
  if (process.env.TMPDIR) return os.tmpdir();
  if (expectedBytes <= MAX_SHM_BYTES) {
    try {
      fs.accessSync('/dev/shm', fs.constants.W_OK | fs.constants.X_OK);
      return '/dev/shm';
    } catch {
      // none here
    }
  }
  return os.tmpdir();
}
const MAX_SHM_BYTES = 64 * 1024 * 1024;

/**
 * A new directory for one xz run's files, named after this process: a process killed mid-run
 * leaves its directory behind (in /dev/shm, that is memory: up to a decoded part), and a later
 * run in the same place removes those whose process is gone. Names without a process id (made
 * before they had one) are left alone.
 */
function scratch(expectedBytes: number): string {
  const parent = scratchDir(expectedBytes);
  sweepDeadOwners(parent, (name) => {
    const m = /^cairn-xz-(\d+)-/.exec(name);
    return m ? Number(m[1]) : null;
  });
  return fs.mkdtempSync(path.join(parent, `cairn-xz-${process.pid}-`));
}

/**
 * Runs xz on `input` through temporary files, not pipes: a pipe holds 64 KiB, and while this
 * thread is busy (applying one part, building the next) nobody feeds or drains it, so xz stops.
 * A pull's second part was decoded only once the first had been applied. The output file is
 * capped at `maxOutput` by `ulimit -f`.
 */
async function run(args: string[], input: Uint8Array, maxOutput: number, what: string, expectedSize?: number, decompress = false): Promise<Buffer> {
  const dir = scratch(input.length + (expectedSize ?? maxOutput));
  try {
    const inPath = path.join(dir, 'in');
    const outPath = path.join(dir, 'out');
    fs.writeFileSync(inPath, input, { mode: 0o600 });
    const limit = outputLimit(maxOutput);
    // a part's decode is started by the process helper when one runs (no fork of this process)
    const errPath = path.join(dir, 'err');
    const helped = decompress ? unxzViaHelper(limit, inPath, outPath, errPath) : null;
    if (helped) {
      const status = await helped.catch((e: unknown) => {
        throw new DeltaCompressionError(`${what}: ${(e as Error).message}`, { cause: e });
      });
      const failure = exitError(what, maxOutput, status === 128 + SIGXFSZ, status, `${status}`, () => readErrors(errPath));
      if (failure) throw failure;
      return readOutput(outPath, maxOutput, what);
    }
    const inFd = fs.openSync(inPath, 'r');
    const outFd = fs.openSync(outPath, 'wx', 0o600);
    try {
      await new Promise<void>((resolve, reject) => {
        let errText = '';
        const child = spawn('sh', ['-c', `ulimit -f ${limit} && exec xz "$@"`, 'sh', ...args], { stdio: [inFd, outFd, 'pipe'] });
        child.stderr!.on('data', (c: Buffer) => {
          if (errText.length < 4096) errText += c.toString();
        });
        child.on('error', (e) => reject(new DeltaCompressionError(`${what}: cannot run xz`, { cause: e })));
        child.on('close', (code, signal) => {
          const failure = exitError(what, maxOutput, signal === 'SIGXFSZ', code, `${code ?? signal}`, () => errText.trim().split('\n')[0] ?? '');
          if (failure) reject(failure);
          else resolve();
        });
      });
    } finally {
      fs.closeSync(inFd);
      fs.closeSync(outFd);
    }
    return readOutput(outPath, maxOutput, what);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const SIGXFSZ = 25;

/** An xz decode fed while its input still arrives (see unxzStream). */
export interface UnxzStream {
  /** Feeds the next bytes of the xz stream; more than announced, or any after abort(), are dropped. */
  write(chunk: Buffer): void;
  /** Gives up: xz sees its input end early, and `result` rejects. */
  abort(): void;
  /**
   * The decoded bytes, once all the announced input was written and xz ended well. It rejects
   * otherwise (a failed or abandoned decode); it never leaves a process or a file behind.
   */
  readonly result: Promise<Buffer>;
}

/**
 * Starts decoding an xz stream of `inputBytes` bytes that will be written as it arrives (a
 * delta part still downloading): xz runs from the process helper, reading a FIFO through which
 * the writes go from libuv's threads, so a busy main thread does not stall it (the helper is
 * started if it is not running yet). Output as for xzDecompress (capped at `maxOutput`). Null
 * when the helper cannot take it; the caller then decodes the whole input with xzDecompress.
 * Nothing here checks the input: a caller uses the result only for input it has verified.
 */
export function unxzStream(maxOutput: number, expectedSize: number, inputBytes: number): UnxzStream | null {
  if (inputBytes <= 0) return null;
  startProcessHelper();
  const dir = scratch(expectedSize);
  const fifo = path.join(dir, 'in');
  const outPath = path.join(dir, 'out');
  const errPath = path.join(dir, 'err');
  const job = unxzFromFifoViaHelper(outputLimit(maxOutput), fifo, inputBytes, outPath, errPath, FIFO_WAIT_SECONDS);
  if (!job) {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
  const what = 'decompressing delta part';
  let fd: number | null = null;
  let writing = false;
  let aborted = false;
  let failed: Error | null = null;
  let queued: Buffer[] = [];
  let accepted = 0; // bytes taken by write()
  let fed = 0; // bytes in the FIFO
  let idle: (() => void) | null = null; // called when the write in flight returns
  const ended = job.done.then(() => undefined, () => undefined);
  let endedNow = false;
  void ended.then(() => (endedNow = true));

  const closeFd = (): void => {
    if (fd === null || fd < 0 || writing) return;
    const f = fd;
    fd = -1; // closed: no more writes
    fs.close(f, () => {});
  };
  const pump = (): void => {
    if (fd === null || fd < 0 || writing) return;
    if (aborted || failed || fed === inputBytes) return closeFd();
    if (queued.length === 0) return;
    const bufs = queued;
    queued = [];
    writing = true;
    // a blocking write on one of libuv's threads: xz takes the bytes as fast as it decodes them
    fs.writev(fd, bufs, (e, n) => {
      writing = false;
      idle?.();
      if (e) failed = e; // EPIPE: xz (or head) ended early; `done` says why
      else {
        fed += n;
        // a write cut short by a signal: the rest goes first next time
        let skip = n;
        const rest: Buffer[] = [];
        for (const b of bufs) {
          if (skip >= b.length) skip -= b.length;
          else {
            rest.push(skip > 0 ? b.subarray(skip) : b);
            skip = 0;
          }
        }
        queued = rest.concat(queued);
      }
      pump();
    });
  };
  // The FIFO opens once xz's side (head) opens it. If the job ended without ever opening it, a
  // reader opened here lets the pending open return.
  const opened = job.ready.then((made) => {
    if (!made) throw new DeltaCompressionError(`${what}: cannot make a FIFO in ${dir}`);
    return new Promise<void>((resolve) => {
      let released: number | null = null;
      const release = (): void => {
        if (fd !== null) return;
        try {
          released = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
        } catch {
          // gone already: the open below has failed or will
        }
      };
      void ended.then(release);
      fs.open(fifo, fs.constants.O_WRONLY, (e, f) => {
        if (released !== null) fs.closeSync(released);
        if (e) failed = e;
        else if (endedNow && released !== null) fs.closeSync(f); // opened only through release()
        else {
          fd = f;
          pump();
        }
        resolve();
      });
    });
  });

  const result = (async (): Promise<Buffer> => {
    try {
      await opened;
      const status = await job.done;
      // xz can be done, and its end reported, before the last write's return is
      if (writing) await new Promise<void>((resolve) => (idle = resolve));
      if (aborted) throw new DeltaCompressionError(`${what}: abandoned`);
      const failure = exitError(what, maxOutput, status === 128 + SIGXFSZ, status, `${status}`, () => readErrors(errPath));
      if (failure) throw failure;
      if (fed !== inputBytes) throw new DeltaCompressionError(`${what}: ${fed} of ${inputBytes} bytes reached xz`);
      return readOutput(outPath, maxOutput, what);
    } catch (e) {
      throw e instanceof DeltaCompressionError ? e : new DeltaCompressionError(`${what}: ${(e as Error).message}`, { cause: e });
    } finally {
      aborted = true;
      closeFd();
      await ended;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
  result.catch(() => {}); // a caller that gave up does not await it

  return {
    write(chunk: Buffer): void {
      if (aborted || failed || chunk.length === 0) return;
      const take = Math.min(chunk.length, inputBytes - accepted);
      if (take <= 0) return;
      queued.push(take < chunk.length ? chunk.subarray(0, take) : chunk);
      accepted += take;
      pump();
    },
    abort(): void {
      if (aborted) return;
      aborted = true;
      queued = [];
      closeFd();
    },
    result,
  };
}

/**
 * How long xz's side (`head` reading the FIFO) may run: a backstop. A pull killed before it
 * opened the FIFO has its job ended by the helper at once (see ProcessHelper in repo/fsutil.ts);
 * a part still downloading after this is decoded once it is in, from memory.
 */
const FIFO_WAIT_SECONDS = 3600;

/** ulimit -f's argument for an output cap: dash counts 512-byte blocks, one more than the cap tells "too large". */
function outputLimit(maxOutput: number): string {
  return maxOutput >= Number.MAX_SAFE_INTEGER ? 'unlimited' : String(Math.floor(maxOutput / 512) + 1);
}

/**
 * How an xz run ended, as the error to report, or null when it succeeded. `exceeded`: stopped by
 * the `ulimit -f` cap (SIGXFSZ); `said`: the first line of what xz wrote, asked only on a failure.
 */
function exitError(what: string, maxOutput: number, exceeded: boolean, code: number | null, ended: string, said: () => string): DeltaCompressionError | null {
  if (exceeded) return new DeltaCompressionError(`${what}: decompressed data exceeds ${maxOutput} bytes`);
  if (code === 127) return new DeltaCompressionError(`${what}: cannot run xz (is xz-utils installed?)`);
  if (code !== 0) return new DeltaCompressionError(`${what}: ${said() || `xz exited ${ended}`}`);
  return null;
}

function readOutput(outPath: string, maxOutput: number, what: string): Buffer {
  // with a cap, ulimit -f bounds the file to one 512-byte block past it: reading it whole is safe
  const out = fs.readFileSync(outPath);
  if (out.length > maxOutput) throw new DeltaCompressionError(`${what}: decompressed data exceeds ${maxOutput} bytes`);
  return out;
}

/** The first line of what xz said (up to 4 KiB of it). */
function readErrors(errPath: string): string {
  try {
    const fd = fs.openSync(errPath, 'r');
    try {
      const b = Buffer.alloc(4096);
      return b.toString('utf8', 0, fs.readSync(fd, b, 0, b.length, 0)).trim().split('\n')[0] ?? '';
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}
