/** `cairn static-delta generate|list|show|delete|apply-offline|export`: option schemas, one library call each. */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { type Checksum } from '../../format/index.js';
import { UsageError } from '../../errors.js';
import { resolveRev, type Repo } from '../../repo/index.js';
import { readKeysFile } from '../../repo/index.js';
import {
  applyDeltaOffline, deleteDelta, exportDelta, findDelta, generateStaticDelta, isSignedSuperblock, listDeltas, parseDeltaName,
  parseSuperblock, superblockCommitmeta,
} from '../../delta/index.js';
import { err, formatBytes, json, out } from '../render.js';
import { openRepo } from './repo.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function megabytes(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) === 0) throw new UsageError(`${name}: "${v}" is not a positive number of megabytes`);
    return Number(v) * 1024 * 1024;
  };
}

interface RangeOpts {
  repo?: string;
  from?: string;
  to?: string;
  empty?: boolean;
}

function range(repo: Repo, o: RangeOpts): { from: Checksum | null; to: Checksum } {
  if (!o.to) throw new UsageError('--to=REV is required');
  if (o.empty && o.from) throw new UsageError('--empty and --from cannot be used together');
  const to = resolveRev(repo, o.to)!;
  if (o.empty) return { from: null, to };
  const from = o.from ? resolveRev(repo, o.from)! : resolveRev(repo, `${to}^`)!;
  return { from, to };
}

function deltaArg(name: string): { from: Checksum | null; to: Checksum } {
  try {
    return parseDeltaName(name);
  } catch {
    throw new UsageError(`"${name}" is not a delta name (FROM-TO or TO, in hex; see 'static-delta list')`);
  }
}

function keysFrom(keys: string[] | undefined, keysFile: string | undefined): string[] {
  return [...(keys ?? []), ...(keysFile ? readKeysFile(keysFile) : [])];
}

const progress = (quiet: boolean | undefined) => (e: { phase: string; done?: number; index?: number; total: number }): void => {
  if (!quiet && process.stderr.isTTY) process.stderr.write(`\r${e.phase} ${(e.done ?? e.index ?? 0) + 1}/${e.total}   `);
};

