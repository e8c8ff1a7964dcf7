/**
 * Applying static deltas (spec §5.3–5.5): verify each part's size and checksum, decompress,
 * run its ops, verify every object it creates, and stage it through the repo's Transaction.
 * Nothing becomes visible in objects/ before the transaction commits, and nothing is staged
 * before its checksum is verified.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  type Checksum, type FileHeader, type ObjectType, S_IFLNK, S_IFMT, checkDirtree, checksumFromBytes, fileChecksumPrefix, parseArchiveHeader,
  parseCommit, parseDirmeta, parseDirtree, serializeMetadata, sha256, validateFileMode,
} from '../format/index.js';
import {
  type DeltaPartHeader, type Superblock, COMPRESSION_NONE, COMPRESSION_XZ, decodeOps, isSignedSuperblock,
  parseBundleHeader, parseBundlePrefix, parsePartPayload, type PartPayload, parseSuperblock as parseSuperblockFormat, superblockCommitmeta,
  superblockInlinePart, type BundleEntry,
} from '../format/index.js';
import {
  CairnError, DeltaCorruptError, DeltaFromMissingError, DeltaIncompleteError, DeltaInvalidError, DeltaNotFoundError, FormatError,
  ObjectNotFoundError, SignMissingError, SignVerifyError,
} from '../errors.js';
import { type Repo, Transaction, setRef, parseRefspec } from '../repo/index.js';
import { readAt, sizedInflate, verifyCommitSignature, verifySuperblockSignature } from '../repo/index.js';
import { bspatch } from './bsdiff.js';
import { unxzStream, xzDecompress } from './xz.js';

/** Refuses decompressed part payloads larger than this (a decompression bomb, not a delta). */
export const MAX_PART_PAYLOAD = 2 * 1024 * 1024 * 1024 - 1;
/** How long a part's execution runs before it lets the event loop turn. */
const YIELD_EVERY_MS = 4;
/** Refuses superblocks larger than this (ostree's own are a few kB to a few MB). */
export const MAX_SUPERBLOCK = 256 * 1024 * 1024;

/** Parses superblock bytes, mapping format problems to one clear typed error. */
export function parseSuperblock(bytes: Buffer): Superblock {
  try {
    const sb = parseSuperblockFormat(bytes);
    if (sha256(sb.commitBytes) !== sb.to) throw new FormatError('embedded commit does not match the to-checksum');
    parseCommit(sb.commitBytes);
    return sb;
  } catch (e) {
    if (e instanceof FormatError) throw new DeltaInvalidError(`invalid delta superblock: ${e.message}`, { cause: e });
    throw e;
  }
}

/**
 * What delta parts staged, for the completeness check at the end: metadata bytes by
 * "checksum.type", content checksums. A pull passes its own (its parts go into several
 * transactions); otherwise it is kept per transaction.
 */
export interface StagedObjects {
  readonly metadata: Map<string, Buffer>;
  readonly content: Set<string>;
}
const stagedByTxn = new WeakMap<Transaction, StagedObjects>();

function staged(txn: Transaction): StagedObjects {
  let s = stagedByTxn.get(txn);
  if (!s) {
    s = { metadata: new Map(), content: new Set() };
    stagedByTxn.set(txn, s);
  }
  return s;
}

function corrupt(msg: string, part: number): DeltaCorruptError {
  return new DeltaCorruptError(`delta part ${part}: ${msg}`);
}

/** A delta's metadata is checked to be in normal form, as a pull checks what it fetches, and then only stored. */
const META_PARSERS: Partial<Record<ObjectType, (b: Uint8Array) => unknown>> = {
  dirtree: checkDirtree, dirmeta: parseDirmeta, commit: parseCommit,
};

/** Verifies and stages a metadata object. */
function stageMetadata(txn: Transaction, to: StageTo, type: ObjectType, expected: Checksum, bytes: Buffer, part: number): void {
  const got = sha256(bytes);
  if (got !== expected) throw corrupt(`${type} object ${expected} has checksum ${got}`, part);
  const parser = META_PARSERS[type];
  try {
    parser?.(bytes);
  } catch (e) {
    throw corrupt(`${type} object ${expected} is malformed: ${(e as Error).message}`, part);
  }
  const copy = Buffer.from(bytes);
  txn.writeMetadataSync(type, copy, expected, { unchecked: to.unchecked });
  to.into.metadata.set(`${expected}.${type}`, copy);
}

