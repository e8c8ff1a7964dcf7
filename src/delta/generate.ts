/**
 * Generating static deltas (spec §5.6), with ostree's defaults and a few choices of our own:
 * - new objects = reachable from `to` and not from `from`; the to-commit goes in the superblock;
 * - metadata objects as `S` ops;
 * - a new regular file with a similar old file (same path first, then ostree's basename rules)
 *   gets a bsdiff patch (`r o B c R`) when that patch compresses clearly better than the file;
 * - big files without a useful patch become fallbacks (fetched as .filez);
 * - everything else is `S`, ordered by file name extension so similar data shares the xz window;
 * - parts are xz-compressed (preset 8, as ostree), in parallel on all cores.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  type Checksum, type FileHeader, type Metadata, type Variant, type Xattr, S_IFLNK, S_IFMT, S_IFREG,
  checksumToBytes, parseCommit, serializeArchiveHeader, sha256,
} from '../format/index.js';
import {
  type DeltaFallback, type DeltaMode, type DeltaObjectRef, type DeltaPartHeader, COMPRESSION_XZ, OpWriter, deltaRelDir,
  inlinePartEntry, serializePartPayload, serializeSuperblock,
} from '../format/index.js';
import { DeltaFromMissingError, DeltaInvalidError, ObjectCorruptError } from '../errors.js';
import type { Repo } from '../repo/index.js';
import { writeDeltaFiles } from '../repo/index.js';
import { signSuperblock } from '../repo/index.js';
import { bsdiff } from './bsdiff.js';
import { xzCompress } from './xz.js';

export interface GenerateOptions {
  /** From-commit, or null for a from-scratch delta. */
  from: Checksum | null;
  to: Checksum;
  /** Store parts inside the superblock. */
  inline?: boolean;
  /** Start a new part when one would exceed this many uncompressed bytes (default 32 MiB). */
  maxChunkSize?: number;
  /** New files larger than this without a useful diff become fallbacks (default 4 MiB). */
  minFallbackSize?: number;
  disableBsdiff?: boolean;
  /** Skip bsdiff when old + new exceed this many bytes (default 128 MiB, as ostree). */
  maxBsdiffSize?: number;
  /** Sign the superblock with these secret keys (base64, §5.9). */
  signKeys?: string[];
  /** Write the delta into the repository's deltas/ (default true). */
  write?: boolean;
  onProgress?: (e: { phase: string; done: number; total: number }) => void;
}

export interface GenerateResult {
  readonly from: Checksum | null;
  readonly to: Checksum;
  readonly dir: string | null;
  readonly superblock: Buffer;
  readonly parts: readonly Buffer[];
  readonly fallbacks: readonly DeltaFallback[];
  readonly stats: {
    newMetadata: number;
    newContent: number;
    bsdiff: number;
    fallbacks: number;
    /** Bytes of superblock + parts (fallback objects not included). */
    totalSize: number;
    fallbackSize: number;
  };
}

interface TreeWalk {
  /** Metadata objects in walk order, keyed "csum.type". */
  readonly meta: Map<string, DeltaObjectRef>;
  /** Regular files and symlinks: path -> checksum (first path wins for duplicates). */
  readonly files: Map<string, Checksum>;
  readonly all: Set<string>;
}

function walkCommit(repo: Repo, commit: Checksum): TreeWalk {
  const c = repo.loadCommit(commit);
  const meta = new Map<string, DeltaObjectRef>();
  const files = new Map<string, Checksum>();
  const all = new Set<string>([`${commit}.commit`]);
  // every path is walked (a subtree shared by two paths is read twice): the path map feeds
  // the similarity search, which looks files up by path
  const walk = (tree: Checksum, dm: Checksum, dir: string): void => {
    const mk = `${dm}.dirmeta`;
    if (!meta.has(mk)) meta.set(mk, { type: 'dirmeta', checksum: dm });
    all.add(mk);
    const tk = `${tree}.dirtree`;
    if (!meta.has(tk)) meta.set(tk, { type: 'dirtree', checksum: tree });
    all.add(tk);
    const t = repo.loadDirtree(tree);
    for (const f of t.files) {
      all.add(`${f.checksum}.file`);
      const p = `${dir}/${f.name}`;
      if (!files.has(p)) files.set(p, f.checksum);
    }
    for (const d of t.dirs) walk(d.tree, d.meta, `${dir}/${d.name}`);
  };
  walk(c.rootTree, c.rootMeta, '');
  return { meta, files, all };
}

