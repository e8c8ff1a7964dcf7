/**
 * GRUB's environment block (`grubenv`): exactly 1024 bytes, "# GRUB Environment Block\n", then
 * `key=value` lines, padded with '#'. And the boot counter GRUB keeps in it (Fedora's
 * 08_fallback_counting / greenboot scheme): while `boot_success=0` and `boot_counter` is set,
 * every boot decrements the counter; at 0 (or -1) GRUB boots entry 1 — the rollback — and
 * sets the counter to -1. A good boot sets `boot_success=1`. Pure.
 */
import { FormatError } from '../errors.js';

export const GRUBENV_SIZE = 1024;
const HEADER = '# GRUB Environment Block\n';

export function parseGrubenv(b: Uint8Array): Map<string, string> {
  const text = Buffer.from(b).toString('utf8');
  if (!text.startsWith(HEADER)) throw new FormatError('grubenv: missing "# GRUB Environment Block" header');
  const env = new Map<string, string>();
  for (const line of text.slice(HEADER.length).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    if (i > 0) env.set(line.slice(0, i), line.slice(i + 1));
  }
  return env;
}

export function serializeGrubenv(env: ReadonlyMap<string, string>): Buffer {
  let body = HEADER;
  for (const [k, v] of env) body += `${k}=${v}\n`;
  if (Buffer.byteLength(body) > GRUBENV_SIZE) throw new FormatError('grubenv: variables do not fit in 1024 bytes');
  return Buffer.concat([Buffer.from(body), Buffer.alloc(GRUBENV_SIZE - Buffer.byteLength(body), '#')]);
}

/** Arms the counter for a new default entry. */
export function armCounter(env: ReadonlyMap<string, string>, tries: number): Map<string, string> {
  const out = new Map(env);
  out.set('boot_success', '0');
  out.set('boot_counter', String(tries));
  return out;
}

/** What a good boot does (greenboot / `cairn admin bless`). */
export function blessEnv(env: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map(env);
  out.set('boot_success', '1');
  out.delete('boot_counter');
  return out;
}

/** One boot as GRUB's fallback-counting script runs it: the entry index booted and the new env. */
export function grubBoot(env: ReadonlyMap<string, string>): { index: number; env: Map<string, string> } {
  const out = new Map(env);
  const counter = env.get('boot_counter');
  if (counter === undefined || env.get('boot_success') !== '0') return { index: 0, env: out };
  if (counter === '0' || counter === '-1') {
    out.set('boot_counter', '-1');
    return { index: 1, env: out };
  }
  out.set('boot_counter', String(Number(counter) - 1));
  return { index: 0, env: out };
}

/** Tries left for the default entry, or null when no counter is armed. */
export function grubTriesLeft(env: ReadonlyMap<string, string>): number | null {
  const c = env.get('boot_counter');
  if (c === undefined || env.get('boot_success') !== '0') return null;
  return Math.max(0, Number(c));
}
