/**
 * Boot counting as systemd-boot implements the Boot Loader Specification
 * (https://uapi-group.org/specifications/specs/boot_loader_specification/#boot-counting):
 *
 *  - an entry file `NAME+LEFT[-DONE].conf` is on probation: before booting it the loader
 *    renames it to `NAME+(LEFT-1)-(DONE+1).conf`;
 *  - an entry with LEFT = 0 is "bad" and sorts after every other entry (it is still booted
 *    when nothing else is left);
 *  - after a successful boot `systemd-bless-boot` (here: `cairn admin bless`) renames it to
 *    `NAME.conf`; an entry without a counter is "good".
 *
 * systemd-boot's menu order (src/boot/efi/boot.c, boot_entry_compare): bad entries last; then
 * entries with a `sort-key` before those without, by sort-key ascending, then version
 * descending; then by id descending (version-aware); then more tries left first; then fewer
 * tries done first. The default entry is the first one. Pure.
 */
import { compareVersions } from './bls.js';

export interface EntryName {
  /** File name without the counter and the `.conf` suffix (systemd-boot's entry id). */
  readonly id: string;
  readonly triesLeft?: number;
  readonly triesDone?: number;
}

const NAME = /^(.+?)(?:\+(\d+)(?:-(\d+))?)?\.conf$/;

export function parseEntryFileName(fileName: string): EntryName | null {
  const m = NAME.exec(fileName);
  if (!m) return null;
  if (m[2] === undefined) return { id: m[1]! };
  return { id: m[1]!, triesLeft: Number(m[2]), triesDone: m[3] === undefined ? 0 : Number(m[3]) };
}

/** `ID.conf`, `ID+LEFT.conf` (fresh counter) or `ID+LEFT-DONE.conf`. */
export function formatEntryFileName(n: EntryName): string {
  if (n.triesLeft === undefined) return `${n.id}.conf`;
  if (!n.triesDone) return `${n.id}+${n.triesLeft}.conf`;
  return `${n.id}+${n.triesLeft}-${n.triesDone}.conf`;
}

/** True when the entry carries no counter (blessed, or counting never enabled). */
export function isBlessed(n: EntryName): boolean {
  return n.triesLeft === undefined;
}

export function isBad(n: EntryName): boolean {
  return n.triesLeft === 0;
}

export interface MenuEntry {
  readonly fileName: string;
  readonly sortKey?: string;
  readonly version?: string;
}

function key(e: MenuEntry): EntryName {
  return parseEntryFileName(e.fileName) ?? { id: e.fileName };
}

export function compareMenuEntries(a: MenuEntry, b: MenuEntry): number {
  const na = key(a);
  const nb = key(b);
  const bad = Number(isBad(na)) - Number(isBad(nb));
  if (bad !== 0) return bad;
  const sk = Number(a.sortKey === undefined) - Number(b.sortKey === undefined);
  if (sk !== 0) return sk;
  if (a.sortKey !== undefined && b.sortKey !== undefined) {
    if (a.sortKey !== b.sortKey) return a.sortKey < b.sortKey ? -1 : 1;
    const v = -compareVersions(a.version ?? '', b.version ?? '');
    if (v !== 0) return v;
  }
  const id = -compareVersions(na.id, nb.id);
  if (id !== 0) return id;
  if (na.triesLeft === undefined || nb.triesLeft === undefined) return 0;
  if (na.triesLeft !== nb.triesLeft) return nb.triesLeft - na.triesLeft;
  return (na.triesDone ?? 0) - (nb.triesDone ?? 0);
}

export function sortMenuEntries<T extends MenuEntry>(entries: readonly T[]): T[] {
  return [...entries].sort(compareMenuEntries);
}

export interface BootChoice<T extends MenuEntry> {
  readonly entry: T;
  /** The rename the loader performs before booting (counter decrement), if any. */
  readonly rename?: { readonly from: string; readonly to: string };
}

/** What systemd-boot boots with no menu interaction: the first entry, counted down. */
export function chooseBootEntry<T extends MenuEntry>(entries: readonly T[]): BootChoice<T> | null {
  const first = sortMenuEntries(entries)[0];
  if (!first) return null;
  const n = key(first);
  if (n.triesLeft === undefined || n.triesLeft === 0) return { entry: first };
  const to = formatEntryFileName({ id: n.id, triesLeft: n.triesLeft - 1, triesDone: (n.triesDone ?? 0) + 1 });
  return { entry: first, rename: { from: first.fileName, to } };
}

/** The name `systemd-bless-boot good` gives an entry. */
export function blessedFileName(fileName: string): string {
  const n = parseEntryFileName(fileName);
  return n ? formatEntryFileName({ id: n.id }) : fileName;
}

/** The name `systemd-bless-boot bad` gives an entry (no tries left). */
export function badFileName(fileName: string): string {
  const n = parseEntryFileName(fileName);
  if (!n || n.triesLeft === undefined) return fileName;
  return formatEntryFileName({ id: n.id, triesLeft: 0, triesDone: n.triesDone ?? 0 });
}