/** An executables part smaller than this is compressed without the x86 filter. */
const MIN_X86_PART = 256 * 1024;

/** An x86 / x86-64 ELF file (e_machine 3 or 62, little-endian): what the x86 BCJ filter helps. */
function isElf(b: Uint8Array): boolean {
  if (b.length <= 64 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46 || b[5] !== 1) return false;
  const machine = b[18]! | (b[19]! << 8);
  return machine === 3 || machine === 62;
}

const COMPRESSED_EXT = /\.(xz|bz2|gz|zst|lz4|lzma|zip|jar|png|jpg|jpeg|gif|webp|woff2?)$/i;

function extOf(p: string): string {
  const b = path.posix.basename(p);
  const i = b.lastIndexOf('.');
  return i > 0 ? b.slice(i + 1) : '';
}

class PartBuilder {
  readonly modes: DeltaMode[] = [];
  private readonly modeIdx = new Map<string, number>();
  readonly xattrs: (readonly Xattr[])[] = [];
  private readonly xattrIdx = new Map<string, number>();
  readonly blobs: Buffer[] = [];
  blobLength = 0;
  readonly ops = new OpWriter();
  readonly objects: DeltaObjectRef[] = [];
  usize = 0;

  addBlob(b: Uint8Array): number {
    const off = this.blobLength;
    this.blobs.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    this.blobLength += b.length;
    return off;
  }
  modeOf(h: FileHeader): number {
    const k = `${h.uid}:${h.gid}:${h.mode}`;
    let i = this.modeIdx.get(k);
    if (i === undefined) {
      i = this.modes.length;
      this.modes.push({ uid: h.uid, gid: h.gid, mode: h.mode });
      this.modeIdx.set(k, i);
    }
    return i;
  }
  xattrsOf(h: FileHeader): number {
    const k = JSON.stringify(h.xattrs.map((x) => [x.name, Buffer.from(x.value).toString('hex')]));
    let i = this.xattrIdx.get(k);
    if (i === undefined) {
      i = this.xattrs.length;
      this.xattrs.push(h.xattrs);
      this.xattrIdx.set(k, i);
    }
    return i;
  }
  get empty(): boolean {
    return this.objects.length === 0;
  }
  /** Drops the blob once the payload is built (the header fields stay). */
  release(): void {
    this.blobs.length = 0;
  }
  payload(): Buffer {
    return serializePartPayload({ modes: this.modes, xattrs: this.xattrs, blob: Buffer.concat(this.blobs, this.blobLength), ops: this.ops.finish() });
  }
}

/** The archived (.filez) bytes of a content object, as a fallback is fetched. */
export async function archivedObject(repo: Repo, csum: Checksum): Promise<Buffer> {
  const obj = repo.openContent(csum);
  if (repo.archive) {
    return fs.promises.readFile(obj.objectPath); // (fs.promises loads on first use: ~1 ms of every start otherwise)
  }
  const content = await obj.read();
  const level = Number(repo.config.get('archive', 'zlib-level') ?? 6);
  const z = (obj.header.mode & S_IFMT) === S_IFLNK ? Buffer.alloc(0) : zlib.deflateRawSync(content, { level: Number.isInteger(level) ? level : 6 });
  return Buffer.concat([serializeArchiveHeader(obj.header, content.length), z]);
}

