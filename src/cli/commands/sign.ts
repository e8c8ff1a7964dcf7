/** `cairn sign`: ed25519 commit signatures as `ostree sign` (sign, --verify, --delete). */
import type { Command } from 'commander';
import { UsageError, SignVerifyError } from '../../errors.js';
import { resolveRev } from '../../repo/index.js';
import { deleteCommitSignatures, readKeysFile, signCommit, verifyCommit } from '../../repo/index.js';
import { out } from '../render.js';
import { openRepo } from './repo.js';

export function registerSignCommands(program: Command): void {
  program
    .command('sign')
    .description('sign a commit with ed25519 keys, or verify / delete its signatures')
    .argument('<commit>', 'commit or ref')
    .argument('[keys...]', 'base64 keys: secret keys to sign, public keys with --verify or --delete')
    .option('--repo <path>', 'repository path')
    .option('--keys-file <path>', 'read keys from a file, one base64 key per line')
    .option('--revoked-keys-file <path>', 'with --verify: keys that are never trusted')
    .option('--verify', 'verify the commit\'s signatures instead of signing')
    .option('--delete', 'delete the signatures made by the given keys')
    .option('-s, --sign-type <type>', 'signature type (only ed25519)', 'ed25519')
    .action((rev: string, keyArgs: string[], o: {
      repo?: string; keysFile?: string; revokedKeysFile?: string; verify?: boolean; delete?: boolean; signType: string;
    }) => {
      const repo = openRepo(o);
      if (o.signType !== 'ed25519') throw new UsageError(`--sign-type: only ed25519 is supported, not "${o.signType}"`);
      if (o.verify && o.delete) throw new UsageError('--verify and --delete cannot be used together');
      const keys = [...keyArgs, ...(o.keysFile ? readKeysFile(o.keysFile) : [])];
      if (keys.length === 0) throw new UsageError('no keys given (pass them as arguments or with --keys-file)');
      const commit = resolveRev(repo, rev)!;
      if (o.verify) {
        const revoked = o.revokedKeysFile ? readKeysFile(o.revokedKeysFile) : [];
        if (!verifyCommit(repo, commit, keys, revoked)) {
          throw new SignVerifyError(`commit ${commit}: no valid ed25519 signature from the given keys`, { object: commit });
        }
        out(`Signature verified successfully with key(s) for commit ${commit}`);
        return;
      }
      if (o.delete) {
        const n = deleteCommitSignatures(repo, commit, keys);
        out(`Deleted ${n} signature(s) from commit ${commit}`);
        return;
      }
      signCommit(repo, commit, keys);
    });
}
