/**
 * `checkout`: a commit's tree written out as files. From bare and bare-user repos regular
 * files are hardlinked to their objects (as ostree does); from archive repos they are inflated.
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { type Checksum, type FileMeta, S_IFLNK, S_IFMT } from '../format/index.js';
import { CairnError, CheckoutError, ObjectNotFoundError, noSpace } from '../errors.js';
import { isErrno } from './fsutil.js';
import { UMASK, applyOwnerAndXattrs } from './object-files.js';
import { runObjectJob } from './writer-pool.js';
import { resolveRev } from './refs.js';
import type { Repo } from './repo.js';
import { SMALL_FILE } from './staging.js';

export interface CheckoutOptions {
  /** -U: ignore ownership and xattrs, drop setuid/setgid (for unprivileged users). */
  userMode?: boolean;
  /** Check out only this path inside the commit (a directory or a file). */
  subpath?: string;
  /** Never hardlink, always copy. */
  noHardlinks?: boolean;
}

export interface CheckoutResult {
  commit: Checksum;
  files: number;
  hardlinked: number;
}

const EUID = process.geteuid?.() ?? -1;
const EGID = process.getegid?.() ?? -1;

export async function checkout(repo: Repo, rev: string, dest: string, opts: CheckoutOptions = {}): Promise<CheckoutResult> {
  const commit = resolveRev(repo, rev)!;
  const c = repo.loadCommit(commit);
  if (fs.existsSync(dest) && !(fs.statSync(dest).isDirectory() && fs.readdirSync(dest).length === 0)) {
    throw new CheckoutError(`${dest}: destination exists and is not an empty directory`, { path: dest });
  }
  const w = new Writer(repo, opts);
  let tree = c.rootTree;
  let meta = c.rootMeta;
  const parts = (opts.subpath ?? '/').split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const t = repo.loadDirtree(tree);
    const d = t.dirs.find((x) => x.name === parts[i]);
    if (d) {
      tree = d.tree;
      meta = d.meta;
      continue;
    }
    const f = t.files.find((x) => x.name === parts[i]);
    if (f && i === parts.length - 1) {
      await w.file(f.checksum, dest);
      return { commit, files: w.files, hardlinked: w.hardlinked };
    }
    throw new CheckoutError(`${opts.subpath}: no such path in commit ${commit}`, { path: opts.subpath ?? '', object: commit });
  }
  try {
    await w.dir(tree, meta, dest);
    await w.finish();
  } catch (e) {
    if (e instanceof CairnError) throw e;
    const full = noSpace(e, `checkout to ${dest} failed`, dest);
    if (full !== e) throw full;
    throw new CheckoutError(`checkout to ${dest} failed: ${(e as Error).message}`, { path: dest, cause: e });
  }
  return { commit, files: w.files, hardlinked: w.hardlinked };
}

class Writer {
  files = 0;
  hardlinked = 0;
  private readonly inflight: Promise<void>[] = [];
  private readonly canLink: boolean;

  constructor(
    private readonly repo: Repo,
    private readonly opts: CheckoutOptions,
  ) {
    this.canLink = !opts.noHardlinks && (repo.mode === 'bare' || repo.mode === 'bare-user-only' || (repo.mode === 'bare-user' && !!opts.userMode));
  }

  /** Lane of the directory being written: all its files go to one worker (see staging.ts). */
  private lane = 0;
  private dirsSeen = 0;

  async drain(): Promise<void> {
    while (this.inflight.length > 0) await this.inflight.shift();
  }

  /** A root filesystem has ~1,000 directories but a few dozen distinct dirmeta objects. */
  private readonly metaCache = new Map<Checksum, FileMeta>();

  /**
   * Directory metadata still to apply, deepest first, once every child exists. Directories that
   * mkdir could create with their final mode, owner and no xattrs need nothing more (most of a
   * root filesystem: 0755 root:root), which saves two path-based calls per directory.
   */
  private readonly dirMetas: [string, FileMeta][] = [];

