/**
 * A fake sysroot in a temporary directory, like ostree's tests/libtest.sh setup_os_repository:
 * a `testos` stateroot, commits with a fake kernel + initramfs under usr/lib/modules/<kver>/,
 * usr/etc files and usr/lib/os-release, committed into S/ostree/repo. Built by cairn (default)
 * or by the real ostree (`via: 'ostree'`). Also a simulated boot: systemd-boot's selection over
 * the BLS entries, then what ostree-prepare-root does with the chosen entry's ostree= argument.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cairn, ok, ostree } from './helpers.js';
import { blsGet, chooseBootEntry, parseBlsEntry } from '../../src/sysroot/index.js';

export const REF = 'testos/buildmain/x86_64-runtime';
export const KVER = '6.1.0-test';

/** A temp dir removed at exit, after clearing immutable attributes (deployment roots). */
export function sysrootTmp(prefix = 'cairn-sysroot-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (!process.env.KEEP_TMP) {
    process.on('exit', () => {
      spawnSync('chattr', ['-R', '-i', d], { stdio: 'ignore' });
      fs.rmSync(d, { recursive: true, force: true });
    });
  }
  return d;
}

export interface TreeSpec {
  version: string;
  kernel?: string | null;
  initramfs?: string | null;
  etc?: Record<string, string>;
  files?: Record<string, string>;
  prettyName?: string;
}

