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
  serializeArchiveHeader, serializeBareUserMeta, sha256,
} from '../format/index.js';
import { IoError } from '../errors.js';
import { isErrno, setXattr, syncFilesystem } from './fsutil.js';
import type { Repo } from './repo.js';

/** The process umask, read once (pull's async writer creates files with their final mode). */
const UMASK = process.umask();

/** Files up to this size are read whole and compressed in one call; larger ones stream. */
export const SMALL_FILE = 1024 * 1024;

export class Transaction {
  readonly dir: string;
  private readonly pending = new Map<string, Promise<void>>();
  private readonly zlibLevel: number;
  private closed = false;

  constructor(readonly repo: Repo) {
    sweepStaleStaging(repo);
    this.dir = path.join(repo.path, 'tmp', `staging-${process.pid}-${randomBytes(6).toString('hex')}`);
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(path.join(this.dir, '.pid'), String(process.pid));
    const level = Number(repo.config.get('archive', 'zlib-level') ?? 6);
    this.zlibLevel = Number.isInteger(level) && level >= 0 && level <= 9 ? level : 6;
  }

  private stagePath(rel: string): string {
    return path.join(this.dir, rel.slice('objects/'.length).replace('/', '_'));
  }

  /** Runs `write` unless the object is already in the repo or in this transaction. */
  private once(csum: Checksum, type: ObjectType, write: (dest: string) => Promise<void> | void): Promise<void> {
    const rel = objectRelPath(csum, type, this.repo.archive);
    const existing = this.pending.get(rel);
    if (existing) return existing;
    if (this.repo.hasObject(csum, type)) return Promise.resolve();
    const p = Promise.resolve().then(() => write(this.stagePath(rel)));
    this.pending.set(rel, p);
    return p;
  }

  /** Stores a metadata object (commit, dirtree, dirmeta, commitmeta) and returns its checksum. */
  async writeMetadata(type: ObjectType, bytes: Uint8Array, name?: Checksum): Promise<Checksum> {
    const csum = name ?? sha256(bytes);
    await this.once(csum, type, (dest) => fs.writeFileSync(dest, bytes, { mode: 0o644, flag: 'wx' }));
    return csum;
  }

  /**
   * Stores a content object whose bytes are in memory (commit). Bare objects are written with
   * synchronous calls on purpose: for a CPU-bound commit of many small files they are faster
   * than the promise-based writer pull uses (writeVerifiedContentAsync), measured at 1.05x vs
   * 1.29x ostree's time on the minbase bare commit.
   */
  async writeContentBuffer(header: FileHeader, content: Buffer): Promise<Checksum> {
    const csum = sha256(fileChecksumPrefix(header), content);
    await this.once(csum, 'file', async (dest) => {
      if (this.repo.archive) {
        const isLink = (header.mode & S_IFMT) === S_IFLNK;
        const z = isLink ? Buffer.alloc(0) : await deflate(content, this.zlibLevel);
        fs.writeFileSync(dest, Buffer.concat([serializeArchiveHeader(header, content.length), z]), { mode: 0o644, flag: 'wx' });
      } else {
        this.writeBare(dest, header, (fd) => fs.writeSync(fd, content));
      }
    });
    return csum;
  }

