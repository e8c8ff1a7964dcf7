/**
 * Writing objects, the way ostree does it durably: every new object is written complete into a
 * private staging directory under tmp/, then (after one syncfs when core.fsync is on) renamed
 * into objects/. A process killed at any point leaves objects/ holding only complete objects;
 * a stale staging directory is removed by the next transaction.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import {
  type Checksum, type FileHeader, type ObjectType, S_IFLNK, S_IFMT, fileChecksumPrefix, objectRelPath,
  serializeArchiveHeader, sha256,
} from '../format/index.js';
import { IoError, ObjectCorruptError, noSpace } from '../errors.js';
import { isErrno, startProcessHelper, sweepDeadOwners, syncFilesystemAsync } from './fsutil.js';
import { type CommitFileResult, inspectFilezFile, readFilezHead, stagingName, writeBareObject, writeNewFile } from './object-files.js';
import { runObjectJob, writerLanes } from './writer-pool.js';
import type { Repo } from './repo.js';

export interface WriteOptions {
  /**
   * Do not look the object up in the repository first: the caller has just found it missing,
   * or does not mind writing it again (it replaces itself with the same bytes at commit).
   * Saves an lstat per object (a delta part writes a thousand in a row).
   */
  unchecked?: boolean;
}

/** What `pending` holds for an object written synchronously. */
const WRITTEN: Promise<void> = Promise.resolve();

/** How this process's staging directories are named (tmp/<this><random>): sweeps tell them by it. */
const OWN_STAGING = `staging-${process.pid}-`;

/** Least time between two early flushes of a transaction (see hintWriteback). */
const WRITEBACK_MS = 50;

/** Files up to this size are read whole and compressed in one call; larger ones stream. */
export const SMALL_FILE = 1024 * 1024;
/** Size of the pieces a large object streams in. */
const STREAM_CHUNK = 1024 * 1024;

export class Transaction {
  readonly dir: string;
  /** The lanes' directories, and the repository's path, normalised: object paths are joined to them as strings. */
  private readonly laneDirs: string[];
  private readonly root: string;
  private readonly pending = new Map<string, Promise<void>>();
  private readonly zlibLevel: number;
  private readonly lanes: number;
  /** Objects staged by a worker that chose the place itself (commitFile); others are at stagePath. */
  private readonly stagedAt = new Map<string, string>();
  private nextLane = 0;
  /** commit-file jobs still on a worker (their objects join `pending` when they finish). */
  private readonly workerJobs = new Set<Promise<unknown>>();
  private closed = false;
  private writebackRunning = false;
  private lastWriteback = 0;