/**
 * Verifies and stages a content object: synchronously into a bare-family repository (no promise
 * per object), through a promise into an archive one (compressed off this thread).
 */
function stageContent(txn: Transaction, to: StageTo, header: FileHeader, content: Buffer, expected: Checksum, part: number): Promise<void> | undefined {
  const got = sha256(fileChecksumPrefix(header), content);
  if (got !== expected) throw corrupt(`file object ${expected} has checksum ${got}`, part);
  if (txn.repo.archive) {
    return txn.writeContentBuffer(header, content, expected, { unchecked: to.unchecked }).then(() => void to.into.content.add(expected));
  }
  txn.writeContentSync(header, content, expected, { unchecked: to.unchecked });
  to.into.content.add(expected);
  return undefined;
}

/**
 * A part's decode started while the part still downloads: `onChunk` takes the part file's
 * bytes as they arrive (FetchRequest.onChunk), and decodeDeltaPart, given the whole part, uses
 * what came out only once the part's size and checksum are verified. The decode starts with
 * the first byte instead of the last: on a slow link most of it is done by the time the part
 * is in.
 */
export interface EarlyPartDecode {
  onChunk(chunk: Buffer, at: number): void;
  /** Gives up (the download failed): nothing is left running. */
  abort(): void;
  /** The decoded payload bytes: unverified, for decodeDeltaPart only. */
  readonly result: Promise<Buffer>;
}

/** Starts an early decode of part `index` (see EarlyPartDecode); null when none can run here. */
export function startPartDecode(sb: Superblock, index: number): EarlyPartDecode | null {
  const hdr = sb.parts[index];
  if (!hdr || hdr.size < 2) return null;
  const stream = unxzStream(MAX_PART_PAYLOAD, hdr.usize, hdr.size - 1);
  if (!stream) return null;
  let next = 0;
  return {
    onChunk(chunk: Buffer, at: number): void {
      // a retried request starts over: the decode is given up, the part decoded once it is in
      if (at !== next) return stream.abort();
      next += chunk.length;
      if (at === 0) {
        if (chunk[0] !== COMPRESSION_XZ) return stream.abort(); // not xz: decodeDeltaPart says what it is
        stream.write(chunk.subarray(1));
      } else stream.write(chunk);
    },
    abort: () => stream.abort(),
    result: stream.result,
  };
}

/**
 * Verifies a part file's size and checksum and decompresses its payload. With `early` (started
 * for this part by startPartDecode), its output is taken once the part checks out; if it did
 * not work out (an aborted or failed decode), the verified bytes are decoded again here.
 */
export async function decodeDeltaPart(sb: Superblock, index: number, partBytes: Buffer, early?: EarlyPartDecode | null): Promise<PartPayload> {
  try {
    const hdr: DeltaPartHeader | undefined = sb.parts[index];
    if (!hdr) throw new DeltaInvalidError(`delta has no part ${index}`);
    if (partBytes.length !== hdr.size) throw corrupt(`size is ${partBytes.length} bytes, expected ${hdr.size}`, index);
    const got = sha256(partBytes);
    if (got !== hdr.checksum) throw corrupt(`checksum is ${got}, expected ${hdr.checksum}`, index);
    if (partBytes.length === 0) throw corrupt('empty part file', index);
    let payloadBytes: Buffer;
    if (partBytes[0] === COMPRESSION_NONE) payloadBytes = partBytes.subarray(1);
    else if (partBytes[0] === COMPRESSION_XZ) {
      payloadBytes = (early && (await early.result.catch(() => null))) || (await xzDecompress(partBytes.subarray(1), MAX_PART_PAYLOAD, hdr.usize));
    } else throw corrupt(`unknown compression type 0x${partBytes[0]!.toString(16)}`, index);
    try {
      return parsePartPayload(payloadBytes);
    } catch (e) {
      throw corrupt(`payload is malformed: ${(e as Error).message}`, index);
    }
  } finally {
    early?.abort();
  }
}

export interface ExecuteOptions {
  /** Where to record what the part staged (default: the transaction's own record). */
  into?: StagedObjects;
  /**
   * Write each object without looking it up in the repository first (see Transaction's
   * WriteOptions): for a part the caller has just found not to be all there.
   */
  unchecked?: boolean;
}

interface StageTo {
  into: StagedObjects;
  unchecked: boolean;
}