export async function generateStaticDelta(repo: Repo, opts: GenerateOptions): Promise<GenerateResult> {
  const maxChunk = opts.maxChunkSize ?? 32 * 1024 * 1024;
  const minFallback = opts.minFallbackSize ?? 4 * 1024 * 1024;
  const maxBsdiff = opts.maxBsdiffSize ?? 128 * 1024 * 1024;
  const { from, to } = opts;
  if (from === to) throw new DeltaInvalidError('--from and --to name the same commit');
  if (!repo.hasObject(to, 'commit')) throw new DeltaInvalidError(`commit ${to} is not in the repository`, { object: to });
  if (from && !repo.hasObject(from, 'commit')) throw new DeltaFromMissingError(`from-commit ${from} is not in the repository`, { object: from });
  const commitBytes = repo.readMetadataBytes(to, 'commit');
  if (sha256(commitBytes) !== to) throw new ObjectCorruptError(`commit ${to} does not match its checksum`, { object: to });
  parseCommit(commitBytes);

  const newWalk = walkCommit(repo, to);
  const oldWalk = from ? walkCommit(repo, from) : null;
  const isNew = (key: string): boolean => !oldWalk?.all.has(key);

  const newMeta = [...newWalk.meta.entries()].filter(([k]) => isNew(k)).map(([, v]) => v);
  // new content, each with its first path
  const newContent = new Map<Checksum, string>();
  for (const [p, c] of newWalk.files) if (isNew(`${c}.file`) && !newContent.has(c)) newContent.set(c, p);

  // similarity indexes over the old tree
  const oldByBase = new Map<string, string[]>();
  const oldByPrefix = new Map<string, string[]>();
  if (oldWalk) {
    for (const p of oldWalk.files.keys()) {
      const b = path.posix.basename(p);
      (oldByBase.get(b) ?? oldByBase.set(b, []).get(b)!).push(p);
      const pre = b.split('.')[0]!;
      (oldByPrefix.get(pre) ?? oldByPrefix.set(pre, []).get(pre)!).push(p);
    }
  }
  const oldHeaders = new Map<Checksum, { size: number; mode: number } | null>();
  const oldInfo = (c: Checksum): { size: number; mode: number } | null => {
    if (!oldHeaders.has(c)) {
      try {
        const o = repo.openContent(c);
        oldHeaders.set(c, { size: o.size, mode: o.header.mode });
      } catch {
        oldHeaders.set(c, null);
      }
    }
    return oldHeaders.get(c)!;
  };
  const findSimilar = (p: string, size: number): Checksum | null => {
    if (!oldWalk || size === 0 || COMPRESSED_EXT.test(p)) return null;
    const ok = (c: Checksum, tolerance: number): boolean => {
      const i = oldInfo(c);
      if (!i || (i.mode & S_IFMT) !== S_IFREG || i.size === 0 || (i.mode & 0o004) === 0) return false;
      return i.size >= size * (1 - tolerance) && i.size <= size * (1 + tolerance);
    };
    const same = oldWalk.files.get(p);
    if (same && ok(same, 0.5)) return same;
    const b = path.posix.basename(p);
    const pick = (cands: string[] | undefined): Checksum | null => {
      let best: Checksum | null = null;
      let bestDelta = Infinity;
      for (const cp of cands ?? []) {
        const c = oldWalk.files.get(cp)!;
        if (!ok(c, 0.3)) continue;
        const d = Math.abs(oldInfo(c)!.size - size);
        if (d < bestDelta) {
          bestDelta = d;
          best = c;
        }
      }
      return best;
    };
    return pick(oldByBase.get(b)) ?? pick(oldByPrefix.get(b.split('.')[0]!));
  };

  // classify new content
  interface Item { csum: Checksum; path: string; header: FileHeader; size: number; kind: 'S' | 'bsdiff' | 'fallback' | 'link'; base?: Checksum }
  const items: Item[] = [];
  for (const [csum, p] of newContent) {
    const o = repo.openContent(csum);
    const isLink = (o.header.mode & S_IFMT) === S_IFLNK;
    const item: Item = { csum, path: p, header: o.header, size: o.size, kind: isLink ? 'link' : 'S' };
    if (!isLink) {
      const base = findSimilar(p, o.size);
      if (base && !opts.disableBsdiff && oldInfo(base)!.size + o.size <= maxBsdiff) {
        item.kind = 'bsdiff';
        item.base = base;
      } else if (o.size > minFallback) item.kind = 'fallback';
    }
    items.push(item);
  }

  // two part sequences: executables (xz with the x86 BCJ filter, which shrinks machine code
  // by a few percent) and everything else. A part is compressed as soon as it is full, on as
  // many xz processes as there are cores, while the next one is being filled.
  const cores = Math.max(1, availableParallelism());
  let running = 0;
  const waiting: (() => void)[] = [];
  const slotFreed: (() => void)[] = [];
  let compressedCount = 0;
  const compressPart = async (payload: Buffer, x86: boolean): Promise<Buffer> => {
    if (running >= cores) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      const xz = await xzCompress(payload, { preset: 8, x86 });
      opts.onProgress?.({ phase: 'compress', done: ++compressedCount, total: compressedCount });
      return Buffer.concat([Buffer.from([COMPRESSION_XZ]), xz]);
    } finally {
      running--;
      waiting.shift()?.();
      for (const r of slotFreed.splice(0)) r();
    }
  };
  class PartSeq {
    readonly builders: PartBuilder[] = [new PartBuilder()];
    readonly files: (Promise<Buffer> | undefined)[] = [];
    constructor(readonly x86: boolean) {}
    async take(n: number): Promise<PartBuilder> {
      let b = this.builders[this.builders.length - 1]!;
      if (!b.empty && b.blobLength + n > maxChunk) {
        await this.seal();
        b = new PartBuilder();
        this.builders.push(b);
      }
      return b;
    }
    /** Hands the last builder to xz; waits while too many payloads are already queued. */
    async seal(): Promise<void> {
      const i = this.builders.length - 1;
      const b = this.builders[i]!;
      if (b.empty || this.files[i] !== undefined) return;
      while (running + waiting.length >= cores * 2) await new Promise<void>((r) => slotFreed.push(r));
      const payload = b.payload();
      b.release();
      const p = compressPart(payload, this.x86 && payload.length >= MIN_X86_PART);
      p.catch(() => {}); // awaited below; avoid an unhandled rejection meanwhile
      this.files[i] = p;
    }
  }
  const mainSeq = new PartSeq(false);
  const elfSeq = new PartSeq(true);
  let cur = mainSeq.builders[0]!;
  const room = async (n: number, seq: PartSeq = mainSeq): Promise<void> => {
    cur = await seq.take(n);
  };
  for (const m of newMeta) {
    const bytes = repo.readMetadataBytes(m.checksum, m.type);
    if (sha256(bytes) !== m.checksum) throw new ObjectCorruptError(`${m.type} object ${m.checksum} does not match its checksum`, { object: m.checksum });
    await room(bytes.length);
    const off = cur.addBlob(bytes);
    cur.ops.spliceMetadata(bytes.length, off);
    cur.objects.push(m);
    cur.usize += bytes.length;
  }

  // bsdiff candidates: diff, and keep the patch only if it clearly beats shipping the file
  const stats = { newMetadata: newMeta.length, newContent: items.length, bsdiff: 0, fallbacks: 0, totalSize: 0, fallbackSize: 0 };
  const diffed = items.filter((i) => i.kind === 'bsdiff');
  let done = 0;
  for (const it of diffed) {
    opts.onProgress?.({ phase: 'bsdiff', done: done++, total: diffed.length });
    const [oldData, newData] = await Promise.all([repo.openContent(it.base!).read(), repo.openContent(it.csum).read()]);
    const patch = bsdiff(oldData, newData);
    const zPatch = zlib.deflateRawSync(patch, { level: 1 }).length;
    const zNew = zlib.deflateRawSync(newData, { level: 1 }).length;
    if (zPatch >= zNew * 0.85) {
      it.kind = it.size > minFallback ? 'fallback' : 'S';
      continue;
    }
    stats.bsdiff++;
    await room(32 + patch.length);
    const srcOff = cur.addBlob(checksumToBytes(it.base!));
    const patchOff = cur.addBlob(patch);
    cur.ops.setReadSource(srcOff).open(cur.modeOf(it.header), cur.xattrsOf(it.header), it.size).bspatch(patchOff, patch.length).close().unsetReadSource();
    cur.objects.push({ type: 'file', checksum: it.csum });
    cur.usize += it.size;
  }

  // plain content, grouped by extension then name so alike data sits together
  const plain = items
    .filter((i) => i.kind === 'S')
    .sort((a, b) => extOf(a.path).localeCompare(extOf(b.path)) || path.posix.basename(a.path).localeCompare(path.posix.basename(b.path)) || a.csum.localeCompare(b.csum));
  for (const it of plain) {
    const data = await repo.openContent(it.csum).read();
    await room(data.length, isElf(data) ? elfSeq : mainSeq);
    const off = cur.addBlob(data);
    cur.ops.spliceContent(cur.modeOf(it.header), cur.xattrsOf(it.header), data.length, off);
    cur.objects.push({ type: 'file', checksum: it.csum });
    cur.usize += data.length;
  }
  for (const it of items.filter((i) => i.kind === 'link').sort((a, b) => a.csum.localeCompare(b.csum))) {
    const target = Buffer.from(it.header.symlinkTarget, 'utf8');
    await room(target.length);
    const off = cur.addBlob(target);
    cur.ops.spliceContent(cur.modeOf(it.header), cur.xattrsOf(it.header), target.length, off);
    cur.objects.push({ type: 'file', checksum: it.csum });
    cur.usize += target.length;
  }

  const fallbacks: DeltaFallback[] = [];
  for (const it of items.filter((i) => i.kind === 'fallback').sort((a, b) => a.csum.localeCompare(b.csum))) {
    const z = await archivedObject(repo, it.csum);
    fallbacks.push({ type: 'file', checksum: it.csum, size: z.length, usize: it.size });
    stats.fallbackSize += z.length;
  }
  stats.fallbacks = fallbacks.length;

  await mainSeq.seal();
  await elfSeq.seal();
  const nonEmpty = [mainSeq, elfSeq].flatMap((seq) => seq.builders.map((b, i) => ({ b, file: seq.files[i] })).filter((x) => !x.b.empty));
  const partFiles = await Promise.all(nonEmpty.map((x) => x.file!));
  const parts: DeltaPartHeader[] = nonEmpty.map(({ b }, i) => ({
    version: 0, checksum: sha256(partFiles[i]!), size: partFiles[i]!.length, usize: b.usize, objects: b.objects,
  }));

  const metadata: (readonly [string, Variant])[] = [];
  const commitmeta: Metadata | null = repo.loadCommitmeta(to);
  if (commitmeta) metadata.push([`${deltaRelDir(from, to)}/commitmeta`, { type: 'a{sv}', value: commitmeta }]);
  if (opts.inline) partFiles.forEach((pf, i) => metadata.push(inlinePartEntry(from, to, i, pf)));
  const inner = serializeSuperblock({
    metadata, timestamp: BigInt(Math.floor(Date.now() / 1000)), from, to, commitBytes, parts, fallbacks,
  });
  const superblock = opts.signKeys && opts.signKeys.length > 0 ? signSuperblock(inner, opts.signKeys) : inner;

  let dir: string | null = null;
  if (opts.write !== false) {
    const files = new Map<string, Uint8Array>();
    if (!opts.inline) partFiles.forEach((pf, i) => files.set(String(i), pf));
    files.set('superblock', superblock);
    dir = writeDeltaFiles(repo, from, to, files);
  }
  stats.totalSize = superblock.length + (opts.inline ? 0 : partFiles.reduce((n, p) => n + p.length, 0));
  return { from, to, dir, superblock, parts: opts.inline ? [] : partFiles, fallbacks, stats };
}

