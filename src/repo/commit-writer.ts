/**
 * `commit`: a directory or a tarball becomes content, dirtree, dirmeta and commit objects,
 * with ostree's conventions so the same tree and options give the same commit checksum.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type Checksum, type FileHeader, type FileMeta, type Metadata, type Variant, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
  BLOCK, canonicalXattrs, isZeroBlock, paddedSize, parsePax, parseTarHeader, serializeCommit, serializeDirmeta, serializeDirtree,
  validateFileName,
} from '../format/index.js';

import { CairnError, FormatError, IoError, ObjectNotFoundError, SourceReadError, UnsupportedFileError, isNoSpaceCode } from '../errors.js';
import { readXattrs } from './fsutil.js';
import { resolveRev, setRef, validateRefName } from './refs.js';
import type { Repo } from './repo.js';
import { SMALL_FILE, Transaction } from './staging.js';
import { Limiter } from '../util/index.js';

export type TreeSource = { kind: 'dir'; path: string } | { kind: 'tar'; path: string };

export interface CommitOptions {
  /** Ref to update; also recorded in ostree.ref-binding unless bindings is false. */
  branch?: string;
  /** Parent commit: explicit checksum, null for none, undefined = the branch's current head. */
  parent?: Checksum | null;
  subject?: string;
  body?: string;
  /** Seconds since the epoch; default now. */
  timestamp?: bigint;
  ownerUid?: number;
  ownerGid?: number;
  noXattrs?: boolean;
  canonicalPermissions?: boolean;
  /** Extra commit metadata, in order (from --add-metadata-string). */
  metadata?: (readonly [string, Variant])[];
  /** Write ostree.ref-binding, the list of branches (default true, as `ostree commit`). */
  bindings?: boolean;
  /** Concurrent content writes in flight. */
  concurrency?: number;
  onProgress?: (p: { files: number; bytes: number }) => void;
}

export interface CommitResult {
  commit: Checksum;
  /** Number of new objects written. */
  written: number;
  files: number;
  bytes: number;
}

interface Modifier {
  meta(m: FileMeta): FileMeta;
}

function makeModifier(o: CommitOptions, repo: Repo): Modifier {
  const canonical = o.canonicalPermissions || repo.mode === 'bare-user-only';
  const noXattrs = o.noXattrs || canonical || repo.config.getBoolean('core', 'disable-xattrs', false);
  return {
    meta(m) {
      let { uid, gid, mode } = m;
      let xattrs = noXattrs ? [] : canonicalXattrs(m.xattrs);
      if (canonical) {
        uid = 0;
        gid = 0;
        xattrs = [];
        if ((mode & S_IFMT) !== S_IFLNK) mode = (mode & S_IFMT) | (mode & 0o755);
      }
      if (o.ownerUid !== undefined) uid = o.ownerUid;
      if (o.ownerGid !== undefined) gid = o.ownerGid;
      return { uid, gid, mode, xattrs };
    },
  };
}


interface Stats {
  files: number;
  bytes: number;
}

export async function commitTree(repo: Repo, source: TreeSource, opts: CommitOptions = {}): Promise<CommitResult> {
  if (opts.branch !== undefined) validateRefName(opts.branch);
  const parent = opts.parent !== undefined ? opts.parent : opts.branch ? resolveRev(repo, opts.branch, { allowMissing: true }) : null;
  if (parent && !repo.hasObject(parent, 'commit')) {
    throw new ObjectNotFoundError(`parent commit ${parent} is not in the repository`, { object: parent });
  }
  const mod = makeModifier(opts, repo);
  const txn = new Transaction(repo);
  const stats: Stats = { files: 0, bytes: 0 };
  try {
    const root =
      source.kind === 'dir'
        ? await writeDir(txn, source.path, mod, new Limiter(opts.concurrency ?? 16), stats, opts)
        : await writeTar(txn, source.path, mod, stats);
    const metadata: (readonly [string, Variant])[] = [...(opts.metadata ?? [])];
    // like `ostree commit`: the binding is written even for an orphan commit (an empty list)
    if (opts.bindings !== false) metadata.push(['ostree.ref-binding', { type: 'as', value: opts.branch ? [opts.branch] : [] }]);
    const collection = repo.config.get('core', 'collection-id');
    if (collection && opts.bindings !== false) metadata.push(['ostree.collection-binding', { type: 's', value: collection }]);
    const commitBytes = serializeCommit({
      metadata: metadata as Metadata,
      parent,
      subject: opts.subject ?? '',
      body: opts.body ?? '',
      timestamp: opts.timestamp ?? BigInt(Math.floor(Date.now() / 1000)),
      rootTree: root.tree,
      rootMeta: root.meta,
    });
    const commit = await txn.writeMetadata('commit', commitBytes);
    const written = await txn.commit();
    if (opts.branch) setRef(repo, null, opts.branch, commit);
    return { commit, written, ...stats };
  } catch (e) {
    await txn.abort();
    throw e;
  }
}