  constructor(readonly repo: Repo) {
    sweepStaleStaging(repo);
    this.dir = path.join(repo.path, 'tmp', `${OWN_STAGING}${randomBytes(6).toString('hex')}`);
    this.lanes = writerLanes();
    this.laneDirs = Array.from({ length: this.lanes }, (_, i) => path.join(this.dir, String(i)));
    this.root = path.join(repo.path, '.');
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      for (const d of this.laneDirs) fs.mkdirSync(d);
      fs.writeFileSync(path.join(this.dir, '.pid'), String(process.pid));
    } catch (e) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      throw this.full(e);
    }
    if (repo.durable) startProcessHelper();
    const level = Number(repo.config.get('archive', 'zlib-level') ?? 6);
    this.zlibLevel = Number.isInteger(level) && level >= 0 && level <= 9 ? level : 6;
  }

  /**
   * Staged objects are spread over one subdirectory per writer-pool lane, and each lane writes
   * only into its own: creating a file holds the directory's lock for the whole inode
   * allocation, and two threads creating in one directory spent a core spinning on it
   * (rwsem_spin_on_owner, 12 % of a pull's samples).
   */
  private stageLane(rel: string): number {
    return parseInt(rel.charAt('objects/'.length), 16) % this.lanes;
  }

  /** A write into this repository that found its filesystem full says where (see noSpace). */
  private full(e: unknown): unknown {
    return noSpace(e, `cannot store objects in ${this.repo.path}`, this.repo.path);
  }

  private stagePath(rel: string): string {
    // (path.join normalises every time: ~4,000 calls in a delta pull)
    return this.stagedAt.get(rel) ?? `${this.laneDirs[this.stageLane(rel)]!}/${stagingName(rel)}`;
  }

  /** Runs `write` unless the object is already in the repo or in this transaction. */
  private once(csum: Checksum, type: ObjectType, write: (dest: string, lane: number) => Promise<unknown> | void, knownMissing = false): Promise<void> {
    const rel = objectRelPath(csum, type, this.repo.archive);
    const existing = this.pending.get(rel);
    if (existing) return existing;
    if (!knownMissing && this.repo.hasObject(csum, type)) return Promise.resolve();
    // a write that fails (a corrupt download, ENOSPC) leaves the transaction; only its caller sees the error
    const p = Promise.resolve()
      .then(async () => {
        await write(this.stagePath(rel), this.stageLane(rel));
      })
      .catch((e: unknown) => {
        this.pending.delete(rel);
        fs.rmSync(this.stagePath(rel), { force: true });
        throw this.full(e);
      });
    this.pending.set(rel, p);
    return p;
  }

  /**
   * `once` for a write done right here, synchronously: no promise and no microtask per object,
   * which a delta part writing a thousand small objects in a row paid for each (writeBareObject
   * and writeNewFile are synchronous anyway). False when the object was already there or staged.
   */
  private onceSync(csum: Checksum, type: ObjectType, write: (dest: string) => void, knownMissing = false): boolean {
    if (this.closed) throw new IoError(`${this.dir}: the transaction is closed`, { path: this.dir });
    const rel = objectRelPath(csum, type, this.repo.archive);
    if (this.pending.has(rel)) return false;
    if (!knownMissing && this.repo.hasObject(csum, type)) return false;
    const dest = this.stagePath(rel);
    try {
      write(dest);
    } catch (e) {
      fs.rmSync(dest, { force: true });
      throw this.full(e);
    }
    this.pending.set(rel, WRITTEN);
    return true;
  }

  /** writeMetadata of verified bytes, done synchronously (see onceSync). */
  writeMetadataSync(type: ObjectType, bytes: Uint8Array, csum: Checksum, opts: WriteOptions = {}): void {
    this.onceSync(csum, type, (dest) => writeNewFile(dest, bytes), opts.unchecked);
  }

  /**
   * writeContentBuffer of a verified object into a bare-family repository, done synchronously
   * (see onceSync). An archive repository compresses off this thread: writeContentBuffer.
   */
  writeContentSync(header: FileHeader, content: Buffer, csum: Checksum, opts: WriteOptions = {}): void {
    if (this.repo.archive) throw new IoError('writeContentSync is for bare-family repositories');
    this.onceSync(csum, 'file', (dest) => writeBareObject(dest, this.repo.mode, header, content), opts.unchecked);
  }

  /** Stores a metadata object (commit, dirtree, dirmeta, commitmeta) and returns its checksum. */
  async writeMetadata(type: ObjectType, bytes: Uint8Array, name?: Checksum): Promise<Checksum> {
    const csum = name ?? sha256(bytes);
    await this.once(csum, type, (dest) => writeNewFile(dest, bytes));
    return csum;
  }

  /**
   * Stores a content object whose bytes are in memory (symlinks, tarball members, delta
   * objects), written in this thread. Regular files of a directory commit go through
   * writeFileFromPath instead (a worker reads, hashes and writes them). `verified`: the checksum
   * the caller has already computed and checked, which is then not computed again.
   */
  async writeContentBuffer(header: FileHeader, content: Buffer, verified?: Checksum, opts: WriteOptions = {}): Promise<Checksum> {
    const csum = verified ?? sha256(fileChecksumPrefix(header), content);
    await this.once(csum, 'file', async (dest) => {
      if (this.repo.archive) {
        const isLink = (header.mode & S_IFMT) === S_IFLNK;
        const z = isLink ? Buffer.alloc(0) : await deflate(content, this.zlibLevel);
        writeNewFile(dest, Buffer.concat([serializeArchiveHeader(header, content.length), z]));
      } else {
        writeBareObject(dest, this.repo.mode, header, content);
      }
    }, opts.unchecked);
    return csum;
  }

  /**
   * Commits a regular file of `size` bytes into a bare-family repository: read, hashed and
   * written by a writer-pool worker, so that reading, hashing and creating files run on every
   * core while this thread walks the tree. Null when this repository or machine has no workers
   * (the caller reads the file itself); IoError if the file changed size while being read.
   */
  async writeFileFromPath(header: FileHeader, src: string, size: number): Promise<Checksum | null> {
    if (this.repo.archive || this.lanes < 2) return null;
    if (this.closed) throw new IoError(`${src}: the transaction is closed`, { path: src });
    const lane = this.nextLane++ % this.lanes;
    const job = runObjectJob(
      { op: 'commit-file', src, size, header, mode: this.repo.mode, repoPath: this.repo.path, stageDir: this.laneDirs[lane]! },
      lane,
    );
    this.workerJobs.add(job);
    const r = (await job.catch((e: unknown) => Promise.reject(this.full(e))).finally(() => this.workerJobs.delete(job))) as CommitFileResult | undefined;
    if (!r || 'changed' in r) throw new IoError(`${src}: file changed while being read`, { path: src });
    const rel = objectRelPath(r.checksum, 'file', false);
    if (r.staged && !this.pending.has(rel)) {
      this.stagedAt.set(rel, r.staged);
      this.pending.set(rel, Promise.resolve());
    }
    return r.checksum;
  }

  /**
   * Stores a content object streamed from `source` (`size` bytes): hashed and, in archive
   * mode, compressed on the fly into a temporary file that is renamed once its name is known.
   * With `expected`, the object is staged only if it is exactly `size` bytes, hashes to
   * `expected.csum` and passes `expected.check`; anything else is an ObjectCorruptError, and a
   * source longer than `size` is cut off as soon as it is.
   */
  async writeContentStream(header: FileHeader, source: Readable, size: number, expected?: { csum: Checksum; check?: () => void }): Promise<Checksum> {
    const tmp = path.join(this.dir, `stream-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256').update(fileChecksumPrefix(header));
    let seen = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        if (expected && seen > size) return cb(new ObjectCorruptError(`content is longer than the ${size} bytes its header says`, { object: expected.csum }));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const out = fs.createWriteStream(tmp, { mode: 0o644, flags: 'wx' });
    let csum: Checksum;
    try {
      if (this.repo.archive) {
        out.write(serializeArchiveHeader(header, size));
        await pipeline(source, hasher, zlib.createDeflateRaw({ level: this.zlibLevel }), out);
      } else {
        await pipeline(source, hasher, out);
      }
      if (seen !== size) {
        if (expected) throw new ObjectCorruptError(`content is ${seen} bytes, header says ${size}`, { object: expected.csum });
        throw new IoError(`source changed while being read: expected ${size} bytes, read ${seen}`);
      }
      csum = hash.digest('hex') as Checksum;
      if (expected) {
        if (csum !== expected.csum) throw new ObjectCorruptError(`its content hashes to ${csum}`, { object: expected.csum });
        expected.check?.();
      }
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw this.full(e);
    }
    let used = false;
    await this.once(csum, 'file', (dest) => {
      used = true;
      if (this.repo.archive) fs.renameSync(tmp, dest);
      else {
        writeBareObject(dest, this.repo.mode, header, null, tmp);
      }
    });
    if (!used) fs.rmSync(tmp, { force: true });
    return csum;
  }

  /**
   * Stores a large .filez download (a file on disk) into a bare-family repository in one pass:
   * inflated, hashed and written together, and staged only if it passes inspectFilezFile's
   * checks (which cost a pass of their own). ObjectCorruptError when it does not.
   */
  async unpackFilezFile(csum: Checksum, file: string): Promise<void> {
    if (this.repo.archive) throw new IoError('unpackFilezFile is for bare-family repositories');
    const { header, headerLength, size, total } = readFilezHead(csum, file);
    if ((header.mode & S_IFMT) === S_IFLNK) {
      await inspectFilezFile(csum, file); // a symlink carries no payload: nothing to stream
      await this.writeContentBuffer(header, Buffer.alloc(0), csum);
      return;
    }
    // in 1 MiB pieces, not 64 KiB reads and 16 KiB inflated chunks: every piece costs this thread a
    // round through the stream machinery (a 4.7 MB fallback object of a delta took ~30 ms of it)
    const inflate = zlib.createInflateRaw({ chunkSize: STREAM_CHUNK });
    try {
      const compressed = fs.createReadStream(file, { start: headerLength, highWaterMark: STREAM_CHUNK });
      await this.writeContentStream(header, compressed.pipe(inflate), size, {
        csum,
        check: () => {
          if (inflate.bytesWritten !== total - headerLength) throw new ObjectCorruptError('trailing bytes after the compressed content', { object: csum });
        },
      });
    } catch (e) {
      if ((e as { errno?: number }).errno !== undefined && (e as { code?: string }).code?.startsWith('Z_')) {
        throw new ObjectCorruptError(`bad compressed content (${(e as Error).message})`, { object: csum, cause: e });
      }
      throw e;
    }
  }

  /**
   * Stores an archive-mode .filez object whose file is on disk (a large pull download), moved in
   * as-is: the caller has already verified that it parses and hashes to `csum`.
   */
  async writeVerifiedFilezFile(csum: Checksum, file: string): Promise<void> {
    if (!this.repo.archive) throw new IoError('a .filez object can only be stored as-is in an archive repository');
    await this.once(csum, 'file', (dest) => {
      fs.renameSync(file, dest);
      fs.chmodSync(dest, 0o644);
    });
  }

  /*
   * Pull's write path: one object = one job on a writer-pool worker, so that verifying and
   * writing thousands of objects runs beside the network code instead of on its thread. The
   * caller has just checked that the object is missing, so `once` does not stat it again.
   */

  /** Stores a metadata object whose checksum the caller has verified. */
  async writeVerifiedMetadataAsync(type: ObjectType, bytes: Uint8Array, csum: Checksum): Promise<void> {
    await this.once(csum, type, (dest, lane) => runObjectJob({ op: 'raw', dest, bytes }, lane), true);
  }

  /** Stores a content object (header + content) whose checksum the caller has verified. */
  async writeVerifiedContentAsync(csum: Checksum, header: FileHeader, content: Buffer): Promise<void> {
    await this.once(csum, 'file', (dest, lane) => runObjectJob({ op: 'content', dest, mode: this.repo.mode, header, content, zlibLevel: this.zlibLevel }, lane), true);
  }

  /**
   * Stores an archive-mode .filez received from a remote under the name `csum`, verifying it on
   * the way (see inspectFilez): ObjectCorruptError when it does not match, and nothing stored.
   * The bytes are handed over to the worker: the caller must not use them afterwards.
   */
  async storeFilez(csum: Checksum, bytes: Buffer): Promise<void> {
    await this.once(csum, 'file', (dest, lane) => runObjectJob({ op: 'filez', dest, mode: this.repo.mode, csum, bytes }, lane, true), true);
  }

  /**
   * Starts flushing what has been written so far to disk, without waiting for it, so that
   * commit()'s syncfs has little left to write: for a writer that stages into one transaction
   * for a long while on this thread (a delta part), the flush then runs beside it instead of
   * after it. One at a time, at most every WRITEBACK_MS; nothing for a repo without fsync.
   */
  hintWriteback(): void {
    if (!this.repo.durable || this.closed || this.writebackRunning || this.pending.size === 0) return;
    const now = Date.now();
    if (now - this.lastWriteback < WRITEBACK_MS) return;
    this.writebackRunning = true;
    this.lastWriteback = now;
    syncFilesystemAsync(this.dir)
      .catch(() => {}) // only a head start: commit() syncs, and reports a failure
      .finally(() => {
        this.writebackRunning = false;
      });
  }

  /** Waits for every write, flushes, and moves the staged objects into objects/. */
  async commit(): Promise<number> {
    this.closed = true;
    await Promise.allSettled(this.pending.values());
    const durable = this.repo.durable;
    if (this.pending.size > 0 && durable) await syncFilesystemAsync(this.dir);
    await this.moveStaged();
    // the emptied staging directory goes while the renames are flushed, not after
    await Promise.all([
      this.pending.size > 0 && durable ? syncFilesystemAsync(this.repo.path) : undefined,
      fs.promises.rm(this.dir, { recursive: true, force: true }),
    ]);
    return this.pending.size;
  }

  /**
   * Renames every staged object into objects/, on libuv's threads: this thread only queues the
   * renames (a delta pull's 1,300 took ~27 ms of it one after another, at its end, while the
   * last part was applied). objects/XX/ is made when a rename finds it missing: most exist, and
   * a mkdir (with the stat after its EEXIST) for each of 256 of them cost the end of a pull ~3 ms.
   *
   * The renames run in three waves, each begun when the one before has ended: content objects
   * and dirmetas, then dirtrees, then commits. A process killed in the middle then never leaves
   * a commit in objects/ whose tree is not (fsck walks every commit not marked partial), nor a
   * dirtree without the files it names.
   */
  private async moveStaged(): Promise<void> {
    const made = new Map<string, Promise<void>>();
    const move = async (rel: string): Promise<void> => {
      const dest = `${this.root}/${rel}`;
      const from = this.stagePath(rel);
      try {
        try {
          await fs.promises.rename(from, dest);
        } catch (e) {
          if (!isErrno(e, 'ENOENT')) throw e;
          const d = path.dirname(dest);
          let mk = made.get(d);
          if (!mk) {
            mk = fs.promises.mkdir(d, { recursive: true }).then(() => {});
            made.set(d, mk);
          }
          await mk;
          await fs.promises.rename(from, dest);
        }
      } catch (e) {
        // a concurrent writer may have stored the same object meanwhile: identical by name
        if (!isErrno(e, 'ENOENT') || !fs.existsSync(dest)) throw this.full(e); // a directory that must grow can find the disk full
      }
    };
    const waves: string[][] = [[], [], []];
    for (const rel of this.pending.keys()) waves[renameWave(rel)]!.push(rel);
    for (const wave of waves) {
      // every rename has ended before the caller hears of a failure (it may remove the staging directory)
      const all = await Promise.allSettled(wave.map(move));
      for (const r of all) if (r.status === 'rejected') throw r.reason;
    }
  }

  /** Drops everything staged (best effort: a stale dir is also swept by the next transaction). */
  async abort(): Promise<void> {
    this.closed = true;
    // workers may still be writing into the staging directory: let them finish first
    await Promise.allSettled([...this.pending.values(), ...this.workerJobs]);
    try {
      fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // never mask the error that made the caller abort; the next transaction sweeps the directory
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** Which of moveStaged's waves an object's path (objects/XX/rest.type) belongs to. */
function renameWave(rel: string): number {
  if (rel.endsWith('.dirtree')) return 1;
  if (rel.endsWith('.commit') || rel.endsWith('.commitmeta')) return 2;
  return 0;
}

function deflate(b: Buffer, level: number): Promise<Buffer> {
  return new Promise((res, rej) => zlib.deflateRaw(b, { level }, (e, out) => (e ? rej(e) : res(out))));
}

/**
 * Removes staging directories whose owning process is gone (killed mid-transaction). Done at
 * most once a minute per repository and process: a pull starts several transactions in its
 * first tens of milliseconds, and each sweep read tmp/ and every staging directory's .pid again.
 */
export function sweepStaleStaging(repo: Repo): void {
  const tmp = path.join(repo.path, 'tmp');
  sweepDeadOwners(tmp, (e) => {
    if (!e.startsWith('staging-')) return null;
    if (e.startsWith(OWN_STAGING)) return process.pid;
    try {
      return Number(fs.readFileSync(path.join(tmp, e, '.pid'), 'utf8'));
    } catch {
      return Number(e.split('-')[1]);
    }
  });
}