/** Runs a decoded part's ops, verifying and staging every object it creates. */
export async function executeDeltaPart(
  repo: Repo, txn: Transaction, sb: Superblock, index: number, payload: PartPayload, opts: ExecuteOptions = {},
): Promise<void> {
  const to: StageTo = { into: opts.into ?? staged(txn), unchecked: opts.unchecked ?? false };
  const hdr = sb.parts[index];
  if (!hdr) throw new DeltaInvalidError(`delta has no part ${index}`);
  const { modes, xattrs, blob, ops } = payload;
  const objects = hdr.objects;
  let objIdx = 0;
  let readSource: Buffer | null = null;
  let open: { header: FileHeader; out: Buffer; pos: number; expected: Checksum } | null = null;
  const sourceCache = new Map<string, Buffer>();

  const slice = (src: Buffer, offset: number, length: number, what: string): Buffer => {
    if (offset + length > src.length) throw corrupt(`${what} [${offset}, +${length}) is out of range`, index);
    return src.subarray(offset, offset + length);
  };
  const headerFor = (modeIdx: number, xattrIdx: number, target: string): FileHeader => {
    const m = modes[modeIdx];
    const x = xattrs[xattrIdx];
    if (!m || !x) throw corrupt(`mode or xattr index out of range (${modeIdx}, ${xattrIdx})`, index);
    try {
      validateFileMode(m.mode);
    } catch (e) {
      throw corrupt((e as Error).message, index);
    }
    const isLink = (m.mode & S_IFMT) === S_IFLNK;
    return { uid: m.uid, gid: m.gid, mode: m.mode, symlinkTarget: isLink ? target : '', xattrs: x };
  };
  const current = (): { type: ObjectType; checksum: Checksum } => {
    const o = objects[objIdx];
    if (!o) throw corrupt('ops create more objects than the part lists', index);
    return o;
  };
  const loadSource = async (csum: Checksum): Promise<Buffer> => {
    const hit = sourceCache.get(csum);
    if (hit) return hit;
    let data: Buffer;
    try {
      data = await repo.openContent(csum).read();
    } catch (e) {
      if (e instanceof ObjectNotFoundError) {
        throw new DeltaFromMissingError(`delta part ${index} reads object ${csum}, which is not in the repository`, { object: csum });
      }
      throw e;
    }
    if (sourceCache.size >= 4) sourceCache.delete(sourceCache.keys().next().value!);
    sourceCache.set(csum, data);
    return data;
  };
  const needOpen = (op: string): NonNullable<typeof open> => {
    if (!open) throw corrupt(`'${op}' without an open object`, index);
    return open;
  };

  // a part takes this thread for 100+ ms: let the event loop run every few ms meanwhile, so
  // that downloads and the xz processes decoding the next parts are serviced, and let what the
  // part wrote so far be flushed to disk beside it
  let ranSince = Date.now();
  try {
    for (const op of decodeOps(ops, () => current().type !== 'file')) {
      if (Date.now() - ranSince > YIELD_EVERY_MS) {
        txn.hintWriteback();
        await new Promise<void>((resolve) => setImmediate(resolve));
        ranSince = Date.now();
      }
      switch (op.op) {
        case 'S': {
          if (open) throw corrupt("'S' while an object is open", index);
          const o = current();
          if (o.type !== 'file') {
            const [length, offset] = op.args as [number, number];
            stageMetadata(txn, to, o.type, o.checksum, slice(blob, offset, length, 'metadata'), index);
          } else {
            const [modeIdx, xattrIdx, size, offset] = op.args as [number, number, number, number];
            const data = slice(blob, offset, size, 'content');
            const isLink = (modes[modeIdx]?.mode ?? 0) & S_IFMT;
            const header = headerFor(modeIdx, xattrIdx, isLink === S_IFLNK ? data.toString('utf8') : '');
            const staging = stageContent(txn, to, header, isLink === S_IFLNK ? Buffer.alloc(0) : data, o.checksum, index);
            if (staging) await staging;
          }
          objIdx++;
          break;
        }
        case 'o': {
          if (open) throw corrupt("'o' while an object is open", index);
          const o = current();
          if (o.type !== 'file') throw corrupt("'o' for a metadata object", index);
          // an object cannot be larger than the part's declared total (bounds hostile allocations)
          if (op.size > Math.max(hdr.usize, 64 * 1024 * 1024)) throw corrupt(`object size ${op.size} exceeds the part's ${hdr.usize} bytes`, index);
          open = { header: headerFor(op.modeIdx, op.xattrIdx, ''), out: Buffer.alloc(op.size), pos: 0, expected: o.checksum };
          break;
        }
        case 'w': {
          const ob = needOpen('w');
          const src = slice(readSource ?? blob, op.offset, op.length, readSource ? 'read source' : 'write');
          if (ob.pos + op.length > ob.out.length) throw corrupt('write past the end of the object', index);
          src.copy(ob.out, ob.pos);
          ob.pos += op.length;
          break;
        }
        case 'r': {
          const c = checksumFromBytes(slice(blob, op.offset, 32, 'read source checksum'));
          readSource = await loadSource(c);
          break;
        }
        case 'R':
          readSource = null;
          break;
        case 'B': {
          const ob = needOpen('B');
          if (!readSource) throw corrupt("'B' without a read source", index);
          try {
            bspatch(readSource, slice(blob, op.offset, op.length, 'bsdiff patch'), ob.out.length).copy(ob.out);
          } catch (e) {
            if (e instanceof CairnError && !(e instanceof FormatError)) throw e;
            throw corrupt((e as Error).message, index);
          }
          ob.pos = ob.out.length;
          break;
        }
        case 'c': {
          const ob = needOpen('c');
          if (ob.pos !== ob.out.length) throw corrupt(`object ${ob.expected} closed after ${ob.pos} of ${ob.out.length} bytes`, index);
          const isLink = (ob.header.mode & S_IFMT) === S_IFLNK;
          const header = isLink ? { ...ob.header, symlinkTarget: ob.out.toString('utf8') } : ob.header;
          const staging = stageContent(txn, to, header, isLink ? Buffer.alloc(0) : ob.out, ob.expected, index);
          if (staging) await staging;
          open = null;
          readSource = null;
          objIdx++;
          break;
        }
      }
    }
  } catch (e) {
    if (e instanceof FormatError) throw corrupt(e.message, index);
    throw e;
  }
  if (open) throw corrupt('op stream ends with an open object', index);
  if (objIdx !== objects.length) throw corrupt(`ops created ${objIdx} of ${objects.length} listed objects`, index);
}

