/**
 * Where pull gets objects from: a remote archive repository over HTTP (through a Fetcher), or
 * another repository on disk (pull-local). Sources hand back raw bytes; pull.ts verifies every
 * object before anything is stored.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type Checksum, type ObjectType, MAX_FILE_HEADER, objectRelPath,
} from '../format/index.js';
import { PullObjectCorruptError, PullTooLargeError, noSpace } from '../errors.js';
import { isErrno } from '../repo/index.js';
import { type ContentObject, Repo } from '../repo/index.js';
import type { Fetcher, FetchResult } from './fetcher.js';

/**
 * Caps (each names the attack it bounds). A hostile or broken server can send anything; these
 * keep memory and disk use bounded before the checksum can be checked.
 */
/** summary / summary.sig: a lying server streaming an endless summary to exhaust memory. */
export const MAX_SUMMARY_SIZE = 64 * 1024 * 1024;
/** commit / dirtree / dirmeta / commitmeta: an endless or giant "metadata object" held in memory for hashing. */
export const MAX_METADATA_FETCH = 32 * 1024 * 1024;
/** refs/heads/<ref> and config files: a few dozen bytes in practice. */
export const MAX_SMALL_FILE = 64 * 1024;
/** .filez: disk filling; tightened per object to deflateBound(declared size) once the header is read. */
export const MAX_CONTENT_OBJECT = 64 * 1024 * 1024 * 1024;
/** Delta superblock: memory, like metadata (it embeds the commit and the part list). */
export const MAX_SUPERBLOCK_SIZE = 64 * 1024 * 1024;
/** Bodies above this are streamed to a partial-download file instead of memory. */
export const SPILL_TO_DISK = 1024 * 1024;

/** Content payloads: archive .filez bytes (in memory or a file) or an object of a local repo. */
export type ContentPayload =
  | { kind: 'filez'; result: FetchResult }
  | { kind: 'object'; object: ContentObject };

export interface ObjectSource {
  readonly description: string;
  /**
   * Raw summary bytes (null if the remote has none) and, with `withSig` (the remote's summary
   * signatures are checked), summary.sig (null if none, or not asked for).
   */
  summary(withSig: boolean): Promise<{ bytes: Buffer | null; sig: Buffer | null }>;
  /** refs/heads/<ref> on the remote, for remotes without a summary. */
  readRef(ref: string): Promise<string | null>;
  metadata(csum: Checksum, type: ObjectType, optional: boolean): Promise<Buffer | null>;
  content(csum: Checksum, partFile: string): Promise<ContentPayload>;
  /**
   * Any file relative to the remote root (deltas, indexes), in memory, capped. `onChunk` sees
   * the bytes as they arrive, unchecked (see FetchRequest), where the source downloads them.
   */
  file(rel: string, maxBytes: number, optional: boolean, onChunk?: (chunk: Buffer, at: number) => void): Promise<Buffer | null>;
  close(): Promise<void>;
}

/** Upper bound of a raw-deflate stream of n bytes (zlib's deflateBound for stored blocks, generously). */
export function deflateBound(n: number): number {
  return n + Math.ceil(n / 1000) * 5 + 1024;
}

/**
 * The content size a .filez's header declares, once `prefix` holds it (spec §2.4: a 4-byte
 * big-endian header length, 4 bytes of padding, then the archive header (tuuuusa(ayay)) with the
 * size first); -1 while the bytes are too short to say. Throws on a header longer than any
 * object may have.
 */
function filezDeclaredSize(prefix: Buffer): number {
  if (prefix.length < 8) return -1;
  const hl = prefix.readUInt32BE(0);
  if (hl > MAX_FILE_HEADER) throw new PullObjectCorruptError(`content object header claims ${hl} bytes`);
  if (prefix.length < 8 + hl + 8) return -1;
  const size = prefix.readBigUInt64BE(8);
  if (size > BigInt(MAX_CONTENT_OBJECT)) throw new PullTooLargeError(`content object claims ${size} bytes`);
  return Number(size);
}

/** Cap for a .filez once its first bytes are known: header + deflateBound(declared size). */
function filezCap(prefix: Buffer): number {
  if (prefix.length < 8) return 8;
  const size = filezDeclaredSize(prefix);
  if (size < 0) return MAX_CONTENT_OBJECT; // not enough to read the size yet
  return 8 + prefix.readUInt32BE(0) + deflateBound(size);
}

/**
 * A downloaded .filez over 64 KiB whose content is declared larger than this is stored from a
 * file, streamed (inspectFilezFile, unpackFilezFile), however small the download: one in memory
 * is inflated whole. (Deflate expands at most ~1,032:1, so a body of 64 KiB or less stays under
 * ~66 MB.)
 */
