/**
 * An OSTree repository on disk (spec §3): init/open, config, reading objects in every mode.
 * Writing objects goes through a Transaction (staging.ts); refs through refs.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import {
  type Checksum, type Commit, type Dirtree, type FileHeader, type FileMeta, type ObjectType, KeyFile,
  S_IFLNK, S_IFMT, objectRelPath, parseArchiveHeader, parseCommit, parseDirmeta,
  parseDirtree, parseMetadata, type Metadata,
} from '../format/index.js';
import {
  CairnError, FormatError, ObjectCorruptError, ObjectNotFoundError, RepoConfigError, RepoExistsError, RepoInvalidError,
  RepoNotFoundError,
} from '../errors.js';
import { isErrno, readAt, writeFileAtomic } from './fsutil.js';
import { readBareHeader, sizedInflate } from './object-files.js';

export type RepoMode = 'archive' | 'bare' | 'bare-user' | 'bare-user-only';
export const REPO_MODES: readonly RepoMode[] = ['archive', 'bare', 'bare-user', 'bare-user-only'];

const MODE_ON_DISK: Record<RepoMode, string> = {
  archive: 'archive-z2', bare: 'bare', 'bare-user': 'bare-user', 'bare-user-only': 'bare-user-only',
};

/** Metadata objects larger than this are refused: no real dirtree or commit comes close. */
export const MAX_METADATA_SIZE = 128 * 1024 * 1024;

/** A content object opened for reading: its header and a way to get the bytes. */
export interface ContentObject {
  readonly header: FileHeader;
  readonly size: number;
  /** Path of the loose object file. */
  readonly objectPath: string;
  /** True when the object file holds the content verbatim (bare modes, regular files). */
  readonly hardlinkable: boolean;
  /** Streams the uncompressed content. */
  stream(): Readable;
  /** Reads the whole uncompressed content (callers use this for small files only). */
  read(): Promise<Buffer>;
}

export interface InitOptions {
  mode: RepoMode;
  /** Extra [core] settings, e.g. fsync=false. */
  config?: Record<string, string>;
}

/** `p` normalised for `${base}/objects/...`: no trailing slash, and "" for the root. */
function joinBase(p: string): string {
  const b = path.normalize(p === '' ? '.' : p);
  return b === '/' ? '' : b.endsWith('/') ? b.slice(0, -1) : b;
}

/** Read buffer for small metadata objects (see readMetadataBytes). */
const scratch = Buffer.allocUnsafe(64 * 1024);

export class Repo {
  /** `path` normalised, without a trailing slash: object paths are built by concatenation (hot in pull and checkout). */
  private readonly base: string;

  private constructor(
    readonly path: string,
    readonly mode: RepoMode,
    readonly config: KeyFile,
  ) {
    this.base = joinBase(path);
  }

  get archive(): boolean {
    return this.mode === 'archive';
  }

  /** core.fsync (default true): whether writes are flushed to disk before they become visible. */
  get durable(): boolean {
    return this.config.getBoolean('core', 'fsync', true);
  }

  static init(repoPath: string, opts: InitOptions): Repo {
    if (fs.existsSync(path.join(repoPath, 'config')) || fs.existsSync(path.join(repoPath, 'objects'))) {
      throw new RepoExistsError(`${repoPath}: a repository already exists here`, { path: repoPath });
    }
    for (const d of ['objects', 'refs/heads', 'refs/mirrors', 'refs/remotes', 'state', 'tmp/cache', 'extensions']) {
      fs.mkdirSync(path.join(repoPath, d), { recursive: true });
    }
    const kf = new KeyFile();
    kf.set('core', 'repo_version', '1');
    kf.set('core', 'mode', MODE_ON_DISK[opts.mode]);
    for (const [k, v] of Object.entries(opts.config ?? {})) kf.set('core', k, v);
    writeFileAtomic(path.join(repoPath, 'config'), kf.toString(), { durable: kf.getBoolean('core', 'fsync', true) });
    return new Repo(repoPath, opts.mode, kf);
  }

