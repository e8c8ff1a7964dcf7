/**
 * Object file work on worker threads: pull (verify + write each received object), commit into
 * bare-family repos (read + hash + write each small file), archive checkout (inflate + write)
 * and fsck (read + inflate + hash each small content object).
 * Done on the main thread, or as five round trips each through libuv's pool, this work left the
 * main thread — which also runs the HTTP client or walks the tree — as the bottleneck. Here each
 * object is one job for a worker that does all of it with synchronous calls; jobs gather into
 * one message while a worker is busy (see flush). Every lane writes into its own directory (see
 * staging.ts). Without compiled workers (running from TypeScript sources) or with one core,
 * jobs run in-thread, with the same code.
 */
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { ObjectCorruptError } from '../errors.js';
import { type JobResult, type ObjectJob, writeObjectJob } from './object-files.js';

/** What a worker sends back per job: null (done), the job's result, or the failure. */
export type JobOutcome = null | { result: JobResult } | { corrupt: string } | { message: string; code?: string; path?: string };

export function runJobCatching(job: ObjectJob): JobOutcome {
  try {
    const result = writeObjectJob(job);
    return result ? { result } : null;
  } catch (e) {
    if (e instanceof ObjectCorruptError) return { corrupt: e.message };
    const err = e as NodeJS.ErrnoException;
    return { message: err.message, code: err.code, path: err.path };
  }
}

function toError(o: Exclude<JobOutcome, null | { result: JobResult }>, job: ObjectJob): Error {
  const object = 'csum' in job ? job.csum : undefined;
  if ('corrupt' in o) return new ObjectCorruptError(o.corrupt, { object });
  // the worker's fs error, as the same call in this thread would have thrown it (ENOSPC, EIO...)
  return Object.assign(new Error(o.message), o.code ? { code: o.code } : {}, o.path ? { path: o.path } : {});
}

interface Waiter {
  resolve: (r: JobResult | undefined) => void;
  reject: (e: Error) => void;
  job: ObjectJob;
}

interface Lane {
  worker: Worker;
  /** Jobs posted and not answered yet, in order. */
  waiting: Waiter[];
  /** Jobs not posted yet (see flush). */
  queued: ObjectJob[];
  transfer: ArrayBuffer[];
  /** Messages posted and not answered yet. */
  posted: number;
  /** Set when the worker died: its jobs, and any later ones, fail with this. */
  dead: Error | null;
}

class WriterPool {
  private readonly lanes: Lane[] = [];
  private flushScheduled = false;

  constructor(width: number) {
    for (let i = 0; i < width; i++) {
      const worker = new Worker(new URL('./writer-pool-worker.js', import.meta.url));
      const lane: Lane = { worker, waiting: [], queued: [], transfer: [], posted: 0, dead: null };
      worker.on('message', (outcomes: JobOutcome[]) => {
        lane.posted--;
        for (const o of outcomes) {
          const w = lane.waiting.shift()!;
          if (o === null) w.resolve(undefined);
          else if ('result' in o) w.resolve(o.result);
          else w.reject(toError(o, w.job));
        }
        this.feed(lane);
        if (lane.waiting.length === 0) worker.unref();
      });
      const die = (e: Error): void => {
        lane.dead ??= e;
        lane.queued = [];
        lane.transfer = [];
        for (const w of lane.waiting.splice(0)) w.reject(lane.dead);
        if (this.lanes.every((l) => l.dead)) for (const w of this.shared.splice(0)) w.reject(lane.dead);
      };
      worker.on('error', die);
      worker.on('exit', (code) => die(new Error(`object writer thread exited (code ${code})`)));
      worker.unref();
      this.lanes.push(lane);
    }
  }

  /** Jobs for whichever worker is idle first (ANY_LANE), taken SHARED_BATCH at a time. */
  private readonly shared: Waiter[] = [];

