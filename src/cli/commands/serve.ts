/** `serve`: static HTTP server for a repository (loopback unless --bind says otherwise). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { serveRepo } from '../../transport/index.js';
import { err, out } from '../render.js';
import { openRepo } from './repo.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('serve a repository over HTTP (GET/HEAD, byte ranges) until interrupted')
    .option('--repo <path>', 'repository path')
    .option('--port <n>', 'TCP port (0 = any free port)', '0')
    .option('--bind <addr>', 'address to listen on', '127.0.0.1')
    .option('--log', 'log each request on stderr')
    .action(async (o: { repo?: string; port: string; bind: string; log?: boolean }) => {
      const repo = openRepo(o);
      if (!/^\d+$/.test(o.port) || Number(o.port) > 65535) throw new UsageError(`--port: "${o.port}" is not a port number`);
      const s = await serveRepo(repo.path, {
        port: Number(o.port),
        bind: o.bind,
        ...(o.log ? { onRequest: (r) => err(`${r.method} ${r.url} ${r.status} ${r.bytes}`) } : {}),
      });
      out(s.url);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void s.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