export const MAX_INFLATE_IN_MEMORY = 32 * 1024 * 1024;

function filezPrefixNeed(prefix: Buffer): number {
  if (prefix.length < 8) return 8;
  return Math.min(8 + prefix.readUInt32BE(0) + 8, 8 + MAX_FILE_HEADER);
}

function buf(r: FetchResult | null): Buffer | null {
  if (!r) return null;
  if (r.kind === 'buffer') return r.bytes;
  const b = fs.readFileSync(r.file);
  fs.rmSync(r.file, { force: true });
  return b;
}

export class HttpSource implements ObjectSource {
  constructor(
    readonly description: string,
    private readonly fetcher: Fetcher,
  ) {}

  async summary(withSig: boolean): Promise<{ bytes: Buffer | null; sig: Buffer | null }> {
    // summary.sig only when it is checked: a request (and a connection) less before the first object
    const [sig, bytes] = await Promise.all([
      withSig ? this.fetcher.fetch({ rel: 'summary.sig', maxBytes: MAX_SUMMARY_SIZE, optional: true }) : null,
      this.fetcher.fetch({ rel: 'summary', maxBytes: MAX_SUMMARY_SIZE, optional: true }),
    ]);
    return { bytes: buf(bytes), sig: buf(sig) };
  }

  async readRef(ref: string): Promise<string | null> {
    const b = buf(await this.fetcher.fetch({ rel: `refs/heads/${ref}`, maxBytes: MAX_SMALL_FILE, optional: true }));
    return b ? b.toString('utf8').trim() : null;
  }

  async metadata(csum: Checksum, type: ObjectType, optional: boolean): Promise<Buffer | null> {
    return buf(await this.fetcher.fetch({ rel: objectRelPath(csum, type, true), maxBytes: MAX_METADATA_FETCH, optional }));
  }

  async content(csum: Checksum, partFile: string): Promise<ContentPayload> {
    const result = await this.fetcher.fetch({
      rel: objectRelPath(csum, 'file', true),
      maxBytes: MAX_CONTENT_OBJECT,
      partFile,
      spillAbove: SPILL_TO_DISK,
      capFromPrefix: filezCap,
      prefixBytes: filezPrefixNeed,
    });
    // a small body can declare a large content (a sparse or zero-filled file): that one is
    // stored from the file, streamed, not inflated whole in memory
    if (result!.kind === 'buffer' && result!.bytes.length > MAX_SMALL_FILE && filezDeclaredSize(result!.bytes) > MAX_INFLATE_IN_MEMORY) {
      try {
        fs.writeFileSync(partFile, result!.bytes, { mode: 0o600 });
      } catch (e) {
        throw noSpace(e, `cannot save the download of object ${csum} to ${partFile}`, partFile);
      }
      return { kind: 'filez', result: { kind: 'file', file: partFile, size: result!.bytes.length } };
    }
    return { kind: 'filez', result: result! };
  }

  async file(rel: string, maxBytes: number, optional: boolean, onChunk?: (chunk: Buffer, at: number) => void): Promise<Buffer | null> {
    return buf(await this.fetcher.fetch({ rel, maxBytes, optional, ...(onChunk ? { onChunk } : {}) }));
  }

  close(): Promise<void> {
    return this.fetcher.close();
  }
}

/** Another repository on this machine (pull-local): objects are read and verified like remote ones. */
export class LocalSource implements ObjectSource {
  private readonly src: Repo;
  readonly description: string;

  constructor(srcPath: string) {
    this.src = Repo.open(srcPath);
    this.description = srcPath;
  }

  private read(rel: string, maxBytes: number): Buffer | null {
    const p = path.join(this.src.path, rel);
    try {
      const st = fs.statSync(p);
      if (st.size > maxBytes) return null;
      return fs.readFileSync(p);
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
      throw e;
    }
  }

  async summary(): Promise<{ bytes: Buffer | null; sig: Buffer | null }> {
    // pull-local resolves refs from the source's refs/, like ostree pull-local
    return { bytes: null, sig: null };
  }

  async readRef(ref: string): Promise<string | null> {
    return this.read(`refs/heads/${ref}`, MAX_SMALL_FILE)?.toString('utf8').trim() ?? null;
  }

  async metadata(csum: Checksum, type: ObjectType): Promise<Buffer | null> {
    return this.read(objectRelPath(csum, type, this.src.archive), MAX_METADATA_FETCH);
  }

  async content(csum: Checksum): Promise<ContentPayload> {
    return { kind: 'object', object: this.src.openContent(csum) };
  }

  async file(rel: string, maxBytes: number): Promise<Buffer | null> {
    return this.read(rel, maxBytes);
  }

  async close(): Promise<void> {}
}
