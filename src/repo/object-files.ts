/**
 * Writing one object file, synchronously: the work a Transaction does per object, kept free of
 * Transaction state so that it runs the same in the main thread and in writer-pool workers.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import {
  type Checksum, type FileHeader, type FileMeta, MAX_FILE_HEADER, S_IFLNK, S_IFMT, fileChecksumPrefix, parseArchiveHeader,
  canonicalXattrs, objectRelPath, parseBareUserMeta, serializeArchiveHeader, serializeBareUserMeta, sha256,
} from '../format/index.js';
import { CairnError, FormatError, ObjectCorruptError } from '../errors.js';
import { getXattr, readAt, readXattrs, setXattr } from './fsutil.js';
import type { RepoMode } from './repo.js';

/** The process umask, read once (objects and checked-out directories are created with their final mode where possible). */
export const UMASK = process.umask();

/**
 * Writes a bare / bare-user / bare-user-only content object at `dest` (which must not exist):
 * the content from `content`, or from the file `fromTmp` that is renamed to `dest` first.
 */
export function writeBareObject(dest: string, mode: RepoMode, h: FileHeader, content: Uint8Array | null, fromTmp?: string): void {
  const isLink = (h.mode & S_IFMT) === S_IFLNK;
  if (isLink && mode !== 'bare-user') {
    fs.symlinkSync(h.symlinkTarget, dest);
    if (mode === 'bare') {
      fs.lchownSync(dest, h.uid, h.gid);
      for (const x of h.xattrs) setXattr(dest, x.name, x.value);
    }
    return;
  }
  // bare-user objects are created with their final mode; chmod only where the umask took bits away
  const finalMode = mode === 'bare' ? h.mode & 0o7777 : mode === 'bare-user' ? (isLink ? 0o644 : (h.mode & 0o775) | 0o400) : h.mode & 0o775;
  const createMode = mode === 'bare' ? 0o600 : finalMode;
  if (fromTmp) fs.renameSync(fromTmp, dest);
  const fd = fs.openSync(dest, fromTmp ? 'r+' : 'wx', createMode);
  try {
    if (isLink) fs.writeSync(fd, Buffer.from(h.symlinkTarget + '\0', 'utf8'));
    else if (content && content.length > 0) writeAll(fd, content);
    if (mode === 'bare') {
      fs.fchownSync(fd, h.uid, h.gid);
      fs.fchmodSync(fd, finalMode);
      for (const x of h.xattrs) setXattr(dest, x.name, x.value);
    } else {
      if (fromTmp || (createMode & ~UMASK) !== createMode) fs.fchmodSync(fd, finalMode);
      if (mode === 'bare-user') setXattr(dest, 'user.ostreemeta', serializeBareUserMeta(h));
    }
    fs.futimesSync(fd, 0, 0);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) off += fs.writeSync(fd, data, off, data.length - off);
}

/** Writes a file that must not exist yet (metadata objects, archive .filez). */
export function writeNewFile(dest: string, bytes: Uint8Array): void {
  fs.writeFileSync(dest, bytes, { mode: 0o644, flag: 'wx' });
}

/**
 * zlib options for inflating a raw-deflate body that the object's header says is `size` bytes:
 * capped at that size, and with an output buffer of that size (plus one byte, so that zlib ends
 * with room to spare), so that the content comes out as one buffer. With zlib's default 16 KiB
 * chunks, every larger object was inflated into chunks and then copied into one buffer: ~15 % of
 * a full pull's inflate time. The header is not trusted for the allocation: deflate expands at
 * most 1032:1, which bounds the buffer by the compressed length, and no buffer is made larger
 * than 16 MiB up front (a larger content grows in 16 MiB steps, as its bytes arrive).
 */
export function sizedInflate(compressedLength: number, size: number): zlib.ZlibOptions {
  const chunk = Math.min(size, compressedLength * 1032 + 1024, MAX_INFLATE_CHUNK) + 1;
  return { maxOutputLength: Math.max(size, 1), chunkSize: Math.max(64, chunk) };
}
const MAX_INFLATE_CHUNK = 16 << 20;

/**
 * Checks an archive-mode .filez held in memory against the checksum it is stored under: the
 * header parses, the raw-deflate stream inflates to exactly the declared size with nothing after
 * it, and header + content hash to `csum`. Returns the header and the content; throws
 * ObjectCorruptError saying what is wrong.
 */
