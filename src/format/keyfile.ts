/**
 * GKeyFile (INI) as ostree uses it for repo config, remotes and deployment origins.
 * Keeps group and key order and comments so that a round trip changes only what was set.
 * Pure.
 */
import { FormatError } from '../errors.js';

type Line = { kind: 'raw'; text: string } | { kind: 'kv'; key: string; value: string };
interface Group {
  name: string;
  lines: Line[];
}

export class KeyFile {
  private readonly head: Line[] = [];
  private readonly groups: Group[] = [];

  static parse(text: string): KeyFile {
    const kf = new KeyFile();
    let cur: Line[] = kf.head;
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/\r$/, '');
      const t = line.trim();
      if (t === '' || t.startsWith('#')) {
        cur.push({ kind: 'raw', text: line });
      } else if (t.startsWith('[')) {
        if (!t.endsWith(']')) throw new FormatError(`key file line ${i + 1}: unterminated group header`);
        const g: Group = { name: t.slice(1, -1), lines: [] };
        kf.groups.push(g);
        cur = g.lines;
      } else {
        const eq = line.indexOf('=');
        if (eq <= 0 || cur === kf.head) throw new FormatError(`key file line ${i + 1}: expected "key=value" inside a group`);
        cur.push({ kind: 'kv', key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trimStart() });
      }
    });
    // drop the empty line produced by a trailing newline
    const last = kf.groups.at(-1)?.lines ?? kf.head;
    if (last.at(-1)?.kind === 'raw' && (last.at(-1) as { text: string }).text === '') last.pop();
    return kf;
  }

  groupNames(): string[] {
    return this.groups.map((g) => g.name);
  }

  hasGroup(group: string): boolean {
    return this.groups.some((g) => g.name === group);
  }

  keys(group: string): string[] {
    const g = this.groups.find((x) => x.name === group);
    return g ? g.lines.flatMap((l) => (l.kind === 'kv' ? [l.key] : [])) : [];
  }

  get(group: string, key: string): string | undefined {
    const g = this.groups.find((x) => x.name === group);
    const l = g?.lines.find((x) => x.kind === 'kv' && x.key === key);
    return l && l.kind === 'kv' ? unescape(l.value) : undefined;
  }

  getBoolean(group: string, key: string, dflt: boolean): boolean {
    const v = this.get(group, key);
    if (v === undefined) return dflt;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new FormatError(`[${group}] ${key}: "${v}" is not a boolean`);
  }

  set(group: string, key: string, value: string): void {
    let g = this.groups.find((x) => x.name === group);
    if (!g) {
      g = { name: group, lines: [] };
      this.groups.push(g);
    }
    const l = g.lines.find((x) => x.kind === 'kv' && x.key === key);
    if (l && l.kind === 'kv') l.value = escape(value);
    else {
      // insert after the last key, before trailing blank lines
      let at = g.lines.length;
      while (at > 0 && g.lines[at - 1]!.kind === 'raw') at--;
      g.lines.splice(at, 0, { kind: 'kv', key, value: escape(value) });
    }
  }

  remove(group: string, key?: string): void {
    const gi = this.groups.findIndex((x) => x.name === group);
    if (gi < 0) return;
    if (key === undefined) this.groups.splice(gi, 1);
    else {
      const g = this.groups[gi]!;
      g.lines = g.lines.filter((l) => !(l.kind === 'kv' && l.key === key));
    }
  }

  toString(): string {
    const out: string[] = this.head.map((l) => (l.kind === 'raw' ? l.text : `${l.key}=${l.value}`));
    this.groups.forEach((g, i) => {
      if (i > 0 && out.length > 0 && out.at(-1) !== '') out.push('');
      out.push(`[${g.name}]`);
      for (const l of g.lines) out.push(l.kind === 'raw' ? l.text : `${l.key}=${l.value}`);
    });
    return out.join('\n') + '\n';
  }
}

function unescape(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t', r: '\r', s: ' ', '\\': '\\' })[c] ?? `\\${c}`);
}

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t').replace(/\r/g, '\\r').replace(/^ /, '\\s');
}