/** True when the repository already has every object a part creates (the part can be skipped). */
export function partSatisfied(repo: Repo, hdr: DeltaPartHeader): boolean {
  return hdr.objects.every((o) => repo.hasObject(o.checksum, o.type));
}

/** Stages a fallback object from its archived (.filez) bytes, verifying it. */
export async function applyFallbackObject(txn: Transaction, expected: Checksum, filez: Buffer): Promise<void> {
  let header: FileHeader;
  let content: Buffer;
  try {
    const h = parseArchiveHeader(filez);
    header = h.header;
    content = (header.mode & S_IFMT) === S_IFLNK
      ? Buffer.alloc(0)
      : zlib.inflateRawSync(filez.subarray(h.headerLength), sizedInflate(filez.length - h.headerLength, h.size));
    if (content.length !== h.size) throw new FormatError(`content is ${content.length} bytes, header says ${h.size}`);
  } catch (e) {
    throw new DeltaCorruptError(`fallback object ${expected} is malformed: ${(e as Error).message}`, { object: expected, cause: e });
  }
  const got = sha256(fileChecksumPrefix(header), content);
  if (got !== expected) throw new DeltaCorruptError(`fallback object ${expected} has checksum ${got}`, { object: expected });
  await txn.writeContentBuffer(header, content, expected);
  staged(txn).content.add(expected);
}

/** Checks that every object of the commit's tree is in the repo or staged in `txn`. */
export function verifyComplete(repo: Repo, txn: Transaction, commit: Checksum, commitBytes: Buffer): void {
  const s = staged(txn);
  const meta = (c: Checksum, type: 'dirtree' | 'dirmeta'): Buffer | null => {
    const b = s.metadata.get(`${c}.${type}`);
    if (b) return b;
    return repo.hasObject(c, type) ? repo.readMetadataBytes(c, type) : null;
  };
  const seen = new Set<string>();
  const missing: string[] = [];
  const walk = (tree: Checksum, dirmeta: Checksum): void => {
    if (!meta(dirmeta, 'dirmeta')) missing.push(`${dirmeta}.dirmeta`);
    if (seen.has(tree)) return;
    seen.add(tree);
    const b = meta(tree, 'dirtree');
    if (!b) {
      missing.push(`${tree}.dirtree`);
      return;
    }
    const t = parseDirtree(b);
    for (const f of t.files) if (!s.content.has(f.checksum) && !repo.hasObject(f.checksum, 'file')) missing.push(`${f.checksum}.file`);
    for (const d of t.dirs) walk(d.tree, d.meta);
  };
  const c = parseCommit(commitBytes, true); // checked with the superblock
  walk(c.rootTree, c.rootMeta);
  if (missing.length > 0) {
    throw new DeltaIncompleteError(
      `delta to ${commit} leaves ${missing.length} object(s) missing, e.g. ${missing[0]}${missing.length > 1 ? ', …' : ''}`,
      { object: commit },
    );
  }
}

