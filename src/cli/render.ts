/** The only place that writes to stdout/stderr. */
import { type Commit, contentChecksum } from '../format/index.js';
import type { LsEntry } from '../repo/index.js';
import { commitVersion } from '../repo/index.js';

export function out(line: string): void {
  process.stdout.write(line + '\n');
}

export function err(line: string): void {
  process.stderr.write(line + '\n');
}

export function json(v: unknown): void {
  process.stdout.write(JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x), 2) + '\n');
}

export function formatDate(ts: bigint): string {
  const d = new Date(Number(ts) * 1000);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000');
}

/** One commit, in the layout of `ostree log` / `ostree show`. */
export function commitText(csum: string, c: Commit): string {
  const lines = [`commit ${csum}`];
  if (c.parent) lines.push(`Parent:  ${c.parent}`);
  lines.push(`ContentChecksum:  ${contentChecksum(c)}`);
  lines.push(`Date:  ${formatDate(c.timestamp)}`);
  const v = commitVersion(c);
  if (v) lines.push(`Version: ${v}`);
  lines.push('');
  if (c.subject) lines.push(`    ${c.subject}`, '');
  if (c.body) lines.push(...c.body.split('\n').map((l) => `    ${l}`), '');
  return lines.join('\n');
}

export function commitJson(csum: string, c: Commit): Record<string, unknown> {
  return {
    checksum: csum,
    contentChecksum: contentChecksum(c),
    parent: c.parent,
    subject: c.subject,
    body: c.body,
    timestamp: Number(c.timestamp),
    date: new Date(Number(c.timestamp) * 1000).toISOString(),
    version: commitVersion(c) ?? null,
    rootTree: c.rootTree,
    rootMeta: c.rootMeta,
    metadata: Object.fromEntries(c.metadata.map(([k, v]) => [k, v.value])),
  };
}

/** `ostree ls` line: type char, 0 + 4 octal digits, uid, gid, size, path [-> target]. */
export function lsLine(e: LsEntry, withChecksum: boolean): string {
  const t = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : '-';
  const mode = (e.mode & 0o7777).toString(8).padStart(5, '0');
  const csum = withChecksum ? ` ${e.type === 'dir' ? `${e.checksum} ${e.metaChecksum}` : e.checksum}` : '';
  return `${t}${mode} ${e.uid} ${e.gid} ${String(e.size).padStart(6)}${csum} ${e.path}${e.target !== undefined ? ` -> ${e.target}` : ''}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
