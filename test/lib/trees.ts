/** Fixture trees with the awkward cases a real root filesystem has. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import xattr from '@napi-rs/xattr';

/** Deterministic pseudo-random bytes (so checksums are stable across runs). */
/** A seeded generator of numbers in [0, 1) (an LCG): a kill test's random points, reproducible by seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function pseudoRandom(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += 32) {
    block.copy(out, off, 0, Math.min(32, size - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export interface AwkwardOptions {
  /** Files in the one big directory (default 3000). */
  manyFiles?: number;
  /** Size of the large binary file in bytes (default 5 MiB). */
  bigFile?: number;
  /** Set user.* xattrs (default true). */
  xattrs?: boolean;
  /** chown some files to other users (default true; needs root). */
  owners?: boolean;
}

export function makeAwkwardTree(root: string, o: AwkwardOptions = {}): void {
  const w = (rel: string, data: string | Buffer, mode = 0o644): void => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    fs.chmodSync(p, mode);
  };
  fs.mkdirSync(root, { recursive: true });
  fs.chmodSync(root, 0o755);
  w('empty', '');
  fs.mkdirSync(path.join(root, 'empty-dir'));
  w('etc/hostname', 'cairn\n');
  w('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640);
  w('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  w('usr/bin/suid', 'setuid binary\n', 0o4755);
  w('usr/bin/sgid', 'setgid binary\n', 0o2755);
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  w('usr/share/readonly.txt', 'do not touch\n', 0o444);
  fs.mkdirSync(path.join(root, 'usr/share/ro-dir'), { recursive: true });
  w('usr/share/ro-dir/inside', 'inside a read-only dir\n');
  fs.chmodSync(path.join(root, 'usr/share/ro-dir'), 0o555);
  fs.symlinkSync('usr/bin', path.join(root, 'bin'));
  fs.symlinkSync('/usr/bin/tool', path.join(root, 'abs-link'));
  fs.symlinkSync('does/not/exist', path.join(root, 'dangling'));
  fs.symlinkSync('../..', path.join(root, 'usr/share/up'));
  w('usr/lib/hard-a', 'hardlinked content\n');
  fs.linkSync(path.join(root, 'usr/lib/hard-a'), path.join(root, 'usr/lib/hard-b'));
  w('names/ünïcödé – ☃.txt', 'non-ascii\n');
  w('names/with space/and more spaces .conf', 'spaces\n');
  w('names/Zupper', 'uppercase sorts first\n');
  w('names/-dash', 'leading dash\n');
  let deep = 'deep';
  for (let i = 0; i < 40; i++) deep += `/d${i}`;
  w(`${deep}/leaf`, 'deep leaf\n');
  const many = o.manyFiles ?? 3000;
  fs.mkdirSync(path.join(root, 'many'));
  for (let i = 0; i < many; i++) fs.writeFileSync(path.join(root, 'many', `f${i}`), `file number ${i % 500}\n`);
  w('usr/lib/big.bin', pseudoRandom(o.bigFile ?? 5 * 1024 * 1024, 'big'));
  w('usr/lib/zeros.bin', Buffer.alloc(2 * 1024 * 1024 + 17));
  if (o.owners ?? true) {
    fs.chownSync(path.join(root, 'etc/shadow'), 0, 42);
    fs.chownSync(path.join(root, 'usr/share/readonly.txt'), 1234, 5678);
    fs.lchownSync(path.join(root, 'dangling'), 1000, 1000);
    fs.chownSync(path.join(root, 'empty-dir'), 65534, 65534);
  }
  if (o.xattrs ?? true) {
    xattr.setAttributeSync(path.join(root, 'usr/bin/tool'), 'user.b', '2');
    xattr.setAttributeSync(path.join(root, 'usr/bin/tool'), 'user.a', '1');
    xattr.setAttributeSync(path.join(root, 'usr/bin/tool'), 'user.empty', '');
    xattr.setAttributeSync(path.join(root, 'etc'), 'user.dir-attr', 'on a directory');
    xattr.setAttributeSync(path.join(root, 'usr/lib/big.bin'), 'user.binary', Buffer.from([0, 1, 2, 255]));
  }
}
