/** Small filesystem helpers shared by the repo layer: atomic writes, fsync, xattrs. */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import xattr from '@napi-rs/xattr';
import type { Xattr } from '../format/index.js';
import { IoError } from '../errors.js';

export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `data` to `dest` atomically: temp file beside it, fsync (if durable), rename, fsync dir. */
export function writeFileAtomic(dest: string, data: string | Uint8Array, opts: { durable: boolean; mode?: number }): void {
  const dir = path.dirname(dest);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.tmp-${path.basename(dest)}-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', opts.mode ?? 0o644);
  try {
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (opts.durable) fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, dest);
  if (opts.durable) fsyncPath(dir);
}

/**
 * Flushes the whole filesystem holding `p` (syncfs(2), via coreutils `sync -f`): one call
 * instead of an fsync per object, as ostree does at the end of a transaction.
 */
export function syncFilesystem(p: string): void {
  execFileSync('sync', ['-f', p], { stdio: 'ignore' });
}

/** syncFilesystem without blocking this thread (a pull keeps fetching while a batch is flushed). */
export function syncFilesystemAsync(p: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', p], (e) => (e ? reject(new IoError(`sync -f ${p} failed: ${e.message}`, { path: p, cause: e })) : resolve()));
  });
}

/** Reads all xattrs of a path without following symlinks, canonicalised by the caller. */
export function readXattrs(p: string): Xattr[] {
  let names: string[];
  try {
    names = xattr.listAttributesSync(p);
  } catch (e) {
    if ((e as Error).message.includes('not supported')) return [];
    throw e;
  }
  const out: Xattr[] = [];
  for (const name of names) {
    const value = xattr.getAttributeSync(p, name);
    if (value) out.push({ name, value });
  }
  return out;
}

export function setXattr(p: string, name: string, value: Uint8Array): void {
  xattr.setAttributeSync(p, name, value);
}

export function getXattr(p: string, name: string): Buffer | null {
  return xattr.getAttributeSync(p, name);
}

/** Up to `len` bytes of the open file `fd` from `pos`: fewer only where the file ends first. */
export function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, b, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got === len ? b : b.subarray(0, got);
}

/** A file's bytes, or null when it does not exist. */
export function readFileIfExists(p: string): Buffer | null {
  try {
    return fs.readFileSync(p);
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
}

export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as NodeJS.ErrnoException).code === code;
}