// ---------------------------------------------------------------- from a directory

async function writeDir(
  txn: Transaction, dir: string, mod: Modifier, limit: Limiter, stats: Stats, opts: CommitOptions,
): Promise<{ tree: Checksum; meta: Checksum }> {
  const st = lstatOrThrow(dir);
  if (!st.isDirectory()) throw new SourceReadError(`${dir}: not a directory`, { path: dir });
  const dirMeta = mod.meta({ uid: st.uid, gid: st.gid, mode: st.mode, xattrs: xattrsOf(dir) });
  let names: string[];
  try {
    names = fs.readdirSync(dir, { encoding: 'buffer' }).map((b) => {
      const s = b.toString('utf8');
      if (!Buffer.from(s, 'utf8').equals(b)) throw new UnsupportedFileError(`${path.join(dir, b.toString('latin1'))}: file name is not valid UTF-8`, { path: dir });
      return s;
    });
  } catch (e) {
    if (e instanceof CairnError) throw e;
    throw new SourceReadError(`${dir}: cannot read directory: ${(e as Error).message}`, { path: dir, cause: e });
  }
  const files: Promise<{ name: string; checksum: Checksum }>[] = [];
  const dirs: Promise<{ name: string; tree: Checksum; meta: Checksum }>[] = [];
  for (const name of names) {
    const p = path.join(dir, name);
    const cst = lstatOrThrow(p);
    if (cst.isDirectory()) {
      dirs.push(writeDir(txn, p, mod, limit, stats, opts).then((r) => ({ name, ...r })));
    } else if (cst.isFile() || cst.isSymbolicLink()) {
      const m = mod.meta({ uid: cst.uid, gid: cst.gid, mode: cst.mode, xattrs: xattrsOf(p) });
      files.push(limit.run(() => writeFileFrom(txn, p, cst, m, stats, opts)).then((checksum) => ({ name, checksum })));
    } else {
      throw new UnsupportedFileError(`${p}: not a regular file or symlink (${fileKind(cst)})`, { path: p });
    }
  }
  const [f, d] = await Promise.all([Promise.all(files), Promise.all(dirs)]);
  const tree = await txn.writeMetadata('dirtree', serializeDirtree({ files: f, dirs: d }));
  const meta = await txn.writeMetadata('dirmeta', serializeDirmeta(dirMeta));
  return { tree, meta };
}

async function writeFileFrom(txn: Transaction, p: string, st: fs.Stats, m: FileMeta, stats: Stats, opts: CommitOptions): Promise<Checksum> {
  stats.files++;
  try {
    if (st.isSymbolicLink()) {
      const h: FileHeader = { ...m, symlinkTarget: fs.readlinkSync(p, 'utf8') };
      return await txn.writeContentBuffer(h, Buffer.alloc(0));
    }
    const h: FileHeader = { ...m, symlinkTarget: '' };
    stats.bytes += st.size;
    opts.onProgress?.(stats);
    if (st.size <= SMALL_FILE) {
      const done = await txn.writeFileFromPath(h, p, st.size);
      if (done) return done;
      const content = fs.readFileSync(p);
      if (content.length !== st.size) throw new IoError(`${p}: file changed while being read`, { path: p });
      return await txn.writeContentBuffer(h, content);
    }
    return await txn.writeContentStream(h, fs.createReadStream(p), st.size);
  } catch (e) {
    if (e instanceof CairnError) throw e;
    // a failed write into the repository (a full disk, an error on a staged file) is not a source problem
    const { code, path: at } = e as NodeJS.ErrnoException;
    if ((at !== undefined && at !== p) || isNoSpaceCode(code) || code === 'EROFS') throw e;
    throw new SourceReadError(`${p}: cannot read: ${(e as Error).message}`, { path: p, cause: e });
  }
}

