/** Repository commands: option schemas, one library call each, render. */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { type Checksum, type Variant, parseChecksum } from '../../format/index.js';
import { UsageError, FsckFailedError } from '../../errors.js';
import {
  REPO_MODES, Repo, type RepoMode, cat, checkout, commitTree, diff, fsck, listRefs, log, ls, prune, resolveRev,
  deleteRef, parseRefspec, setRef,
} from '../../repo/index.js';
import { commitJson, commitText, err, formatBytes, json, lsLine, out } from '../render.js';

interface RepoOpt {
  repo?: string;
}
interface JsonOpt {
  json?: boolean;
}

export function openRepo(o: RepoOpt): Repo {
  if (!o.repo) throw new UsageError('--repo=PATH is required');
  return Repo.open(o.repo);
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function parseIntOpt(name: string) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v)) throw new UsageError(`${name}: "${v}" is not an integer`);
    return Number(v);
  };
}

/** ISO 8601 date (or seconds since the epoch with a leading @) to seconds. */
export function parseTimestamp(v: string): bigint {
  if (/^@\d+$/.test(v)) return BigInt(v.slice(1));
  const withZone = /[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`;
  const ms = Date.parse(withZone);
  if (Number.isNaN(ms)) throw new UsageError(`--timestamp: cannot parse "${v}" as an ISO 8601 date`);
  return BigInt(Math.floor(ms / 1000));
}

export function registerRepoCommands(program: Command): void {
  program
    .command('init')
    .description('create a new repository')
    .option('--repo <path>', 'repository path')
    .option('--mode <mode>', `one of ${REPO_MODES.join(', ')}`, 'bare')
    .option('--no-fsync', 'set core.fsync=false (faster, not crash-durable)')
    .action((o: RepoOpt & { mode: string; fsync: boolean }) => {
      if (!o.repo) throw new UsageError('--repo=PATH is required');
      const mode = o.mode === 'archive-z2' ? 'archive' : o.mode;
      if (!REPO_MODES.includes(mode as RepoMode)) throw new UsageError(`--mode: unknown mode "${o.mode}"`);
      Repo.init(o.repo, { mode: mode as RepoMode, ...(o.fsync ? {} : { config: { fsync: 'false' } }) });
    });

  program
    .command('commit')
    .description('commit a directory or tarball as a new commit')
    .argument('[path]', 'directory to commit (same as --tree=dir=PATH)')
    .option('--repo <path>', 'repository path')
    .option('-b, --branch <ref>', 'branch (ref) to update')
    .option('--orphan', 'create a commit without a branch')
    .option('--tree <spec>', 'dir=PATH or tar=PATH', collect)
    .option('-s, --subject <text>', 'one-line subject')
    .option('-m, --body <text>', 'full description')
    .option('--timestamp <iso8601>', 'commit time instead of now')
    .option('--owner-uid <n>', 'owner uid for every file', parseIntOpt('--owner-uid'))
    .option('--owner-gid <n>', 'owner gid for every file', parseIntOpt('--owner-gid'))
    .option('--no-xattrs', 'do not import extended attributes')
    .option('--canonical-permissions', 'uid/gid 0 and modes masked with 0755, no xattrs')
    .option('--add-metadata-string <k=v>', 'add a string metadata key', collect)
    .option('--parent <commit>', 'parent commit ("none" for none)')
    .option('--no-bindings', 'do not write ostree.ref-binding')
    .option('--json', 'print the result as JSON')
    .action(async (pathArg: string | undefined, o: RepoOpt & JsonOpt & {
      branch?: string; orphan?: boolean; tree?: string[]; subject?: string; body?: string; timestamp?: string;
      ownerUid?: number; ownerGid?: number; xattrs: boolean; canonicalPermissions?: boolean;
      addMetadataString?: string[]; parent?: string; bindings: boolean;
    }) => {
      const repo = openRepo(o);
      if (!o.branch && !o.orphan) throw new UsageError('a branch must be given with --branch, or use --orphan');
      const trees = [...(o.tree ?? []), ...(pathArg ? [`dir=${pathArg}`] : [])];
      if (trees.length !== 1) throw new UsageError('exactly one tree is needed: --tree=dir=PATH, --tree=tar=PATH or a PATH argument');
      const spec = trees[0]!;
      const m = /^(dir|tar)=(.+)$/.exec(spec);
      if (!m) throw new UsageError(`--tree: "${spec}" is not dir=PATH or tar=PATH`);
      const metadata: [string, Variant][] = (o.addMetadataString ?? []).map((kv) => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new UsageError(`--add-metadata-string: "${kv}" is not KEY=VALUE`);
        return [kv.slice(0, i), { type: 's', value: kv.slice(i + 1) }];
      });
      let parent: Checksum | null | undefined;
      if (o.parent === 'none') parent = null;
      else if (o.parent) parent = resolveRev(repo, o.parent);
      else if (o.orphan) parent = null;
      const r = await commitTree(repo, { kind: m[1] as 'dir' | 'tar', path: m[2]! }, {
        ...(o.branch ? { branch: o.branch } : {}),
        ...(parent !== undefined ? { parent } : {}),
        ...(o.subject !== undefined ? { subject: o.subject } : {}),
        ...(o.body !== undefined ? { body: o.body } : {}),
        ...(o.timestamp ? { timestamp: parseTimestamp(o.timestamp) } : {}),
        ...(o.ownerUid !== undefined ? { ownerUid: o.ownerUid } : {}),
        ...(o.ownerGid !== undefined ? { ownerGid: o.ownerGid } : {}),
        noXattrs: !o.xattrs,
        canonicalPermissions: !!o.canonicalPermissions,
        metadata,
        bindings: o.bindings,
      });
      if (o.json) json(r);
      else out(r.commit);
    });

  program
    .command('refs')
    .description('list refs')
    .option('--repo <path>', 'repository path')
    .option('--delete', 'delete the named refs')
    .option('--create <ref>', 'create REF pointing at the given commit')
    .option('--json', 'print as JSON')
    .argument('[args...]')
    .action((args: string[], o: RepoOpt & JsonOpt & { delete?: boolean; create?: string }) => {
      const repo = openRepo(o);
      if (o.create) {
        if (args.length !== 1) throw new UsageError('--create=REF needs exactly one commit argument');
        const { remote, ref } = parseRefspec(o.create);
        setRef(repo, remote, ref, resolveRev(repo, args[0]!)!);
        return;
      }
      if (o.delete) {
        for (const a of args) {
          const { remote, ref } = parseRefspec(a);
          if (!deleteRef(repo, remote, ref)) throw new UsageError(`ref "${a}" not found`);
        }
        return;
      }
      const refs = listRefs(repo);
      const filtered = [...refs].filter(([name]) => args.length === 0 || args.some((p) => name.startsWith(p)));
      if (o.json) json(Object.fromEntries(filtered));
      else for (const [name] of filtered) out(name);
    });

  program
    .command('rev-parse')
    .description('print the commit a ref or checksum prefix names')
    .argument('<rev>')
    .option('--repo <path>', 'repository path')
    .action((rev: string, o: RepoOpt) => {
      out(resolveRev(openRepo(o), rev)!);
    });

  program
    .command('log')
    .description('show the history of a ref')
    .argument('<rev>')
    .option('--repo <path>', 'repository path')
    .option('--json', 'print as JSON')
    .action((rev: string, o: RepoOpt & JsonOpt) => {
      const entries = log(openRepo(o), rev);
      if (o.json) json(entries.map((e) => ({ ...commitJson(e.checksum, e.commit), truncated: e.truncated })));
      else
        for (const e of entries) {
          out(commitText(e.checksum, e.commit));
          if (e.truncated) out('<< History beyond this commit not fetched >>');
        }
    });

  program
    .command('show')
    .description('show one commit')
    .argument('<rev>')
    .option('--repo <path>', 'repository path')
    .option('--json', 'print as JSON')
    .action((rev: string, o: RepoOpt & JsonOpt) => {
      const repo = openRepo(o);
      const csum = resolveRev(repo, rev)!;
      const c = repo.loadCommit(csum);
      if (o.json) json(commitJson(csum, c));
      else out(commitText(csum, c));
    });

  program
    .command('ls')
    .description('list a path in a commit')
    .argument('<rev>')
    .argument('[paths...]')
    .option('--repo <path>', 'repository path')
    .option('-R, --recursive', 'list recursively')
    .option('-C, --checksum', 'show object checksums')
    .option('--json', 'print as JSON')
    .action((rev: string, paths: string[], o: RepoOpt & JsonOpt & { recursive?: boolean; checksum?: boolean }) => {
      const repo = openRepo(o);
      const entries = (paths.length ? paths : ['/']).flatMap((p) => ls(repo, rev, p, !!o.recursive));
      if (o.json) json(entries);
      else for (const e of entries) out(lsLine(e, !!o.checksum));
    });

  program
    .command('cat')
    .description('print the content of a file in a commit')
    .argument('<rev>')
    .argument('<paths...>')
    .option('--repo <path>', 'repository path')
    .action(async (rev: string, paths: string[], o: RepoOpt) => {
      const repo = openRepo(o);
      for (const p of paths) await pipeline(cat(repo, rev, p), process.stdout, { end: false });
    });

  program
    .command('diff')
    .description('list files added, deleted and modified between two commits')
    .argument('<a>')
    .argument('<b>')
    .option('--repo <path>', 'repository path')
    .option('--json', 'print as JSON')
    .action((a: string, b: string, o: RepoOpt & JsonOpt) => {
      const entries = diff(openRepo(o), a, b);
      if (o.json) json(entries);
      else for (const e of entries) out(`${e.kind}    ${e.path}`);
    });

  program
    .command('fsck')
    .description('verify every object and that every commit is complete')
    .option('--repo <path>', 'repository path')
    .option('-q, --quiet', 'print only problems')
    .option('--json', 'print as JSON')
    .action(async (o: RepoOpt & JsonOpt & { quiet?: boolean }) => {
      const repo = openRepo(o);
      const r = await fsck(repo);
      if (o.json) json(r);
      else {
        for (const p of r.problems) err(p.message);
        if (!o.quiet) out(`checked ${r.objects} objects in ${r.commits} commits: ${r.problems.length === 0 ? 'ok' : `${r.problems.length} problems`}`);
      }
      if (r.problems.length > 0) throw new FsckFailedError(`fsck found ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${repo.path}`);
    });

  program
    .command('prune')
    .description('delete objects no commit (or ref) reaches')
    .option('--repo <path>', 'repository path')
    .option('--refs-only', 'only keep objects reachable from refs')
    .option('--depth <n>', 'history depth to keep behind each root (-1: all)', parseIntOpt('--depth'), -1)
    .option('--no-prune', 'only report what would be deleted')
    .option('--delete-commit <commit>', 'delete this commit', collect)
    .option('--json', 'print as JSON')
    .action((o: RepoOpt & JsonOpt & { refsOnly?: boolean; depth: number; prune: boolean; deleteCommit?: string[] }) => {
      const repo = openRepo(o);
      const r = prune(repo, {
        refsOnly: !!o.refsOnly,
        depth: o.depth,
        noPrune: !o.prune,
        deleteCommits: (o.deleteCommit ?? []).map((c) => resolveRev(repo, c) ?? parseChecksum(c)),
      });
      if (o.json) json(r);
      else {
        out(`Total objects: ${r.total}`);
        out(r.deleted === 0 ? 'No unreachable objects' : `${o.prune ? 'Deleted' : 'Would delete'} ${r.deleted} objects, ${formatBytes(r.freedBytes)} freed`);
      }
    });

  program
    .command('checkout')
    .description('check a commit out into a new directory')
    .argument('<rev>')
    .argument('<dest>')
    .option('--repo <path>', 'repository path')
    .option('-U, --user-mode', 'do not change file ownership or set xattrs')
    .option('--subpath <path>', 'check out only this path')
    .option('-H, --require-hardlinks', 'fail unless files can be hardlinked')
    .option('--force-copy', 'never hardlink')
    .option('--json', 'print the result as JSON')
    .action(async (rev: string, dest: string, o: RepoOpt & JsonOpt & { userMode?: boolean; subpath?: string; requireHardlinks?: boolean; forceCopy?: boolean }) => {
      const repo = openRepo(o);
      if (o.requireHardlinks && repo.archive) throw new UsageError('--require-hardlinks: archive repositories cannot be hardlinked');
      if (!fs.existsSync(o.repo!)) throw new UsageError(`${o.repo}: no such repository`);
      const r = await checkout(repo, rev, dest, {
        userMode: !!o.userMode,
        ...(o.subpath ? { subpath: o.subpath } : {}),
        noHardlinks: !!o.forceCopy,
      });
      if (o.json) json(r);
    });
}