  static open(repoPath: string): Repo {
    let text: string;
    try {
      text = fs.readFileSync(path.join(repoPath, 'config'), 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
        throw new RepoNotFoundError(`${repoPath}: not an OSTree repository (no config file)`, { path: repoPath });
      }
      throw new RepoInvalidError(`${repoPath}: cannot read repository config`, { path: repoPath, cause: e });
    }
    let kf: KeyFile;
    try {
      kf = KeyFile.parse(text);
    } catch (e) {
      throw new RepoConfigError(`${repoPath}/config: ${(e as Error).message}`, { path: repoPath, cause: e });
    }
    const onDisk = kf.get('core', 'mode');
    const mode = (Object.keys(MODE_ON_DISK) as RepoMode[]).find((m) => MODE_ON_DISK[m] === onDisk || m === onDisk);
    if (!mode) throw new RepoConfigError(`${repoPath}/config: unsupported repository mode "${onDisk ?? ''}"`, { path: repoPath });
    if (kf.get('core', 'repo_version') !== '1') {
      throw new RepoConfigError(`${repoPath}/config: unsupported repo_version "${kf.get('core', 'repo_version') ?? ''}"`, { path: repoPath });
    }
    if (!fs.existsSync(path.join(repoPath, 'objects'))) {
      throw new RepoInvalidError(`${repoPath}: repository has no objects directory`, { path: repoPath });
    }
    return new Repo(repoPath, mode, kf);
  }

  saveConfig(): void {
    writeFileAtomic(path.join(this.path, 'config'), this.config.toString(), { durable: this.durable });
  }

  objectPath(csum: Checksum, type: ObjectType): string {
    return `${this.base}/${objectRelPath(csum, type, this.archive)}`;
  }

  hasObject(csum: Checksum, type: ObjectType): boolean {
    // no exception for the common "missing" answer: pull asks this once per object
    return fs.lstatSync(this.objectPath(csum, type), { throwIfNoEntry: false }) !== undefined;
  }

  /** Raw bytes of a metadata object; not verified (fsck and pull verify). */
  readMetadataBytes(csum: Checksum, type: ObjectType): Buffer {
    const p = this.objectPath(csum, type);
    let fd: number;
    try {
      fd = fs.openSync(p, 'r');
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new ObjectNotFoundError(`${type} object ${csum} is missing`, { object: csum, path: p });
      throw e;
    }
    try {
      // most metadata objects are a few hundred bytes: one read, and a second that finds the end,
      // cost less than fstat (whose Stats object builds four Dates)
      const n = fs.readSync(fd, scratch, 0, scratch.length, 0);
      if (n < scratch.length && fs.readSync(fd, scratch, n, 1, n) === 0) return Buffer.from(scratch.subarray(0, n));
      const size = fs.fstatSync(fd).size;
      if (size > MAX_METADATA_SIZE) throw new ObjectCorruptError(`${type} object ${csum} is too large (${size} bytes)`, { object: csum, path: p });
      return readAt(fd, 0, size);
    } finally {
      fs.closeSync(fd);
    }
  }

  private parseMeta<T>(csum: Checksum, type: ObjectType, parser: (b: Buffer) => T): T {
    const bytes = this.readMetadataBytes(csum, type);
    try {
      return parser(bytes);
    } catch (e) {
      if (e instanceof FormatError) {
        throw new ObjectCorruptError(`${type} object ${csum} is corrupt: ${e.message}`, { object: csum, cause: e });
      }
      throw e;
    }
  }

  // a commit was verified when it entered the repository: parsed without the normal-form pass
  loadCommit(csum: Checksum): Commit {
    return this.parseMeta(csum, 'commit', (b) => parseCommit(b, true));
  }

  // dirtrees and dirmetas have their own codecs, whose strict checks cost nothing extra
  loadDirtree(csum: Checksum): Dirtree {
    return this.parseMeta(csum, 'dirtree', (b) => parseDirtree(b));
  }

  loadDirmeta(csum: Checksum): FileMeta {
    return this.parseMeta(csum, 'dirmeta', (b) => parseDirmeta(b));
  }

  /** Detached metadata of a commit, or null when there is none. */
  loadCommitmeta(csum: Checksum): Metadata | null {
    if (!this.hasObject(csum, 'commitmeta')) return null;
    return this.parseMeta(csum, 'commitmeta', parseMetadata);
  }

  /** Whether state/<commit>.commitpartial marks the commit's tree as incomplete. */
  isCommitPartial(csum: Checksum): boolean {
    return fs.existsSync(path.join(this.path, 'state', `${csum}.commitpartial`));
  }