export function inspectFilez(csum: Checksum, bytes: Uint8Array): { header: FileHeader; content: Buffer } {
  const { header, size, headerLength } = filezHeader(csum, bytes);
  let content: Buffer;
  if ((header.mode & S_IFMT) === S_IFLNK) {
    if (bytes.length !== headerLength) throw new ObjectCorruptError('symlink object carries a payload', { object: csum });
    if (size !== 0) throw new ObjectCorruptError('symlink object declares a size', { object: csum });
    content = Buffer.alloc(0);
  } else {
    // synchronous on purpose: for small objects zlib's stream machinery costs more than the inflate
    let r: { buffer: Buffer; engine: zlib.InflateRaw };
    try {
      r = zlib.inflateRawSync(bytes.subarray(headerLength), { info: true, ...sizedInflate(bytes.length - headerLength, size) }) as unknown as typeof r;
    } catch (e) {
      throw new ObjectCorruptError(`bad compressed content (${(e as Error).message})`, { object: csum, cause: e });
    }
    content = r.buffer;
    if (content.length !== size) throw new ObjectCorruptError(`content is ${content.length} bytes, header says ${size}`, { object: csum });
    if (r.engine.bytesWritten !== bytes.length - headerLength) throw new ObjectCorruptError('trailing bytes after the compressed content', { object: csum });
  }
  const got = sha256(fileChecksumPrefix(header), content);
  if (got !== csum) throw new ObjectCorruptError(`its content hashes to ${got}`, { object: csum });
  return { header, content };
}

/**
 * inspectFilez for a .filez on disk (a large download), streamed: the same checks, with the
 * content hashed as it inflates and never held whole. Returns the header and where the
 * compressed content starts.
 */
export async function inspectFilezFile(csum: Checksum, file: string): Promise<{ header: FileHeader; headerLength: number; size: number }> {
  const { header, size, headerLength, total } = readFilezHead(csum, file);
  const hash = createHash('sha256').update(fileChecksumPrefix(header));
  if ((header.mode & S_IFMT) === S_IFLNK) {
    if (total !== headerLength || size !== 0) throw new ObjectCorruptError('symlink object carries a payload', { object: csum });
  } else {
    let n = 0;
    const inflate = zlib.createInflateRaw();
    try {
      await pipeline(
        fs.createReadStream(file, { start: headerLength }),
        inflate,
        new Writable({
          write(chunk: Buffer, _e, cb) {
            n += chunk.length;
            if (n > size) cb(new Error(`content is longer than the ${size} bytes its header says`));
            else {
              hash.update(chunk);
              cb();
            }
          },
        }),
      );
    } catch (e) {
      throw new ObjectCorruptError(`bad compressed content (${(e as Error).message})`, { object: csum, cause: e });
    }
    if (n !== size) throw new ObjectCorruptError(`content is ${n} bytes, header says ${size}`, { object: csum });
    if (inflate.bytesWritten !== total - headerLength) throw new ObjectCorruptError('trailing bytes after the compressed content', { object: csum });
  }
  const got = hash.digest('hex');
  if (got !== csum) throw new ObjectCorruptError(`its content hashes to ${got}`, { object: csum });
  return { header, headerLength, size };
}

/** The header of a .filez on disk, and the file's size; ObjectCorruptError when it does not parse. */
export function readFilezHead(csum: Checksum, file: string): ReturnType<typeof parseArchiveHeader> & { total: number } {
  const fd = fs.openSync(file, 'r');
  let head: Buffer;
  let total: number;
  try {
    total = fs.fstatSync(fd).size;
    head = readAt(fd, 0, Math.min(total, 8 + MAX_FILE_HEADER));
  } finally {
    fs.closeSync(fd);
  }
  return { ...filezHeader(csum, head), total };
}

function filezHeader(csum: Checksum, bytes: Uint8Array): ReturnType<typeof parseArchiveHeader> {
  try {
    return parseArchiveHeader(bytes);
  } catch (e) {
    if (e instanceof FormatError) throw new ObjectCorruptError(e.message, { object: csum, cause: e });
    throw e;
  }
}