export function writeTree(dir: string, spec: TreeSpec): void {
  fs.rmSync(dir, { recursive: true, force: true });
  const put = (rel: string, content: string): void => {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  };
  for (const d of ['usr/bin', 'usr/lib', 'usr/etc', 'var', 'boot', 'sysroot', 'proc', 'dev', 'run', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.symlinkSync('usr/bin', path.join(dir, 'bin'));
  if (spec.kernel !== null) put(`usr/lib/modules/${KVER}/vmlinuz`, spec.kernel ?? 'KERNEL\n');
  if (spec.kernel !== null && spec.initramfs !== null) put(`usr/lib/modules/${KVER}/initramfs.img`, spec.initramfs ?? 'INITRD\n');
  put('usr/lib/os-release', `ID=testos\nNAME=TestOS\nPRETTY_NAME="${spec.prettyName ?? 'TestOS'}"\nVERSION_ID=${spec.version}\n`);
  put('usr/bin/sh', `#!/bin/true ${spec.version}\n`);
  put('usr/share/doc/testos/VERSION', `${spec.version}\n`);
  for (const [k, v] of Object.entries(spec.etc ?? { 'os.conf': `version=${spec.version}\n` })) put(`usr/etc/${k}`, v);
  for (const [k, v] of Object.entries(spec.files ?? {})) put(k, v);
}

export interface FakeSysroot {
  readonly tmp: string;
  readonly S: string;
  readonly repo: string;
  /** Commits a tree into the system repo (same bytes and timestamp give the same checksum). */
  commit(spec: TreeSpec, ref?: string): string;
  /** `cairn admin <cmd> --sysroot=S …` */
  admin(args: string[], extra?: string[]): ReturnType<typeof cairn>;
  /** `ostree admin --sysroot=S …` */
  oadmin(args: string[]): ReturnType<typeof ostree>;
}

export function makeSysroot(opts: { via?: 'cairn' | 'ostree'; os?: string } = {}): FakeSysroot {
  const tmp = sysrootTmp();
  const S = path.join(tmp, 'sysroot');
  const osname = opts.os ?? 'testos';
  if (opts.via === 'ostree') {
    fs.mkdirSync(S);
    ok(ostree(['admin', `--sysroot=${S}`, 'init-fs', S]), 'ostree admin init-fs');
    ok(ostree(['admin', `--sysroot=${S}`, 'os-init', osname]), 'ostree admin os-init');
  } else {
    ok(cairn(['admin', 'init-fs', S]), 'cairn admin init-fs');
    ok(cairn(['admin', `--sysroot=${S}`, 'os-init', osname]), 'cairn admin os-init');
  }
  const repo = path.join(S, 'ostree/repo');
  let n = 0;
  return {
    tmp, S, repo,
    commit(spec, ref = REF) {
      const dir = path.join(tmp, `tree-${n++}`);
      writeTree(dir, spec);
      const ts = `@${1704067200 + n}`;
      return ok(cairn(['commit', `--repo=${repo}`, '-b', ref, `--timestamp=${ts}`, `--add-metadata-string=version=${spec.version}`, '-s', spec.version, `--tree=dir=${dir}`]), 'cairn commit');
    },
    admin(args, extra = []) {
      return cairn(['admin', args[0]!, `--sysroot=${S}`, ...extra, ...args.slice(1)]);
    },
    oadmin(args) {
      return ostree(['admin', `--sysroot=${S}`, ...args]);
    },
  };
}

export interface BootEntryFile {
  fileName: string;
  version?: string;
  options: string;
}

export function loaderEntries(S: string): BootEntryFile[] {
  const dir = path.join(S, 'boot/loader/entries');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => n.endsWith('.conf') && !n.startsWith('.')).map((fileName) => {
    const e = parseBlsEntry(fs.readFileSync(path.join(dir, fileName), 'utf8'));
    const v = blsGet(e, 'version');
    return { fileName, ...(v !== undefined ? { version: v } : {}), options: blsGet(e, 'options') ?? '' };
  });
}

/**
 * One boot: systemd-boot picks the first entry of its sorted menu (bad entries last) and counts
 * it down by renaming; then, as ostree-prepare-root does with /proc/cmdline, the entry's ostree=
 * bootlink is resolved to the deployment directory, which becomes the "running root"
 * (`--booted-root`). Returns the entry file booted (before the rename) and the deployment.
 */
export function simulateBoot(S: string, rootLink: string): { entry: string; renamedTo?: string; deployment: string } {
  const entries = loaderEntries(S);
  const choice = chooseBootEntry(entries);
  if (!choice) throw new Error('no boot entries: nothing to boot');
  const dir = path.join(S, 'boot/loader/entries');
  if (choice.rename) fs.renameSync(path.join(dir, choice.rename.from), path.join(dir, choice.rename.to));
  const arg = choice.entry.options.split(' ').find((a) => a.startsWith('ostree='));
  if (!arg) throw new Error(`${choice.entry.fileName}: no ostree= argument`);
  const deployment = fs.realpathSync(path.join(S, arg.slice('ostree=/'.length)));
  fs.rmSync(rootLink, { force: true });
  fs.symlinkSync(deployment, rootLink);
  return { entry: choice.entry.fileName, ...(choice.rename ? { renamedTo: choice.rename.to } : {}), deployment };
}

/** `ostree admin status` / `cairn admin status` text → [stateroot, name, refspec, pinned] rows. */
export function parseStatus(text: string): { marker: string; stateroot: string; name: string; tag: string; version?: string; refspec?: string; pinned: boolean }[] {
  const out: { marker: string; stateroot: string; name: string; tag: string; version?: string; refspec?: string; pinned: boolean }[] = [];
  for (const line of text.split('\n')) {
    const m = /^ ?(\*)? ?(\S+) ([0-9a-f]{64}\.\d+)(.*)$/.exec(line);
    if (m) {
      out.push({ marker: m[1] ?? ' ', stateroot: m[2]!, name: m[3]!, tag: m[4]!.trim(), pinned: false });
      continue;
    }
    const cur = out.at(-1);
    if (!cur) continue;
    const v = /^ {4}Version: (.*)$/.exec(line);
    if (v) cur.version = v[1]!;
    const r = /^ {4}origin refspec: (.*)$/.exec(line);
    if (r) cur.refspec = r[1]!;
    if (/^ {4}Pinned: yes$/.test(line)) cur.pinned = true;
  }
  return out;
}
