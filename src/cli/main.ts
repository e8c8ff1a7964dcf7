/**
 * cairn's command line: the composition root. Parses argv, runs one command, turns every
 * failure into one line on stderr and a non-zero exit code (2 for usage errors). The entry point
 * that calls `main` is scripts/start.cjs (dist/bundle/cairn.js, which bin/cairn runs).
 */
import { Command, CommanderError } from 'commander';
import { CairnError, describeError, isNoSpaceCode } from '../errors.js';
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

/** `--json` among the options (before a `--`): a failure is then reported as one JSON line too. */
function wantsJson(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * The JSON form of an error line: the code (docs/errors.md), the one-line message, and what it
 * concerns. An error that is not one of cairn's typed ones is a system error (IO_NO_SPACE or
 * IO_FAILED, with its `errno` name) or else a bug (INTERNAL).
 */
function errorEvent(e: unknown): Record<string, string> {
  const ev: Record<string, string> = { event: 'error', code: 'INTERNAL', message: describeError(e) };
  if (e instanceof CairnError) {
    ev.code = e.code;
    for (const k of ['path', 'object', 'ref', 'url'] as const) if (e[k] !== undefined) ev[k] = e[k]!;
    return ev;
  }
  const { code: errno, path } = (e ?? {}) as NodeJS.ErrnoException;
  if (typeof errno === 'string' && /^E[A-Z0-9]+$/.test(errno)) {
    ev.code = isNoSpaceCode(errno) ? 'IO_NO_SPACE' : 'IO_FAILED';
    ev.errno = errno;
    if (typeof path === 'string') ev.path = path;
  }
  return ev;
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
    if (wantsJson(argv)) err(JSON.stringify(errorEvent(e)));
    else {
      const msg = describeError(e);
      const full = !(e instanceof CairnError) && (e as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC' && !msg.includes('no space left');
      err(`error: ${msg}${full ? ' (no space left on device)' : ''}`);
    }
    if (process.env.DEBUG) err((e as Error | undefined)?.stack ?? '');
    return e instanceof CairnError ? e.exitCode : 1;
  }
}