export function registerStaticDeltaCommands(program: Command): void {
  const sd = program.command('static-delta').description('generate, list, show, delete, export and apply static deltas');

  sd.command('generate')
    .description('generate a static delta between two commits (or from scratch with --empty)')
    .option('--repo <path>', 'repository path')
    .option('--from <rev>', 'from-commit (default: the parent of --to)')
    .option('--to <rev>', 'to-commit')
    .option('--empty', 'generate a from-scratch delta')
    .option('--inline', 'store the parts inside the superblock')
    .option('--max-chunk-size <MB>', 'maximum uncompressed size of a part (default 32)', megabytes('--max-chunk-size'))
    .option('--min-fallback-size <MB>', 'new files larger than this without a diff become fallbacks (default 4)', megabytes('--min-fallback-size'))
    .option('--max-bsdiff-size <MB>', 'skip bsdiff when old+new exceed this (default 128)', megabytes('--max-bsdiff-size'))
    .option('--disable-bsdiff', 'never use bsdiff')
    .option('--sign <key>', 'sign the superblock with this ed25519 secret key (base64)', collect)
    .option('--sign-type <type>', 'signature type (only ed25519)', 'ed25519')
    .option('--keys-file <path>', 'read secret keys for --sign from a file, one per line')
    .option('--json', 'print the result as JSON')
    .action(async (o: RangeOpts & {
      inline?: boolean; maxChunkSize?: number; minFallbackSize?: number; maxBsdiffSize?: number; disableBsdiff?: boolean;
      sign?: string[]; signType: string; keysFile?: string; json?: boolean;
    }) => {
      const repo = openRepo(o);
      if (o.signType !== 'ed25519') throw new UsageError(`--sign-type: only ed25519 is supported, not "${o.signType}"`);
      const { from, to } = range(repo, o);
      const signKeys = keysFrom(o.sign, o.keysFile);
      const r = await generateStaticDelta(repo, {
        from, to, inline: !!o.inline, disableBsdiff: !!o.disableBsdiff, signKeys,
        ...(o.maxChunkSize ? { maxChunkSize: o.maxChunkSize } : {}),
        ...(o.minFallbackSize ? { minFallbackSize: o.minFallbackSize } : {}),
        ...(o.maxBsdiffSize ? { maxBsdiffSize: o.maxBsdiffSize } : {}),
        onProgress: progress(o.json),
      });
      if (process.stderr.isTTY && !o.json) process.stderr.write('\n');
      const name = from ? `${from}-${to}` : to;
      if (o.json) json({ name, from, to, dir: r.dir, partCount: r.parts.length, ...r.stats });
      else {
        out(`Generated static delta ${name}`);
        out(`  ${r.stats.newMetadata} metadata and ${r.stats.newContent} content objects, ${r.stats.bsdiff} bsdiff, ${r.fallbacks.length} fallback(s)`);
        out(`  size ${formatBytes(r.stats.totalSize)} (superblock and parts)${r.stats.fallbackSize ? ` + ${formatBytes(r.stats.fallbackSize)} fallbacks` : ''}`);
      }
    });

  sd.command('list')
    .description('list the static deltas in a repository')
    .option('--repo <path>', 'repository path')
    .option('--json', 'print as JSON')
    .action((o: { repo?: string; json?: boolean }) => {
      const ds = listDeltas(openRepo(o));
      if (o.json) json(ds.map((d) => ({ name: d.name, from: d.from, to: d.to })));
      else if (ds.length === 0) out('(No static deltas)');
      else for (const d of ds) out(d.name);
    });

  sd.command('show')
    .description('describe one static delta')
    .argument('<delta>', 'delta name: FROM-TO or TO (hex)')
    .option('--repo <path>', 'repository path')
    .option('--json', 'print as JSON')
    .action((name: string, o: { repo?: string; json?: boolean }) => {
      const repo = openRepo(o);
      const { from, to } = deltaArg(name);
      const d = findDelta(repo, from, to);
      const raw = fs.readFileSync(`${d.dir}/superblock`);
      const sb = parseSuperblock(raw);
      const info = {
        name: d.name, from: sb.from, to: sb.to, timestamp: Number(sb.timestamp), signed: isSignedSuperblock(raw),
        commitmeta: superblockCommitmeta(sb) !== null,
        parts: sb.parts.map((p) => ({ checksum: p.checksum, size: p.size, usize: p.usize, objects: p.objects.length })),
        fallbacks: sb.fallbacks.map((f) => ({ checksum: f.checksum, size: f.size, usize: f.usize })),
      };
      if (o.json) {
        json(info);
        return;
      }
      out(`Delta: ${info.name}`);
      out(`From: ${sb.from ?? 'empty'}`);
      out(`To: ${sb.to}`);
      out(`Timestamp: ${new Date(info.timestamp * 1000).toISOString()}`);
      out(`Signed: ${info.signed ? 'yes' : 'no'}`);
      out(`Detached metadata: ${info.commitmeta ? 'yes' : 'no'}`);
      out(`Number of parts: ${info.parts.length}`);
      out(`Number of fallback entries: ${info.fallbacks.length}`);
      const size = info.parts.reduce((n, p) => n + p.size, 0);
      const usize = info.parts.reduce((n, p) => n + p.usize, 0);
      out(`Total Part Size: ${formatBytes(size)}`);
      out(`Total Uncompressed Part Size: ${formatBytes(usize)}`);
      info.parts.forEach((p, i) => out(`PartMeta${i}: nobjects=${p.objects} size=${p.size} usize=${p.usize}`));
      for (const f of info.fallbacks) out(`Fallback: ${f.checksum} size=${f.size} usize=${f.usize}`);
    });

  sd.command('delete')
    .description('delete a static delta')
    .argument('<delta>', 'delta name: FROM-TO or TO (hex)')
    .option('--repo <path>', 'repository path')
    .action((name: string, o: { repo?: string }) => {
      const repo = openRepo(o);
      const { from, to } = deltaArg(name);
      deleteDelta(repo, from, to);
    });

  sd.command('apply-offline')
    .description('apply a static delta directory, superblock path or update bundle with no network')
    .argument('<path>', 'delta directory, its superblock, or a file made by static-delta export')
    .option('--repo <path>', 'repository path')
    .option('--ref <ref>', 'point REF at the delta\'s to-commit afterwards')
    .option('--sign-verify <key>', 'require a signature from this ed25519 public key (base64)', collect)
    .option('--keys-file <path>', 'trusted ed25519 public keys, one per line')
    .option('--revoked-keys-file <path>', 'revoked ed25519 public keys, one per line')
    .option('--json', 'print the result as JSON')
    .action(async (p: string, o: { repo?: string; ref?: string; signVerify?: string[]; keysFile?: string; revokedKeysFile?: string; json?: boolean }) => {
      const repo = openRepo(o);
      const verifyKeys = keysFrom(o.signVerify, o.keysFile);
      const r = await applyDeltaOffline(repo, p, {
        ...(o.ref ? { ref: o.ref } : {}),
        ...(verifyKeys.length ? { verifyKeys } : {}),
        ...(o.revokedKeysFile ? { revokedKeys: readKeysFile(o.revokedKeysFile) } : {}),
        onProgress: progress(o.json),
      });
      if (process.stderr.isTTY && !o.json) process.stderr.write('\n');
      if (o.json) json(r);
      else {
        err(`Applied ${r.partsApplied} part(s) (${r.partsSkipped} already present), ${r.fallbacks} fallback object(s)`);
        out(r.to);
      }
    });

  sd.command('export')
    .description('write one file carrying a static delta and everything it needs, for offline hosts')
    .option('--repo <path>', 'repository path')
    .option('--from <rev>', 'from-commit (default: the parent of --to)')
    .option('--to <rev>', 'to-commit')
    .option('--empty', 'from-scratch update')
    .option('--file <path>', 'output file')
    .option('--disable-bsdiff', 'never use bsdiff (when the delta is generated)')
    .option('--sign <key>', 'sign the superblock with this ed25519 secret key (base64)', collect)
    .option('--keys-file <path>', 'secret keys for --sign, one per line')
    .option('--json', 'print the result as JSON')
    .action(async (o: RangeOpts & { file?: string; disableBsdiff?: boolean; sign?: string[]; keysFile?: string; json?: boolean }) => {
      const repo = openRepo(o);
      if (!o.file) throw new UsageError('--file=PATH is required');
      const { from, to } = range(repo, o);
      const signKeys = keysFrom(o.sign, o.keysFile);
      const r = await exportDelta(repo, { from, to, file: o.file, disableBsdiff: !!o.disableBsdiff, signKeys, reuse: signKeys.length === 0 });
      if (o.json) json(r);
      else out(`${r.file}: ${formatBytes(r.size)}, ${r.parts} part(s), ${r.fallbacks} fallback object(s)`);
    });

  for (const c of sd.commands) c.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  sd.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
}
