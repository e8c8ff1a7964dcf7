/** `remote add|list|delete|show-url`: [remote "NAME"] groups in the repo config. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { addRemote, deleteRemote, getRemote, listRemotes } from '../../repo/index.js';
import { json, out } from '../render.js';
import { openRepo } from './repo.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function registerRemoteCommands(program: Command): void {
  const remote = program.command('remote').description('manage remotes (add, list, delete, show-url)');
  remote
    .command('add')
    .description('add a remote')
    .argument('<name>', 'remote name')
    .argument('<url>', 'http(s):// or file:// URL of an archive repository')
    .argument('[branches...]', 'branches to pull by default')
    .option('--repo <path>', 'repository path')
    .option('--no-gpg-verify', 'write gpg-verify=false')
    .option('--set <key=value>', 'set an option of the remote (repeatable)', collect)
    .option('--sign-verify <spec>', 'ed25519[=inline:PUBKEY|=file:PATH] (repeatable)', collect)
    .option('--if-not-exists', 'do nothing if the remote exists')
    .option('--force', 'replace an existing remote')
    .action((name: string, url: string, branches: string[], o: {
      repo?: string; gpgVerify: boolean; set?: string[]; signVerify?: string[]; ifNotExists?: boolean; force?: boolean;
    }) => {
      const repo = openRepo(o);
      const set = (o.set ?? []).map((kv) => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new UsageError(`--set: expected KEY=VALUE, got "${kv}"`);
        return [kv.slice(0, i), kv.slice(i + 1)] as const;
      });
      addRemote(repo, name, url, {
        noGpgVerify: !o.gpgVerify, set, signVerify: o.signVerify ?? [], branches,
        ifNotExists: o.ifNotExists ?? false, force: o.force ?? false,
      });
    });
  remote
    .command('list')
    .description('list remotes')
    .option('--repo <path>', 'repository path')
    .option('-u, --show-urls', 'show URLs too')
    .option('--json', 'print as JSON')
    .action((o: { repo?: string; showUrls?: boolean; json?: boolean }) => {
      const rs = listRemotes(openRepo(o));
      if (o.json) json(rs);
      else for (const r of rs) out(o.showUrls ? `${r.name.padEnd(Math.max(...rs.map((x) => x.name.length)))}  ${r.url}` : r.name);
    });
  remote
    .command('delete')
    .description('delete a remote')
    .argument('<name>', 'remote name')
    .option('--repo <path>', 'repository path')
    .option('--if-exists', 'do nothing if there is no such remote')
    .action((name: string, o: { repo?: string; ifExists?: boolean }) => {
      deleteRemote(openRepo(o), name, { ifExists: o.ifExists ?? false });
    });
  remote
    .command('show-url')
    .description("print a remote's URL")
    .argument('<name>', 'remote name')
    .option('--repo <path>', 'repository path')
    .action((name: string, o: { repo?: string }) => {
      out(getRemote(openRepo(o), name).url);
    });
}
