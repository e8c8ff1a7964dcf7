/** Registers the network-side commands: summary, remote, serve, pull, pull-local. */
import type { Command } from 'commander';
import { registerPullCommands } from './pull.js';
import { registerRemoteCommands } from './remote.js';
import { registerServeCommands } from './serve.js';
import { registerSummaryCommands } from './summary.js';

export function registerNetworkCommands(program: Command): void {
  registerSummaryCommands(program);
  registerRemoteCommands(program);
  registerServeCommands(program);
  registerPullCommands(program);
}
