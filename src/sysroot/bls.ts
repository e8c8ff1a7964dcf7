/**
 * Boot Loader Specification type #1 entries (`/boot/loader/entries/*.conf`) as ostree writes
 * them: `key value` lines. Keys are kept in file order so a rewrite changes only what was set.
 * Pure.
 */
export interface BlsEntry {
  /** Keys in order; a key may repeat (e.g. several `initrd` lines). */
  readonly lines: readonly (readonly [string, string])[];
}

export function parseBlsEntry(text: string): BlsEntry {
  const lines: [string, string][] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line);
    if (m) lines.push([m[1]!, m[2]!]);
  }
  return { lines };
}

export function blsGet(e: BlsEntry, key: string): string | undefined {
  return e.lines.find(([k]) => k === key)?.[1];
}

/** Sets a key (replacing every line with that key at the first one's position). */
export function blsSet(e: BlsEntry, key: string, value: string): BlsEntry {
  const out: [string, string][] = [];
  let done = false;
  for (const [k, v] of e.lines) {
    if (k !== key) out.push([k, v]);
    else if (!done) {
      out.push([k, value]);
      done = true;
    }
  }
  if (!done) out.push([key, value]);
  return { lines: out };
}

export function blsDelete(e: BlsEntry, key: string): BlsEntry {
  return { lines: e.lines.filter(([k]) => k !== key) };
}

export function serializeBlsEntry(e: BlsEntry): string {
  return e.lines.map(([k, v]) => `${k} ${v}`).join('\n') + '\n';
}

/**
 * Version comparison in the spirit of strverscmp(3) (ostree sorts entries by `version` with it;
 * systemd-boot sorts ids with its own variant): runs of digits compare numerically, the rest
 * byte-wise. Returns <0, 0, >0.
 */
export function compareVersions(a: string, b: string): number {
  const ra = a.match(/\d+|\D+/g) ?? [];
  const rb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ra.length, rb.length); i++) {
    const x = ra[i]!;
    const y = rb[i]!;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
      if (x.length !== y.length) return x.length < y.length ? 1 : -1;
    } else if (x !== y) return x < y ? -1 : 1;
  }
  return ra.length - rb.length;
}
