/**
 * Filesystem primitives of the sysroot layer: durable writes (temp file, fsync, rename, fsync
 * the directory), atomic symlink swaps, syncfs, the immutable attribute and tree copies for /etc.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncPath, isErrno, writeFileAtomic } from '../repo/index.js';

// the same durable-write primitives as the repo layer, one implementation
export { fsyncPath, isErrno } from '../repo/index.js';

function tmpName(dest: string): string {
  return path.join(path.dirname(dest), `.tmp-${path.basename(dest)}-${randomBytes(5).toString('hex')}`);
}

/** Writes `data` to `dest`: temp file beside it, fsync, rename, fsync the directory. */
export function writeFileDurable(dest: string, data: string | Uint8Array, durable: boolean, mode = 0o644): void {
  writeFileAtomic(dest, data, { durable, mode });
}

/** Copies a file to `dest` the same way (the name appears only once the bytes are on disk). */
export function copyFileDurable(src: string, dest: string, durable: boolean): void {
  const tmp = tmpName(dest);
  fs.copyFileSync(src, tmp, fs.constants.COPYFILE_EXCL);
  fs.chmodSync(tmp, 0o644);
  if (durable) fsyncPath(tmp);
  fs.renameSync(tmp, dest);
  if (durable) fsyncPath(path.dirname(dest));
}

/** Points `link` at `target` in one rename (a temporary symlink renamed over the old one). */
export function swapSymlink(target: string, link: string, durable: boolean): void {
  const tmp = tmpName(link);
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, link);
  if (durable) fsyncPath(path.dirname(link));
}

export function readlinkOrNull(p: string): string | null {
  try {
    return fs.readlinkSync(p);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    if (isErrno(e, 'EINVAL')) return null;
    throw e;
  }
}

/** syncfs(2) of the filesystem holding `p` (coreutils `sync -f`). */
export function syncFilesystem(p: string): void {
  execFileSync('sync', ['-f', p], { stdio: 'ignore' });
}

/** Sets or clears the immutable attribute (chattr ±i); silently skipped where unsupported. */
export function setImmutable(p: string, on: boolean): void {
  try {
    execFileSync('chattr', [on ? '+i' : '-i', p], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const msg = String((e as { stderr?: Buffer }).stderr ?? '');
    // tmpfs, overlayfs and others: ostree ignores EOPNOTSUPP the same way
    if (/not supported|Inappropriate ioctl|Operation not permitted/i.test(msg)) return;
    if (isErrno(e, 'ENOENT')) return; // no chattr binary
    throw e;
  }
}

/**
 * Removes a tree, clearing the immutable attribute of its root first (always: the tree may
 * have been made immutable by an earlier run or by ostree, whatever the current options say).
 */
export function removeTree(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return;
    throw e;
  }
  if (st.isDirectory()) setImmutable(p, false);
  fs.rmSync(p, { recursive: true, force: true });
}

/** Copies one node (file, symlink or whole directory) with mode and ownership, replacing `dest`. */
export function copyNode(src: string, dest: string): void {
  const st = fs.lstatSync(src);
  fs.rmSync(dest, { recursive: true, force: true });
  if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(src), dest);
    fs.lchownSync(dest, st.uid, st.gid);
  } else if (st.isDirectory()) {
    fs.mkdirSync(dest, { mode: 0o700 });
    for (const n of fs.readdirSync(src)) copyNode(path.join(src, n), path.join(dest, n));
    fs.lchownSync(dest, st.uid, st.gid);
    fs.chmodSync(dest, st.mode & 0o7777);
  } else if (st.isFile()) {
    fs.copyFileSync(src, dest);
    fs.lchownSync(dest, st.uid, st.gid);
    fs.chmodSync(dest, st.mode & 0o7777);
  }
}

/** Sum of the sizes of the regular files under `dir` (0 when it does not exist). */
export function treeBytes(dir: string): number {
  let total = 0;
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
    else if (st.isFile()) total += st.size;
  };
  walk(dir);
  return total;
}