  /**
   * Stores a content object streamed from `source` (`size` bytes): hashed and, in archive
   * mode, compressed on the fly into a temporary file that is renamed once its name is known.
   */
  async writeContentStream(header: FileHeader, source: Readable, size: number): Promise<Checksum> {
    const tmp = path.join(this.dir, `stream-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256').update(fileChecksumPrefix(header));
    let seen = 0;
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const out = fs.createWriteStream(tmp, { mode: 0o644, flags: 'wx' });
    if (this.repo.archive) {
      out.write(serializeArchiveHeader(header, size));
      await pipeline(source, hasher, zlib.createDeflateRaw({ level: this.zlibLevel }), out);
    } else {
      await pipeline(source, hasher, out);
    }
    if (seen !== size) {
      fs.rmSync(tmp, { force: true });
      throw new IoError(`source changed while being read: expected ${size} bytes, read ${seen}`);
    }
    const csum = hash.digest('hex') as Checksum;
    let used = false;
    await this.once(csum, 'file', (dest) => {
      used = true;
      if (this.repo.archive) fs.renameSync(tmp, dest);
      else {
        this.writeBare(dest, header, null, tmp);
      }
    });
    if (!used) fs.rmSync(tmp, { force: true });
    return csum;
  }

  /**
   * Stores an archive-mode .filez object as-is (pull): the caller has already verified that it
   * parses and that its content hashes to `csum`. `source` is the bytes or a file that is moved.
   */
  async writeVerifiedFilez(csum: Checksum, source: Buffer | { file: string }): Promise<void> {
    if (!this.repo.archive) throw new IoError('a .filez object can only be stored as-is in an archive repository');
    await this.once(csum, 'file', (dest) => {
      if (Buffer.isBuffer(source)) fs.writeFileSync(dest, source, { mode: 0o644, flag: 'wx' });
      else {
        fs.renameSync(source.file, dest);
        fs.chmodSync(dest, 0o644);
      }
    });
  }

  /**
   * Pull's write path: stores a metadata object or a content object whose checksum the caller
   * has verified, creating and writing the file through libuv's thread pool so that many
   * objects are written in parallel (file creation is what bounds a pull into a bare repo).
   */
  async writeVerifiedMetadataAsync(type: ObjectType, bytes: Uint8Array, csum: Checksum): Promise<void> {
    await this.once(csum, type, (dest) => fs.promises.writeFile(dest, bytes, { mode: 0o644, flag: 'wx' }));
  }

  async writeVerifiedContentAsync(csum: Checksum, h: FileHeader, content: Buffer): Promise<void> {
    await this.once(csum, 'file', async (dest) => {
      const isLink = (h.mode & S_IFMT) === S_IFLNK;
      const mode = this.repo.mode;
      if (this.repo.archive) {
        const z = isLink ? Buffer.alloc(0) : await deflate(content, this.zlibLevel);
        await fs.promises.writeFile(dest, Buffer.concat([serializeArchiveHeader(h, content.length), z]), { mode: 0o644, flag: 'wx' });
        return;
      }
      if (isLink && mode !== 'bare-user') {
        await fs.promises.symlink(h.symlinkTarget, dest);
        if (mode === 'bare') {
          await fs.promises.lchown(dest, h.uid, h.gid);
          for (const x of h.xattrs) setXattr(dest, x.name, x.value);
        }
        return;
      }
      const createMode = mode === 'bare-user' ? (isLink ? 0o644 : (h.mode & 0o775) | 0o400) : 0o600;
      const fh = await fs.promises.open(dest, 'wx', createMode);
      try {
        const data = isLink ? Buffer.from(h.symlinkTarget + '\0', 'utf8') : content;
        if (data.length > 0) await fh.write(data, 0, data.length, 0);
        if (mode === 'bare') {
          await fh.chown(h.uid, h.gid);
          await fh.chmod(h.mode & 0o7777);
          for (const x of h.xattrs) setXattr(dest, x.name, x.value);
        } else if (mode === 'bare-user') {
          // created with this mode already; chmod only where the umask took bits away
          if ((createMode & ~UMASK) !== createMode) await fh.chmod(createMode);
          setXattr(dest, 'user.ostreemeta', serializeBareUserMeta(h));
        } else {
          await fh.chmod(h.mode & 0o775);
        }
        await fh.utimes(0, 0);
      } finally {
        await fh.close();
      }
    });
  }

  /** Writes a bare / bare-user / bare-user-only content object at `dest`. */
  private writeBare(dest: string, h: FileHeader, writeContent: ((fd: number) => void) | null, fromTmp?: string): void {
    const isLink = (h.mode & S_IFMT) === S_IFLNK;
    const mode = this.repo.mode;
    if (isLink && mode !== 'bare-user') {
      fs.symlinkSync(h.symlinkTarget, dest);
      if (mode === 'bare') {
        fs.lchownSync(dest, h.uid, h.gid);
        for (const x of h.xattrs) setXattr(dest, x.name, x.value);
      }
      return;
    }
    if (fromTmp) fs.renameSync(fromTmp, dest);
    const fd = fs.openSync(dest, fromTmp ? 'r+' : 'wx', 0o600);
    try {
      if (isLink) fs.writeSync(fd, Buffer.from(h.symlinkTarget + '\0', 'utf8'));
      else if (writeContent) writeContent(fd);
      if (mode === 'bare') {
        fs.fchownSync(fd, h.uid, h.gid);
        fs.fchmodSync(fd, h.mode & 0o7777);
        for (const x of h.xattrs) setXattr(dest, x.name, x.value);
      } else if (mode === 'bare-user') {
        fs.fchmodSync(fd, isLink ? 0o644 : (h.mode & 0o775) | 0o400);
        setXattr(dest, 'user.ostreemeta', serializeBareUserMeta(h));
      } else {
        fs.fchmodSync(fd, h.mode & 0o775);
      }
      fs.futimesSync(fd, 0, 0);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Waits for every write, flushes, and moves the staged objects into objects/. */
  async commit(): Promise<number> {
    this.closed = true;
    await Promise.all(this.pending.values());
    const durable = this.repo.durable;
    if (this.pending.size > 0 && durable) syncFilesystem(this.dir);
    const made = new Set<string>();
    for (const rel of this.pending.keys()) {
      const dest = path.join(this.repo.path, rel);
      const d = path.dirname(dest);
      if (!made.has(d)) {
        fs.mkdirSync(d, { recursive: true });
        made.add(d);
      }
      try {
        fs.renameSync(this.stagePath(rel), dest);
      } catch (e) {
        // a concurrent writer may have stored the same object meanwhile: identical by name
        if (!isErrno(e, 'ENOENT') || !fs.existsSync(dest)) throw e;
      }
    }
    if (this.pending.size > 0 && durable) syncFilesystem(this.repo.path);
    fs.rmSync(this.dir, { recursive: true, force: true });
    return this.pending.size;
  }

  /** Drops everything staged (best effort: a stale dir is also swept by the next transaction). */
  async abort(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.pending.values());
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function deflate(b: Buffer, level: number): Promise<Buffer> {
  return new Promise((res, rej) => zlib.deflateRaw(b, { level }, (e, out) => (e ? rej(e) : res(out))));
}

/** Removes staging directories whose owning process is gone (killed mid-transaction). */
export function sweepStaleStaging(repo: Repo): void {
  const tmp = path.join(repo.path, 'tmp');
  let entries: string[];
  try {
    entries = fs.readdirSync(tmp);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith('staging-')) continue;
    const dir = path.join(tmp, e);
    let pid = NaN;
    try {
      pid = Number(fs.readFileSync(path.join(dir, '.pid'), 'utf8'));
    } catch {
      pid = Number(e.split('-')[1]);
    }
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) continue;
    if (pid === process.pid) continue;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isErrno(e, 'EPERM');
  }
}
