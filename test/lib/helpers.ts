/** Shared test helpers: temp dirs, running cairn and the real ostree, comparing trees. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import xattr from '@napi-rs/xattr';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CAIRN = path.join(ROOT, 'bin/cairn');

/** A fresh temporary directory, removed at process exit unless KEEP_TMP is set. */
export function tmpdir(prefix = 'cairn-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (!process.env.KEEP_TMP) process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function result(r: SpawnSyncReturns<string>): Run {
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function cairn(args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  return result(spawnSync(CAIRN, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts }));
}

export function ostree(args: string[], opts: { cwd?: string } = {}): Run {
  return result(spawnSync('ostree', args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts }));
}

/** Runs a command and throws with its stderr unless it exits 0; returns trimmed stdout. */
export function ok(r: Run, what = 'command'): string {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

export function sh(cmd: string, cwd?: string): string {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', cwd });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout;
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  content?: string;
  target?: string;
  xattrs?: Record<string, string>;
}

/** A tree as a map path -> entry (content hashed), for file-by-file comparison. */
export function snapshotTree(root: string, opts: { ownership?: boolean; xattrs?: boolean; stripSetid?: boolean } = {}): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (p: string, rel: string): void => {
    const st = fs.lstatSync(p);
    const base = { mode: st.mode & (opts.stripSetid ? 0o1777 : 0o7777), uid: opts.ownership === false ? 0 : st.uid, gid: opts.ownership === false ? 0 : st.gid };
    let xs: Record<string, string> | undefined;
    if (opts.xattrs && !st.isSymbolicLink()) {
      xs = {};
      for (const n of xattr.listAttributesSync(p).sort()) {
        if (n === 'user.ostreemeta') continue;
        const v = xattr.getAttributeSync(p, n);
        if (v && v.length) xs[n] = v.toString('hex');
      }
    }
    if (st.isSymbolicLink()) out.set(rel, { type: 'symlink', ...base, mode: 0o777, target: fs.readlinkSync(p) });
    else if (st.isFile()) out.set(rel, { type: 'file', ...base, content: createHash('sha256').update(fs.readFileSync(p)).digest('hex'), ...(xs ? { xattrs: xs } : {}) });
    else if (st.isDirectory()) {
      out.set(rel, { type: 'dir', ...base, ...(xs ? { xattrs: xs } : {}) });
      for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), rel === '/' ? `/${n}` : `${rel}/${n}`);
    }
  };
  walk(root, '/');
  return out;
}

/** Lists the differences between two snapshots (empty when identical). */
export function treeDiff(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>): string[] {
  const d: string[] = [];
  for (const [p, e] of a) {
    const f = b.get(p);
    if (!f) d.push(`only in first: ${p}`);
    else if (JSON.stringify(e) !== JSON.stringify(f)) d.push(`${p}: ${JSON.stringify(e)} != ${JSON.stringify(f)}`);
  }
  for (const p of b.keys()) if (!a.has(p)) d.push(`only in second: ${p}`);
  return d;
}
