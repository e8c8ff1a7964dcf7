/** `cairn admin …`: sysroot commands (option schemas, one library call each, render). */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import {
  type DeploymentStatus, type SysrootOptions, bless, cleanup, deploy, editKargs, finalizeStaged, initFs, osInit, pin,
  rollback, setOrigin, status, undeploy,
} from '../../sysroot/index.js';
import { err, formatBytes, json, out } from '../render.js';

interface CommonOpts {
  sysroot?: string;
  bootedRoot?: string;
  immutable?: boolean;
  fsync?: boolean;
  pretendBootSize?: string;
  bootTries?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function common(c: Command): Command {
  return c
    .option('--sysroot <path>', 'physical root of the system (default /)')
    .option('--booted-root <path>', 'the running root: the booted deployment is the one with the same inode (default / when /run/ostree-booted exists)')
    .option('--no-immutable', 'do not set the immutable attribute on deployment roots')
    .option('--no-fsync', 'skip fsync/syncfs (faster, not crash-safe)')
    .option('--boot-tries <n>', 'boot-counting tries for new entries (0: off; default sysroot.boot-counting-tries or 3)')
    .option('--pretend-boot-size <bytes>', 'treat /boot as a partition of this size (testing)');
}

/** Options given on `admin` or on the subcommand (the subcommand wins when given on the command line). */
function gather(sub: Command): CommonOpts {
  const parent = sub.parent!;
  const o: Record<string, unknown> = { ...parent.opts() };
  for (const [k, v] of Object.entries(sub.opts())) {
    if (sub.getOptionValueSource(k) === 'cli' || parent.getOptionValueSource(k) !== 'cli') o[k] = v;
  }
  return o as CommonOpts;
}

function intOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}: "${v}" is not a non-negative integer`);
  return Number(v);
}

function setup(sub: Command): { sysroot: string; opts: SysrootOptions; o: CommonOpts } {
  const o = gather(sub);
  const sysroot = o.sysroot ?? '/';
  let bootedRoot: string | null = o.bootedRoot ?? null;
  if (!bootedRoot && sysroot === '/' && fs.existsSync('/run/ostree-booted')) bootedRoot = '/';
  const tries = intOpt('--boot-tries', o.bootTries);
  const size = intOpt('--pretend-boot-size', o.pretendBootSize);
  const opts: SysrootOptions = {
    bootedRoot, immutable: o.immutable !== false, fsync: o.fsync !== false, log: (m) => err(m),
    ...(tries !== undefined ? { bootTries: tries } : {}), ...(size !== undefined ? { bootSizeLimit: size } : {}),
  };
  return { sysroot, opts, o };
}

function indexArg(v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`INDEX: "${v}" is not a deployment index (0, 1, …)`);
  return Number(v);
}

function statusLines(d: DeploymentStatus): string[] {
  const tag = d.staged ? ' (staged)' : d.pending ? ' (pending)' : d.rollback ? ' (rollback)' : '';
  const lines = [`${d.booted ? '*' : ' '} ${d.stateroot} ${d.name}${tag}`];
  if (d.version) lines.push(`    Version: ${d.version}`);
  if (d.pinned) lines.push('    Pinned: yes');
  if (d.origin === 'none') lines.push('    origin: none');
  else if (d.origin === 'unknown') lines.push('    origin: <unknown origin type>');
  else lines.push(`    origin refspec: ${d.refspec}`);
  if (d.triesLeft !== null) lines.push(`    Boot tries left: ${d.triesLeft} (${d.triesDone} done)${d.triesLeft === 0 ? ' — marked bad' : ''}`);
  if (d.booted) lines.push(`    Blessed: ${d.blessed ? 'yes' : 'no'}`);
  return lines;
}

export function registerAdminCommands(program: Command): void {
  const admin = common(program.command('admin').description('manage the sysroot: deployments, boot entries, boot counting'));

  admin
    .command('init-fs')
    .description('create the top-level directories of a physical root and its system repo')
    .argument('<dir>')
    .action((dir: string) => {
      initFs(dir);
    });

  common(admin.command('os-init').description('create a stateroot (OS) with its shared /var').argument('<osname>'))
    .action((osname: string, _o: unknown, cmd: Command) => {
      const { sysroot } = setup(cmd);
      osInit(sysroot, osname);
      out(`ostree/deploy/${osname} initialized as OSTree root`);
    });

  common(admin.command('deploy').description('deploy a ref or commit of the system repo as the new default').argument('<refspec>'))
    .option('--os <osname>', 'stateroot to deploy into')
    .option('--karg <k=v>', 'set a kernel argument (replaces earlier values of the key)', collect)
    .option('--karg-append <k=v>', 'append a kernel argument', collect)
    .option('--karg-delete <k[=v]>', 'delete a kernel argument', collect)
    .option('--stage', 'prepare the deployment; finalize-staged switches the bootloader (at shutdown)')
    .option('--retain', 'keep every existing deployment')
    .option('--not-as-default', 'add the deployment after the booted/merge one, not as the default')
    .option('--json', 'print the result as JSON')
    .action(async (refspec: string, c: { os?: string; karg?: string[]; kargAppend?: string[]; kargDelete?: string[]; stage?: boolean; retain?: boolean; notAsDefault?: boolean; json?: boolean }, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const r = await deploy(sysroot, {
        rev: refspec, ...(c.os ? { os: c.os } : {}), stage: !!c.stage, retain: !!c.retain, notAsDefault: !!c.notAsDefault,
        kargs: { replace: c.karg ?? [], append: c.kargAppend ?? [], delete: c.kargDelete ?? [] },
      }, opts);
      if (c.json) json({ deployment: `${r.deployment.csum}.${r.deployment.deployserial}`, stateroot: r.deployment.stateroot, staged: !!c.stage, etc: r.etc, write: r.write, cleanup: r.cleanup });
      else out(`${r.deployment.stateroot} ${r.deployment.csum}.${r.deployment.deployserial}${c.stage ? ' (staged)' : ''}`);
    });

  common(admin.command('status').description('list deployments'))
    .option('--json', 'print as JSON')
    .action((_o: unknown, cmd: Command) => {
      const { sysroot, opts, o } = setup(cmd);
      const { deployments, state } = status(sysroot, opts);
      if (o.json) {
        json({ bootversion: state.bootversion, subbootversion: state.subbootversion, deployments });
        return;
      }
      if (deployments.length === 0) out('No deployments.');
      for (const d of deployments) for (const l of statusLines(d)) out(l);
    });

  common(admin.command('rollback').description('make the rollback deployment the default'))
    .option('--os <osname>', 'stateroot')
    .action(async (c: { os?: string }, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const r = await rollback(sysroot, c.os ? { os: c.os } : {}, opts);
      out(`Moving '${r.target.csum}.${r.target.deployserial}' to be first deployment`);
    });

  common(admin.command('undeploy').description('remove the deployment at INDEX').argument('<index>'))
    .action(async (index: string, _o: unknown, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const r = await undeploy(sysroot, indexArg(index), opts);
      out(`Deleted deployment ${r.removed.csum}.${r.removed.deployserial}`);
    });

  common(admin.command('pin').description('keep the deployment at INDEX through deploys (--unpin: stop)').argument('<index>'))
    .option('-u, --unpin', 'unpin')
    .action(async (index: string, c: { unpin?: boolean }, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const d = await pin(sysroot, indexArg(index), !c.unpin, opts);
      out(`Deployment ${d.csum}.${d.deployserial} is ${c.unpin ? 'now unpinned' : 'now pinned'}`);
    });

  common(admin.command('cleanup').description('delete unused deployments, boot files and repo objects'))
    .action(async (_o: unknown, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const r = await cleanup(sysroot, opts);
      out(`Removed ${r.deploymentsRemoved} deployments, ${r.bootDirsRemoved} kernel directories, ${r.objectsPruned} objects (${formatBytes(r.bytesFreed)})`);
    });

  common(admin.command('set-origin').description('add remote REMOTE at URL and make REMOTE:BRANCH the origin').argument('<remote>').argument('<url>').argument('[branch]'))
    .option('--index <n>', 'deployment (default: booted, else the default)')
    .option('--set <key=value>', 'set a remote option, e.g. gpg-verify=false', collect)
    .action(async (remote: string, url: string, branch: string | undefined, c: { index?: string; set?: string[] }, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const set = (c.set ?? []).map((kv): [string, string] => {
        const i = kv.indexOf('=');
        if (i <= 0) throw new UsageError(`--set: "${kv}" is not KEY=VALUE`);
        return [kv.slice(0, i), kv.slice(i + 1)];
      });
      await setOrigin(sysroot, { remote, url, set, ...(branch ? { branch } : {}), ...(c.index !== undefined ? { index: indexArg(c.index) } : {}) }, opts);
    });

  common(admin.command('kargs').description('show or edit the kernel arguments of a deployment'))
    .option('--index <n>', 'deployment (default: booted, else the default)')
    .option('--replace <k=v>', 'set an argument, replacing earlier values of the key', collect)
    .option('--append <k=v>', 'append an argument', collect)
    .option('--delete <k[=v]>', 'delete an argument', collect)
    .action(async (c: { index?: string; replace?: string[]; append?: string[]; delete?: string[] }, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const index = c.index !== undefined ? indexArg(c.index) : undefined;
      const edits = { replace: c.replace ?? [], append: c.append ?? [], delete: c.delete ?? [] };
      if (edits.replace.length + edits.append.length + edits.delete.length === 0) {
        const { deployments } = status(sysroot, opts);
        const d = index !== undefined ? deployments[index] : (deployments.find((x) => x.booted) ?? deployments.find((x) => !x.staged));
        if (!d) throw new UsageError(index !== undefined ? `deployment index ${index} is out of range` : 'no deployments');
        out(d.kargs.join(' '));
        return;
      }
      const r = await editKargs(sysroot, index, edits, opts);
      out(r.deployment.kargs.join(' '));
    });

  common(admin.command('finalize-staged').description('switch the bootloader to the staged deployment (run at shutdown)'))
    .action(async (_o: unknown, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const r = await finalizeStaged(sysroot, opts);
      out(r.message);
    });

  common(admin.command('bless').description("mark the booted deployment's boot entry good (ends boot counting)"))
    .action(async (_o: unknown, cmd: Command) => {
      const { sysroot, opts } = setup(cmd);
      const r = await bless(sysroot, opts);
      out(r.already ? `${r.to}: already blessed` : `Blessed ${r.from} -> ${r.to}`);
    });
}