/** Header of a bare / bare-user / bare-user-only content object, read from the object file. */
export function readBareHeader(p: string, csum: Checksum, mode: RepoMode): { header: FileHeader; st: fs.Stats; symlinkFromFile: boolean } {
  const st = fs.lstatSync(p);
  let header: FileHeader;
  let symlinkFromFile = false;
  if (mode === 'bare') {
    const xattrs = canonicalXattrs(readXattrs(p));
    if (st.isSymbolicLink()) header = { uid: st.uid, gid: st.gid, mode: st.mode, symlinkTarget: fs.readlinkSync(p), xattrs };
    else header = { uid: st.uid, gid: st.gid, mode: st.mode, symlinkTarget: '', xattrs };
  } else if (mode === 'bare-user') {
    const raw = getXattr(p, 'user.ostreemeta');
    if (!raw) throw new ObjectCorruptError(`file object ${csum} has no user.ostreemeta attribute`, { object: csum, path: p });
    const meta = parseBareUserMeta(raw);
    if ((meta.mode & S_IFMT) === S_IFLNK) {
      const b = fs.readFileSync(p);
      if (b.length === 0 || b[b.length - 1] !== 0) throw new ObjectCorruptError(`file object ${csum}: symlink target is not NUL-terminated`, { object: csum });
      header = { ...meta, symlinkTarget: b.subarray(0, b.length - 1).toString('utf8') };
      symlinkFromFile = true;
    } else header = { ...meta, symlinkTarget: '' };
  } else {
    // bare-user-only: the file is the object, metadata canonical
    if (st.isSymbolicLink()) header = { uid: 0, gid: 0, mode: st.mode, symlinkTarget: fs.readlinkSync(p), xattrs: [] };
    else header = { uid: 0, gid: 0, mode: st.mode, symlinkTarget: '', xattrs: [] };
  }
  return { header, st, symlinkFromFile };
}

/** fsck of a small content object (read whole): null when it is intact, else why not. */
export function verifyContentFile(job: { path: string; csum: Checksum; mode: RepoMode }): string | null {
  try {
    if (job.mode !== 'archive') {
      const { header } = readBareHeader(job.path, job.csum, job.mode);
      const content = (header.mode & S_IFMT) === S_IFLNK ? Buffer.alloc(0) : fs.readFileSync(job.path);
      const got = sha256(fileChecksumPrefix(header), content);
      return got === job.csum ? null : `checksum mismatch, content hashes to ${got}`;
    }
    // the rules a pulled .filez must pass (inspectFilez), trailing bytes included
    inspectFilez(job.csum, fs.readFileSync(job.path));
    return null;
  } catch (e) {
    return problemMessage(e);
  }
}

/**
 * How fsck words what is wrong with an object, from the error that checking it threw: an
 * ObjectCorruptError says it best itself, unless it only wraps a format error (then that one is
 * the detail); a cairn error with a cause gives the cause; anything else its own message.
 */
export function problemMessage(e: unknown): string {
  if (e instanceof ObjectCorruptError && !(e.cause instanceof FormatError)) return e.message;
  return e instanceof CairnError && e.cause instanceof Error ? e.cause.message : (e as Error).message;
}

/** One unit of work for writeObjectJob (and so for a writer-pool worker). */
export type ObjectJob =
  /** A file with these exact bytes (metadata objects). */
  | { op: 'raw'; dest: string; bytes: Uint8Array }
  /** A content object from its header and content, already verified by the caller. */
  | { op: 'content'; dest: string; mode: RepoMode; header: FileHeader; content: Uint8Array; zlibLevel: number }
  /** An archive .filez from a remote: verified against `csum`, then stored in the repo's mode. */
  | { op: 'filez'; dest: string; mode: RepoMode; csum: Checksum; bytes: Uint8Array }
  /** Checkout of a small object of an archive repo: `src` (.filez) inflated to a new file `dest`. */
  | { op: 'checkout-filez'; src: string; dest: string; csum: Checksum; userMode: boolean }
  /**
   * Commit of a regular file into a bare-family repository: `src` read whole (it must still be
   * `size` bytes), hashed with `header`; unless objects/ already has it, written as a bare object
   * into `stageDir` under its staging name. Result: the checksum and where it was staged (null
   * when objects/ has it), or `changed` when the file no longer has `size` bytes.
   */
  | { op: 'commit-file'; src: string; size: number; header: FileHeader; mode: RepoMode; repoPath: string; stageDir: string }
  /** fsck of small content objects (verifyContentFile), in batches: result, the broken ones and why. */
  | { op: 'verify'; objects: { path: string; csum: Checksum }[]; mode: RepoMode };

/**
 * Runs one job. Throws ObjectCorruptError for a .filez that fails verification (nothing is
 * written then). commit-file returns what it found (see ObjectJob).
 */