  /** Opens a content object in any mode. */
  openContent(csum: Checksum): ContentObject {
    const p = this.objectPath(csum, 'file');
    try {
      return this.archive ? openArchiveContent(p, csum) : openBareContent(p, csum, this.mode);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new ObjectNotFoundError(`file object ${csum} is missing`, { object: csum, path: p });
      if (e instanceof CairnError) throw e;
      if (e instanceof FormatError) throw new ObjectCorruptError(`file object ${csum} is corrupt: ${e.message}`, { object: csum, cause: e });
      throw e;
    }
  }

  /** Every loose object in the repo, by type, read from the objects/ directory. */
  *listObjects(): Generator<{ checksum: Checksum; type: ObjectType; path: string }> {
    const root = path.join(this.path, 'objects');
    for (const d of fs.readdirSync(root).sort()) {
      if (!/^[0-9a-f]{2}$/.test(d)) continue;
      for (const f of fs.readdirSync(path.join(root, d)).sort()) {
        const dot = f.indexOf('.');
        if (dot !== 62) continue;
        const csum = (d + f.slice(0, dot)) as Checksum;
        if (!/^[0-9a-f]{64}$/.test(csum)) continue;
        const ext = f.slice(dot + 1);
        const type: ObjectType | undefined =
          ext === 'filez' || ext === 'file' ? 'file'
          : (['dirtree', 'dirmeta', 'commit', 'tombstone-commit', 'commitmeta'] as const).find((t) => t === ext);
        if (type) yield { checksum: csum, type, path: path.join(root, d, f) };
      }
    }
  }
}

const HEADER_PROBE = 64 * 1024;

function openArchiveContent(p: string, csum: Checksum): ContentObject {
  const fd = fs.openSync(p, 'r');
  let probe: Buffer;
  try {
    const st = fs.fstatSync(fd);
    probe = Buffer.alloc(Math.min(st.size, HEADER_PROBE));
    fs.readSync(fd, probe, 0, probe.length, 0);
    if (probe.length >= 8) {
      const need = 8 + probe.readUInt32BE(0);
      if (need > probe.length && need <= st.size && need <= 1 << 20) {
        probe = Buffer.alloc(need);
        fs.readSync(fd, probe, 0, need, 0);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  const { header, size, headerLength } = parseArchiveHeader(probe);
  const corrupt = (e: unknown): ObjectCorruptError =>
    new ObjectCorruptError(`file object ${csum} is corrupt: ${(e as Error).message}`, { object: csum, path: p, cause: e });
  return {
    header, size, objectPath: p, hardlinkable: false,
    stream() {
      if ((header.mode & S_IFMT) === S_IFLNK) return Readable.from([]);
      const inflate = zlib.createInflateRaw();
      const src = fs.createReadStream(p, { start: headerLength });
      src.on('error', (e) => inflate.destroy(e));
      src.pipe(inflate);
      // wrap zlib errors so callers see one clear, typed error
      const out = new Readable({ read() {} });
      inflate.on('data', (c: Buffer) => out.push(c));
      inflate.on('end', () => out.push(null));
      inflate.on('error', (e) => out.destroy(corrupt(e)));
      return out;
    },
    async read() {
      if ((header.mode & S_IFMT) === S_IFLNK) return Buffer.alloc(0);
      const raw = await fs.promises.readFile(p);
      try {
        return await new Promise<Buffer>((res, rej) =>
          zlib.inflateRaw(raw.subarray(headerLength), sizedInflate(raw.length - headerLength, size), (e, b) => (e ? rej(e) : res(b))),
        );
      } catch (e) {
        throw corrupt(e);
      }
    },
  };
}

function openBareContent(p: string, csum: Checksum, mode: RepoMode): ContentObject {
  const { header, st, symlinkFromFile } = readBareHeader(p, csum, mode);
  const isLink = (header.mode & S_IFMT) === S_IFLNK;
  const size = isLink ? 0 : st.size;
  return {
    header, size, objectPath: p, hardlinkable: !isLink && !symlinkFromFile,
    stream() {
      return isLink ? Readable.from([]) : fs.createReadStream(p);
    },
    async read() {
      return isLink ? Buffer.alloc(0) : fs.promises.readFile(p);
    },
  };
}