export interface ApplyOfflineOptions {
  /** Set this ref (local "ref" or "remote:ref") to the delta's to-commit afterwards. */
  ref?: string;
  /** Trusted ed25519 public keys (base64): a signed superblock or commit signature must verify. */
  verifyKeys?: string[];
  /** Keys that are revoked (base64) and never trusted. */
  revokedKeys?: string[];
  onProgress?: (e: { phase: 'part' | 'fallback' | 'commit'; index: number; total: number }) => void;
}

export interface ApplyResult {
  readonly from: Checksum | null;
  readonly to: Checksum;
  readonly partsApplied: number;
  readonly partsSkipped: number;
  readonly fallbacks: number;
  readonly objectsWritten: number;
}

/** Where a delta's files come from: a delta directory, or a cairn update bundle. */
interface DeltaSource {
  superblock: Buffer;
  part(i: number): Promise<Buffer>;
  fallback(c: Checksum): Promise<Buffer | null>;
  close(): void;
}

function dirSource(dir: string, sbPath = path.join(dir, 'superblock')): DeltaSource {
  let superblock: Buffer;
  try {
    const st = fs.statSync(sbPath);
    if (st.size > MAX_SUPERBLOCK) throw new DeltaInvalidError(`${sbPath}: superblock is too large`);
    superblock = fs.readFileSync(sbPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new DeltaNotFoundError(`${dir}: no superblock found`, { path: dir });
    }
    throw e;
  }
  return {
    superblock,
    async part(i) {
      const p = path.join(dir, String(i));
      try {
        return await fs.promises.readFile(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DeltaCorruptError(`delta part ${i} is missing (${p})`, { path: p });
        throw e;
      }
    },
    async fallback() {
      return null;
    },
    close() {},
  };
}

function readExact(fd: number, pos: number, len: number, file: string): Buffer {
  const b = readAt(fd, pos, len);
  if (b.length < len) throw new DeltaCorruptError(`${file}: update bundle is truncated`, { path: file });
  return b;
}

function bundleSource(file: string): DeltaSource {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let headerLen: number;
    let entries: readonly BundleEntry[];
    try {
      headerLen = parseBundlePrefix(readExact(fd, 0, Math.min(16, size), file));
      entries = parseBundleHeader(readExact(fd, 16, headerLen, file)).entries;
    } catch (e) {
      if (e instanceof FormatError) throw new DeltaInvalidError(`${file}: ${e.message}`, { path: file, cause: e });
      throw e;
    }
    const base = 16 + headerLen;
    const byName = new Map(entries.map((e) => [e.name, e]));
    const get = (name: string): Buffer | null => {
      const e = byName.get(name);
      if (!e) return null;
      if (base + e.offset + e.size > size) throw new DeltaCorruptError(`${file}: update bundle is truncated (${name})`, { path: file });
      const b = readExact(fd, base + e.offset, e.size, file);
      if (sha256(b) !== e.sha256) throw new DeltaCorruptError(`${file}: entry ${name} does not match its checksum`, { path: file });
      return b;
    };
    const superblock = get('superblock');
    if (!superblock) throw new DeltaInvalidError(`${file}: update bundle has no superblock`, { path: file });
    return {
      superblock,
      async part(i) {
        const b = get(`part/${i}`);
        if (!b) throw new DeltaCorruptError(`${file}: update bundle lacks part ${i}`, { path: file });
        return b;
      },
      async fallback(c) {
        return get(`fallback/${c}.filez`);
      },
      close() {
        fs.closeSync(fd);
      },
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Opens a delta given as a directory, a superblock file, or a cairn update bundle. */
function openSource(p: string): DeltaSource {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new DeltaNotFoundError(`${p}: no such file or directory`, { path: p, cause: e });
  }
  if (st.isDirectory()) return dirSource(p);
  const fd = fs.openSync(p, 'r');
  const magic = Buffer.alloc(8);
  fs.readSync(fd, magic, 0, 8, 0);
  fs.closeSync(fd);
  if (magic.toString('latin1') === 'CAIRNUPD') return bundleSource(p);
  // like ostree: a file is a superblock, its parts beside it
  return dirSource(path.dirname(p), p);
}

/** Applies a delta with no network: every part verified, everything staged, then committed. */
export async function applyDeltaOffline(repo: Repo, deltaPath: string, opts: ApplyOfflineOptions = {}): Promise<ApplyResult> {
  if (opts.ref) parseRefspec(opts.ref);
  const src = openSource(deltaPath);
  try {
    const sb = parseSuperblock(src.superblock);
    const commitmeta = superblockCommitmeta(sb);
    if (opts.verifyKeys && opts.verifyKeys.length > 0) {
      checkSignatures(src.superblock, sb, commitmeta, opts.verifyKeys, opts.revokedKeys ?? []);
    }
    if (sb.from && !repo.hasObject(sb.from, 'commit')) {
      throw new DeltaFromMissingError(`delta starts at commit ${sb.from}, which is not in ${repo.path}`, { object: sb.from });
    }
    const txn = new Transaction(repo);
    let applied = 0;
    let skipped = 0;
    let fallbacks = 0;
    try {
      // decode (read, verify, decompress) the next part while the current one is applied
      const todo = sb.parts.map((_, i) => i).filter((i) => !partSatisfied(repo, sb.parts[i]!));
      skipped = sb.parts.length - todo.length;
      const decode = async (i: number): Promise<PartPayload> => decodeDeltaPart(sb, i, superblockInlinePart(sb, i) ?? (await src.part(i)));
      let next: Promise<PartPayload> | null = todo.length > 0 ? decode(todo[0]!) : null;
      next?.catch(() => {});
      for (const [k, i] of todo.entries()) {
        opts.onProgress?.({ phase: 'part', index: k, total: todo.length });
        const payload = await next!;
        next = k + 1 < todo.length ? decode(todo[k + 1]!) : null;
        next?.catch(() => {});
        await executeDeltaPart(repo, txn, sb, i, payload);
        applied++;
      }
      for (const [i, f] of sb.fallbacks.entries()) {
        opts.onProgress?.({ phase: 'fallback', index: i, total: sb.fallbacks.length });
        if (repo.hasObject(f.checksum, f.type)) continue;
        const filez = await src.fallback(f.checksum);
        if (!filez) {
          throw new DeltaIncompleteError(
            `fallback object ${f.checksum} is neither in the repository nor carried by the delta (use an update bundle made by 'static-delta export')`,
            { object: f.checksum },
          );
        }
        if (filez.length !== f.size) throw new DeltaCorruptError(`fallback object ${f.checksum} is ${filez.length} bytes, expected ${f.size}`, { object: f.checksum });
        await applyFallbackObject(txn, f.checksum, filez);
        fallbacks++;
      }
      opts.onProgress?.({ phase: 'commit', index: 0, total: 1 });
      verifyComplete(repo, txn, sb.to, sb.commitBytes);
      if (commitmeta && !repo.hasObject(sb.to, 'commitmeta')) await txn.writeMetadata('commitmeta', serializeMetadata(commitmeta), sb.to);
      await txn.writeMetadata('commit', sb.commitBytes, sb.to);
      const written = await txn.commit();
      if (opts.ref) {
        const { remote, ref } = parseRefspec(opts.ref);
        setRef(repo, remote, ref, sb.to);
      }
      return { from: sb.from, to: sb.to, partsApplied: applied, partsSkipped: skipped, fallbacks, objectsWritten: written };
    } catch (e) {
      await txn.abort();
      throw e;
    }
  } finally {
    src.close();
  }
}

/** A signed superblock, or else the carried commit signature, must verify with a trusted key. */
function checkSignatures(raw: Buffer, sb: Superblock, commitmeta: ReturnType<typeof superblockCommitmeta>, keys: string[], revoked: string[]): void {
  const trusted = keys.filter((k) => !revoked.includes(k));
  if (isSignedSuperblock(raw)) {
    if (verifySuperblockSignature(raw, trusted)) return;
    throw new SignVerifyError(`delta superblock signature does not verify with any trusted key`);
  }
  if (commitmeta && verifyCommitSignature(sb.commitBytes, commitmeta, trusted)) return;
  if (!commitmeta) throw new SignMissingError(`delta to ${sb.to} carries no signature (neither a signed superblock nor a signed commit)`);
  throw new SignVerifyError(`commit ${sb.to} carried by the delta has no signature from a trusted key`);
}

