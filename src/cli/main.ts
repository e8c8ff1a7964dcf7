/**
 * cairn's command line: the composition root. Parses argv, runs one command, turns every
 * failure into one line on stderr and a non-zero exit code (2 for usage errors).
 */
import { Command, CommanderError } from 'commander';
import { CairnError, describeError } from '../errors.js';
import { registerRepoCommands } from './commands/repo.js';
import { registerNetworkCommands } from './commands/network.js';
import { registerStaticDeltaCommands } from './commands/static-delta.js';
import { registerSignCommands } from './commands/sign.js';
import { registerAdminCommands } from './commands/admin.js';
import { err } from './render.js';
import { trustExtraCaCertsFile } from '../transport/index.js';

// bin/cairn hands NODE_EXTRA_CA_CERTS over under this name, so that Node does not parse the file
// at start-up (see transport/trust.ts): the transport trusts it when it connects, and child
// processes get the variable back as it was.
const deferredCa = process.env.CAIRN_DEFERRED_EXTRA_CA_CERTS;
if (deferredCa !== undefined) {
  delete process.env.CAIRN_DEFERRED_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = deferredCa;
  trustExtraCaCertsFile(deferredCa);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cairn')
    .description('Build, ship and atomically update image-based Linux hosts (OSTree-compatible)')
    .version('0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerRepoCommands(program);
  registerNetworkCommands(program);
  registerStaticDeltaCommands(program);
  registerSignCommands(program);
  registerAdminCommands(program);
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one-line message (or help/version)
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof CairnError) {
      err(`error: ${describeError(e)}`);
      if (process.env.DEBUG) err(e.stack ?? '');
      return e.exitCode;
    }
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    const msg = describeError(e);
    err(`error: ${msg}${code === 'ENOSPC' && !msg.includes('no space left') ? ' (no space left on device)' : ''}`);
    if (process.env.DEBUG) err((e as Error).stack ?? '');
    return 1;
  }
}

process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