export function writeObjectJob(job: ObjectJob): JobResult | void {
  switch (job.op) {
    case 'raw':
      writeNewFile(job.dest, job.bytes);
      return;
    case 'content':
      if (job.mode === 'archive') writeNewFile(job.dest, archiveObjectBytes(job.header, job.content, job.zlibLevel));
      else writeBareObject(job.dest, job.mode, job.header, job.content);
      return;
    case 'filez': {
      const { header, content } = inspectFilez(job.csum, job.bytes);
      if (job.mode === 'archive') writeNewFile(job.dest, job.bytes);
      else writeBareObject(job.dest, job.mode, header, content);
      return;
    }
    case 'checkout-filez':
      checkoutFilez(job.src, job.dest, job.csum, job.userMode);
      return;
    case 'commit-file':
      return commitFile(job);
    case 'verify': {
      const problems: [Checksum, string][] = [];
      for (const { path, csum } of job.objects) {
        const why = verifyContentFile({ path, csum, mode: job.mode });
        if (why) problems.push([csum, why]);
      }
      return { problems };
    }
  }
}

export type CommitFileResult = { checksum: Checksum; staged: string | null } | { changed: true };
/** What a job returns: commit-file its CommitFileResult, verify the objects that failed. */
export type JobResult = CommitFileResult | { problems: [Checksum, string][] };

/** Staging name of an object: objects/ab/cdef.file -> ab_cdef.file (flat, per lane). */
export function stagingName(rel: string): string {
  return rel.slice('objects/'.length).replace('/', '_');
}

function commitFile(job: Extract<ObjectJob, { op: 'commit-file' }>): CommitFileResult {
  const content = fs.readFileSync(job.src);
  if (content.length !== job.size) return { changed: true };
  const checksum = sha256(fileChecksumPrefix(job.header), content);
  const rel = objectRelPath(checksum, 'file', false);
  if (fs.lstatSync(`${job.repoPath}/${rel}`, { throwIfNoEntry: false })) return { checksum, staged: null };
  const staged = `${job.stageDir}/${stagingName(rel)}`;
  try {
    writeBareObject(staged, job.mode, job.header, content);
  } catch (e) {
    // the same content, staged by an earlier file of this lane
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return { checksum, staged };
}

/**
 * Writes the file (or symlink) an archive-mode .filez holds at `dest`, with its mode and, unless
 * `userMode` (checkout -U: no owners or xattrs, no setuid/setgid), its owner and xattrs.
 */
export function checkoutFilez(src: string, dest: string, csum: Checksum, userMode: boolean): void {
  const raw = fs.readFileSync(src);
  const corrupt = (why: string, cause?: unknown): ObjectCorruptError =>
    new ObjectCorruptError(`file object ${csum} is corrupt: ${why}`, { object: csum, path: src, cause });
  let parsed: ReturnType<typeof parseArchiveHeader>;
  try {
    parsed = parseArchiveHeader(raw);
  } catch (e) {
    throw corrupt((e as Error).message, e);
  }
  const { header: h, size, headerLength } = parsed;
  if ((h.mode & S_IFMT) === S_IFLNK) {
    fs.symlinkSync(h.symlinkTarget, dest);
    if (!userMode) applyOwnerAndXattrs(dest, h);
    return;
  }
  let content: Buffer;
  try {
    content = zlib.inflateRawSync(raw.subarray(headerLength), sizedInflate(raw.length - headerLength, size));
  } catch (e) {
    throw corrupt((e as Error).message, e);
  }
  if (content.length !== size) throw corrupt(`content is ${content.length} bytes, header says ${size}`);
  const fd = fs.openSync(dest, 'wx', 0o600);
  try {
    if (content.length > 0) writeAll(fd, content);
    if (!userMode) {
      fs.fchownSync(fd, h.uid, h.gid);
      for (const x of h.xattrs) setXattr(dest, x.name, x.value);
    }
    fs.fchmodSync(fd, userMode ? h.mode & 0o1777 : h.mode & 0o7777);
  } finally {
    fs.closeSync(fd);
  }
}

/** lchown + xattrs of a checked-out path (files, symlinks and directories alike). */
export function applyOwnerAndXattrs(p: string, m: FileMeta): void {
  fs.lchownSync(p, m.uid, m.gid);
  for (const x of m.xattrs) setXattr(p, x.name, x.value);
}

/** An archive-mode .filez: header, then the raw-deflated content (nothing for a symlink). */
function archiveObjectBytes(h: FileHeader, content: Uint8Array, zlibLevel: number): Buffer {
  const isLink = (h.mode & S_IFMT) === S_IFLNK;
  const z = isLink ? Buffer.alloc(0) : zlib.deflateRawSync(content, { level: zlibLevel });
  return Buffer.concat([serializeArchiveHeader(h, content.length), z]);
}