function lstatOrThrow(p: string): fs.Stats {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    throw new SourceReadError(`${p}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, { path: p, cause: e });
  }
}

function xattrsOf(p: string): FileMeta['xattrs'] {
  try {
    return readXattrs(p);
  } catch (e) {
    throw new SourceReadError(`${p}: cannot read extended attributes: ${(e as Error).message}`, { path: p, cause: e });
  }
}

function fileKind(st: fs.Stats): string {
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'unknown type';
}

// ---------------------------------------------------------------- from a tarball

interface TarDir {
  meta: FileMeta | null;
  files: Map<string, Promise<Checksum>>;
  dirs: Map<string, TarDir>;
}

const DEFAULT_DIR_META: FileMeta = { uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] };

function splitTarPath(name: string): string[] {
  return name.split('/').filter((c) => c !== '' && c !== '.');
}

const MAX_PAX = 1024 * 1024; // a pax header larger than this is an attack or garbage, not metadata

async function writeTar(txn: Transaction, tarPath: string, mod: Modifier, stats: Stats): Promise<{ tree: Checksum; meta: Checksum }> {
  const root: TarDir = { meta: null, files: new Map(), dirs: new Map() };
  const byPath = new Map<string, Promise<Checksum>>();
  const ensureDir = (parts: string[]): TarDir => {
    let d = root;
    for (const c of parts) {
      validateName(c, tarPath);
      let next = d.dirs.get(c);
      if (!next) {
        if (d.files.has(c)) throw new SourceReadError(`${tarPath}: "${parts.join('/')}" is both a file and a directory`, { path: tarPath });
        next = { meta: null, files: new Map(), dirs: new Map() };
        d.dirs.set(c, next);
      }
      d = next;
    }
    return d;
  };
  let fd: number;
  try {
    fd = fs.openSync(tarPath, 'r');
  } catch (e) {
    throw new SourceReadError(`${tarPath}: cannot read: ${(e as Error).message}`, { path: tarPath, cause: e });
  }
  const pending: Promise<Checksum>[] = [];
  try {
    const fileSize = fs.fstatSync(fd).size;
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      if (fs.readSync(fd, b, 0, len, pos) !== len) throw new FormatError('unexpected end of archive');
      return b;
    };
    let pos = 0;
    let pax = new Map<string, Buffer>();
    const globalPax = new Map<string, Buffer>();
    let longName: string | null = null;
    let longLink: string | null = null;
    const hdr = Buffer.alloc(BLOCK);
    while (pos < fileSize) {
      if (pos + BLOCK > fileSize) throw new FormatError('archive is truncated inside a header');
      fs.readSync(fd, hdr, 0, BLOCK, pos);
      pos += BLOCK;
      if (isZeroBlock(hdr)) break;
      const h = parseTarHeader(hdr);
      const dataPos = pos;
      const rawSize = h.type === 'file' || h.type === 'pax' || h.type === 'pax-global' || h.type.startsWith('gnu-') ? h.size : 0;
      if (h.type === 'pax' || h.type === 'pax-global' || h.type.startsWith('gnu-')) {
        if (h.size > MAX_PAX) throw new FormatError(`extended header of ${h.size} bytes is too large`);
        pos += paddedSize(h.size);
        if (pos > fileSize) throw new FormatError('archive is truncated');
        const data = read(dataPos, h.size);
        if (h.type === 'pax') pax = parsePax(data);
        else if (h.type === 'pax-global') for (const [k, v] of parsePax(data)) globalPax.set(k, v);
        else if (h.type === 'gnu-longname') longName = data.toString('utf8').replace(/\0+$/, '');
        else longLink = data.toString('utf8').replace(/\0+$/, '');
        continue;
      }
      const px = new Map([...globalPax, ...pax]);
      const str = (k: string): string | undefined => px.get(k)?.toString('utf8');
      const name = str('path') ?? longName ?? h.name;
      const linkname = str('linkpath') ?? longLink ?? h.linkname;
      const size = h.type === 'file' ? Number(str('size') ?? rawSize) : 0;
      const uid = Number(str('uid') ?? h.uid);
      const gid = Number(str('gid') ?? h.gid);
      pax = new Map();
      longName = null;
      longLink = null;
      pos += paddedSize(size);
      if (pos > fileSize) throw new FormatError(`archive is truncated inside "${name}"`);
      const xattrs = [...px]
        .filter(([k]) => k.startsWith('SCHILY.xattr.'))
        .map(([k, v]) => ({ name: k.slice('SCHILY.xattr.'.length), value: v }));
      const parts = splitTarPath(name);
      const base = { uid, gid, xattrs };
      const perm = h.mode & 0o7777;
      if (h.type === 'directory') {
        ensureDir(parts).meta = mod.meta({ ...base, mode: S_IFDIR | perm });
        continue;
      }
      if (parts.length === 0) throw new SourceReadError(`${tarPath}: entry "${name}" has an empty path`, { path: tarPath });
      const leaf = parts.at(-1)!;
      const dir = ensureDir(parts.slice(0, -1));
      validateName(leaf, tarPath);
      if (dir.dirs.has(leaf)) throw new SourceReadError(`${tarPath}: "${parts.join('/')}" is both a file and a directory`, { path: tarPath });
      let csum: Promise<Checksum>;
      if (h.type === 'file') {
        const m = mod.meta({ ...base, mode: S_IFREG | perm });
        stats.files++;
        stats.bytes += size;
        csum =
          size <= SMALL_FILE
            ? txn.writeContentBuffer({ ...m, symlinkTarget: '' }, read(dataPos, size))
            : txn.writeContentStream({ ...m, symlinkTarget: '' }, fs.createReadStream(tarPath, { start: dataPos, end: dataPos + size - 1 }), size);
      } else if (h.type === 'symlink') {
        const m = mod.meta({ ...base, mode: S_IFLNK | 0o777 });
        stats.files++;
        csum = txn.writeContentBuffer({ ...m, symlinkTarget: linkname }, Buffer.alloc(0));
      } else if (h.type === 'hardlink') {
        const target = byPath.get(splitTarPath(linkname).join('/'));
        if (!target) throw new SourceReadError(`${tarPath}: hard link "${name}" points to "${linkname}", which is not an earlier regular file`, { path: tarPath });
        csum = target;
      } else {
        throw new UnsupportedFileError(`${tarPath}: "${name}" is not a regular file or symlink (${h.type})`, { path: tarPath });
      }
      csum.catch(() => undefined); // surfaced when awaited below
      pending.push(csum);
      if (pending.length >= 64) await Promise.all(pending.splice(0));
      dir.files.set(leaf, csum);
      byPath.set(parts.join('/'), csum);
    }
  } catch (e) {
    if (e instanceof CairnError && !(e instanceof FormatError)) throw e;
    throw new SourceReadError(`${tarPath}: not a readable tar archive: ${(e as Error).message}`, { path: tarPath, cause: e });
  } finally {
    await Promise.allSettled(pending);
    fs.closeSync(fd);
  }
  const writeNode = async (d: TarDir): Promise<{ tree: Checksum; meta: Checksum }> => {
    const files = await Promise.all([...d.files].map(async ([name, c]) => ({ name, checksum: await c })));
    const dirs = await Promise.all([...d.dirs].map(async ([name, sub]) => ({ name, ...(await writeNode(sub)) })));
    const tree = await txn.writeMetadata('dirtree', serializeDirtree({ files, dirs }));
    const meta = await txn.writeMetadata('dirmeta', serializeDirmeta(d.meta ?? mod.meta(DEFAULT_DIR_META)));
    return { tree, meta };
  };
  return writeNode(root);
}

function validateName(name: string, tarPath: string): void {
  try {
    validateFileName(name);
  } catch (e) {
    if (e instanceof FormatError) throw new SourceReadError(`${tarPath}: ${e.message}`, { path: tarPath });
    throw e;
  }
}