  run(job: ObjectJob, transfer: ArrayBuffer[], laneIndex: number): Promise<JobResult | undefined> {
    if (laneIndex === ANY_LANE) {
      if (transfer.length > 0) throw new Error('jobs that hand over buffers must name their lane');
      const alive = this.lanes.find((l) => !l.dead);
      if (!alive) return Promise.reject(this.lanes[0]!.dead);
      return new Promise<JobResult | undefined>((resolve, reject) => {
        this.shared.push({ resolve, reject, job });
        this.scheduleFlush();
      });
    }
    const lane = this.lanes[laneIndex % this.lanes.length]!;
    if (lane.dead) return Promise.reject(lane.dead);
    return new Promise<JobResult | undefined>((resolve, reject) => {
      if (lane.waiting.length === 0) lane.worker.ref();
      lane.waiting.push({ resolve, reject, job });
      lane.queued.push(job);
      lane.transfer.push(...transfer);
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Jobs go out at the end of an event-loop turn, and only to a worker with nothing to do (shared
   * jobs: with at most one message in hand): while it is busy they gather into its next message.
   * A message costs the main thread ~50 µs (and wakes the worker), so batching matters; an idle
   * worker is never kept waiting.
   */
  private flush(): void {
    this.flushScheduled = false;
    for (const lane of this.lanes) this.feed(lane);
  }

  /** Posts to the lane while it is ready and there is something to send. */
  private feed(lane: Lane): void {
    while (this.ready(lane) && (lane.queued.length > 0 || this.shared.length > 0)) this.post(lane);
  }

  /** Idle, or with one message out while shared jobs wait: then the next is there when it is done. */
  private ready(lane: Lane): boolean {
    return !lane.dead && (lane.posted === 0 || (lane.posted === 1 && this.shared.length > 0));
  }

  private post(lane: Lane): void {
    if (this.shared.length > 0) {
      // shared jobs carry no buffers; their waiters follow the lane's own, as the jobs do
      const take = this.shared.splice(0, SHARED_BATCH);
      if (lane.waiting.length === 0) lane.worker.ref();
      for (const w of take) {
        lane.waiting.push(w);
        lane.queued.push(w.job);
      }
    }
    if (lane.queued.length === 0) return;
    lane.worker.postMessage(lane.queued, lane.transfer);
    lane.posted++;
    lane.queued = [];
    lane.transfer = [];
  }
}

/** runObjectJob's lane for jobs that may run on any worker (they must not write into a lane's directory). */
export const ANY_LANE = -1;
/** Shared jobs per message (fsck's verify jobs carry 64 objects each): both workers stay busy to the end. */
const SHARED_BATCH = 1;

let pool: WriterPool | null | undefined;

/** Workers are compiled code: from TypeScript sources (tests of the library) jobs run in-thread. */
const COMPILED = import.meta.url.endsWith('.js');

function cores(): number {
  return os.availableParallelism?.() ?? os.cpus().length;
}

/** CAIRN_WORKERS, when set: the number of worker threads (0: none, every job in-thread). */
function workersFromEnv(): number | null {
  const v = process.env.CAIRN_WORKERS;
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, 8) : null;
}

/**
 * Workers for commit, checkout and fsck: two (none on one core). More creators than cores made
 * ext4 spin on its locks: a 2-core pull took 0.9 s of system time with two workers and 4.5 s
 * with three.
 */
function defaultWorkers(): number {
  return workersFromEnv() ?? (cores() >= 2 ? 2 : 0);
}

/**
 * Workers for a pull: one fewer than the cores, at most two. Its own thread is busy too (the
 * HTTP client, the tree walk): on two cores a full pull of 7,551 objects took less CPU with one
 * worker than with two (user 1.95–2.1 against 2.2–2.7 s) and less time (medians 2.33 and 2.37
 * against 2.93 and 2.75 s, two rounds), and an update of 1,338 objects, 0.70–0.72 s against
 * 0.705–0.77 s in-thread, where two workers gained nothing.
 */
export function pullWorkers(): number {
  return workersFromEnv() ?? Math.min(cores() - 1, 2);
}

/**
 * The first jobs of a process run in-thread: starting a worker costs ~80 ms of CPU (its own
 * isolate, built-ins and a compile of the worker code), more than a handful of jobs take. A
 * delta pull writes ~3 objects through here, a full pull or commit thousands.
 */
const IN_THREAD_FIRST = 32;
let jobsSeen = 0;
let holds = 0;

function thePool(): WriterPool | null {
  if (pool === undefined) {
    if (holds > 0 || ++jobsSeen <= IN_THREAD_FIRST) return null;
    startWriterPool();
  }
  return pool!;
}

/**
 * Keeps jobs in-thread until startWriterPool() is called or the returned release is: for a
 * caller that soon knows whether it has enough work for the workers to pay for their start (a
 * pull, once its walk has counted the objects it lacks). Not when CAIRN_WORKERS is set: then
 * the workers start as they would for anyone.
 */
export function holdWriterPool(): () => void {
  if (process.env.CAIRN_WORKERS) return () => {};
  holds++;
  let released = false;
  return () => {
    if (!released) holds--;
    released = true;
  };
}

/**
 * Starts the workers now (if none run yet), for a caller that is about to hand over thousands of
 * jobs. `workers` is asked only then: a pull calls this for every directory it walks.
 */
export function startWriterPool(workers: () => number = defaultWorkers): void {
  if (pool !== undefined) return;
  const n = workers();
  pool = COMPILED && n >= 1 ? new WriterPool(n) : null;
}

/** A copy of the bytes in a buffer of their own, so that it can be handed to a worker. */
function own(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer ? b : new Uint8Array(b);
}

/**
 * How many lanes (staging directories, one per worker) a transaction spreads its jobs over: 1
 * when jobs run in-thread. A pool with fewer workers serves several lanes from one worker.
 */
export function writerLanes(): number {
  return COMPILED ? Math.max(1, defaultWorkers()) : 1;
}

/**
 * Runs an object write on a worker (or in-thread). Jobs of one lane run in order on the same
 * worker. With `handOver`, the job's bytes move to the worker without a copy and must not be
 * used by the caller afterwards.
 */
export function runObjectJob(job: ObjectJob, lane: number, handOver = false): Promise<JobResult | undefined> {
  const p = thePool();
  if (!p) {
    const o = runJobCatching(job);
    if (o === null) return Promise.resolve(undefined);
    return 'result' in o ? Promise.resolve(o.result) : Promise.reject(toError(o, job));
  }
  if (job.op === 'content') {
    const content = handOver ? own(job.content) : new Uint8Array(job.content);
    return p.run({ ...job, content }, [content.buffer as ArrayBuffer], lane);
  }
  if (job.op === 'checkout-filez' || job.op === 'commit-file' || job.op === 'verify') return p.run(job, [], lane);
  const bytes = handOver ? own(job.bytes) : new Uint8Array(job.bytes);
  return p.run({ ...job, bytes }, [bytes.buffer as ArrayBuffer], lane);
}
