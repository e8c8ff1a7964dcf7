/** `summary -u | --view`: write or show the repository summary. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { parseSummary } from '../../format/index.js';
import { parseType, printValue } from '../../format/index.js';
import type { Summary } from '../../format/index.js';
import { readSummary, updateSummary } from '../../repo/index.js';
import { formatDate, json, out } from '../render.js';
import { openRepo } from './repo.js';

function iso(ts: bigint): string {
  return new Date(Number(ts) * 1000).toISOString().replace(/\.\d+Z$/, '+00');
}

/** Text layout of `ostree summary --view`. */
export function summaryText(s: Summary): string {
  const lines: string[] = [];
  for (const r of s.refs) {
    lines.push(`* ${r.name}`, `    Latest Commit (${r.commitSize} bytes):`, `      ${r.commit}`);
    if (r.version !== null) lines.push(`    Version (ostree.commit.version): ${r.version}`);
    if (r.timestamp !== null) lines.push(`    Timestamp (ostree.commit.timestamp): ${iso(r.timestamp)}`);
    lines.push('');
  }
  // additional metadata in stored order, as ostree prints it
  for (const [k, v] of s.metadata) {
    if (k === 'ostree.summary.mode') lines.push(`Repository Mode (ostree.summary.mode): ${v.value as string}`);
    else if (k === 'ostree.summary.last-modified') lines.push(`Last-Modified (ostree.summary.last-modified): ${iso(s.lastModified ?? 0n)}`);
    else if (k === 'ostree.summary.tombstone-commits') lines.push(`Has Tombstone Commits (ostree.summary.tombstone-commits): ${v.value ? 'Yes' : 'No'}`);
    else if (k === 'ostree.static-deltas') lines.push(`Static Deltas (ostree.static-deltas): ${printValue(parseType(v.type), v.value).replace(/<\[0x/g, '<[byte 0x')}`);
    else lines.push(`${k}: ${printValue(parseType(v.type), v.value)}`);
  }
  return lines.join('\n');
}

export function summaryJson(s: Summary): unknown {
  return {
    refs: s.refs.map((r) => ({
      name: r.name, commit: r.commit, commitSize: r.commitSize,
      timestamp: r.timestamp === null ? null : Number(r.timestamp), version: r.version,
    })),
    mode: s.mode,
    lastModified: s.lastModified === null ? null : formatDate(s.lastModified),
    tombstoneCommits: s.tombstoneCommits,
    indexedDeltas: s.indexedDeltas,
    deltas: s.deltas.map((d) => ({ from: d.from, to: d.to, superblock: d.superblockChecksum })),
  };
}

export function registerSummaryCommands(program: Command): void {
  program
    .command('summary')
    .description('regenerate (-u) or show (--view) the repository summary file')
    .option('--repo <path>', 'repository path')
    .option('-u, --update', 'regenerate the summary from refs/heads and deltas/')
    .option('-v, --view', 'print the summary')
    .option('--json', 'print as JSON')
    .action((o: { repo?: string; update?: boolean; view?: boolean; json?: boolean }) => {
      const repo = openRepo(o);
      if (!o.update && !o.view) throw new UsageError('summary: give -u (update) or --view');
      if (o.update) {
        const r = updateSummary(repo);
        if (o.json && !o.view) json(r);
      }
      if (o.view) {
        const s = readSummary(repo);
        if (!s) throw new UsageError(`${repo.path}: no summary file (run summary -u)`);
        if (o.json) json(summaryJson(parseSummary(s.bytes)));
        else out(summaryText(s.summary));
      }
    });
}