  /** `inOurs`: the parent is a directory this checkout created (so it has no setgid bit to pass on). */
  async dir(tree: Checksum, metaCsum: Checksum, dest: string, inOurs = false): Promise<void> {
    const t = this.repo.loadDirtree(tree);
    let meta = this.metaCache.get(metaCsum);
    if (!meta) this.metaCache.set(metaCsum, (meta = this.repo.loadDirmeta(metaCsum)));
    const final = this.dirMode(meta);
    // created with its final mode only when that leaves this process free to fill it and the umask keeps every bit
    const direct = inOurs && (final & 0o7700) === 0o700 && (final & UMASK) === 0 &&
      (this.opts.userMode || (meta.uid === EUID && meta.gid === EGID && meta.xattrs.length === 0));
    let created = true;
    try {
      fs.mkdirSync(dest, { mode: direct ? final : 0o700 });
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
      created = false;
    }
    if (!created || !direct) this.dirMetas.push([dest, meta]);
    this.lane = this.dirsSeen++;
    for (const f of t.files) {
      const target = `${dest}/${f.name}`; // names are validated single components
      if (this.linkBare(f.checksum, target)) continue;
      const p = this.file(f.checksum, target);
      p.catch(() => {}); // surfaced when awaited
      this.inflight.push(p);
      // a window, not a barrier: the workers never run dry while this thread walks on
      if (this.inflight.length >= 512) await this.inflight.shift();
    }
    for (const d of t.dirs) await this.dir(d.tree, d.meta, `${dest}/${d.name}`, created);
  }

  /** Waits for every file, then gives directories their mode, owner and xattrs. */
  async finish(): Promise<void> {
    await this.drain();
    for (let i = this.dirMetas.length - 1; i >= 0; i--) this.applyMeta(this.dirMetas[i]![0], this.dirMetas[i]![1], false);
  }

  private dirMode(m: FileMeta): number {
    return this.opts.userMode ? m.mode & 0o1777 : m.mode & 0o7777;
  }

  private applyMeta(p: string, m: FileMeta, isLink: boolean): void {
    if (!this.opts.userMode) applyOwnerAndXattrs(p, m);
    if (!isLink) fs.chmodSync(p, this.dirMode(m));
  }

  /**
   * Fast path for bare repos: the object (regular file or symlink) already carries the file's
   * metadata, so one link(2) is the whole checkout of it, as in ostree. Synchronous on purpose:
   * on the thread pool, links contend with mkdir for the same directory locks. Returns false
   * when the caller must copy instead (other filesystem, link limit).
   */
  private linkBare(csum: Checksum, dest: string): boolean {
    if (!this.canLink || this.repo.mode !== 'bare') return false;
    const p = this.repo.objectPath(csum, 'file');
    try {
      fs.linkSync(p, dest);
    } catch (e) {
      if (isErrno(e, 'ENOENT') && !fs.existsSync(p)) throw new ObjectNotFoundError(`file object ${csum} is missing`, { object: csum, path: p });
      if (isErrno(e, 'EXDEV') || isErrno(e, 'EMLINK') || isErrno(e, 'EPERM')) return false;
      throw e;
    }
    this.files++;
    this.hardlinked++;
    return true;
  }

  async file(csum: Checksum, dest: string): Promise<void> {
    this.files++;
    if (this.repo.archive) {
      const p = this.repo.objectPath(csum, 'file');
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (!st) throw new ObjectNotFoundError(`file object ${csum} is missing`, { object: csum, path: p });
      // small ones are inflated and written on a writer-pool worker, one lane per directory
      if (st.size <= SMALL_FILE) {
        await runObjectJob({ op: 'checkout-filez', src: p, dest, csum, userMode: !!this.opts.userMode }, this.lane);
        return;
      }
    }
    const obj = this.repo.openContent(csum);
    const h = obj.header;
    if ((h.mode & S_IFMT) === S_IFLNK) {
      fs.symlinkSync(h.symlinkTarget, dest);
      this.applyMeta(dest, h, true);
      return;
    }
    if (this.canLink && obj.hardlinkable) {
      try {
        fs.linkSync(obj.objectPath, dest);
        this.hardlinked++;
        return;
      } catch (e) {
        // EXDEV (other filesystem) or EMLINK: fall back to a copy
        if (!isErrno(e, 'EXDEV') && !isErrno(e, 'EMLINK') && !isErrno(e, 'EPERM')) throw e;
      }
    }
    if (!this.repo.archive) fs.copyFileSync(obj.objectPath, dest, fs.constants.COPYFILE_EXCL);
    else if (obj.size <= SMALL_FILE) fs.writeFileSync(dest, await obj.read(), { flag: 'wx', mode: 0o600 });
    else await pipeline(obj.stream(), fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
    this.applyMeta(dest, h, false);
  }
}
