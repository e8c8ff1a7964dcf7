/**
 * Remotes: `[remote "NAME"]` groups in the repo config (spec §3.1), as `ostree remote` writes them.
 */
import * as fs from 'node:fs';
import { RemoteExistsError, RemoteInvalidError, RemoteNotFoundError } from '../errors.js';
import type { Repo } from './repo.js';

const REMOTE_NAME = /^[\w\d][-._\w\d]*$/;

export interface RemoteAddOptions {
  /** gpg-verify=false */
  noGpgVerify?: boolean;
  /** Extra keys, written in order after url (ostree remote add --set=K=V). */
  set?: readonly (readonly [string, string])[];
  /** --sign-verify=ed25519=inline:KEY | ed25519=file:PATH | ed25519 */
  signVerify?: readonly string[];
  branches?: readonly string[];
  ifNotExists?: boolean;
  force?: boolean;
}

export interface Remote {
  name: string;
  url: string;
  /** Every key of the group, raw values. */
  options: Record<string, string>;
}

export interface RemoteSignPolicy {
  /** Commits must carry a valid ed25519 signature (sign-verify=ed25519 or true). */
  verifyCommits: boolean;
  /** summary.sig must carry a valid ed25519 signature. */
  verifySummary: boolean;
  /** Trusted public keys, base64 of 32 raw bytes. */
  keys: string[];
}

function group(name: string): string {
  return `remote "${name}"`;
}

export function validateRemoteName(name: string): void {
  if (!REMOTE_NAME.test(name)) throw new RemoteInvalidError(`invalid remote name "${name}"`);
}

export function addRemote(repo: Repo, name: string, url: string, opts: RemoteAddOptions = {}): boolean {
  validateRemoteName(name);
  if (!/^(https?|file):\/\//.test(url)) throw new RemoteInvalidError(`remote ${name}: unsupported URL "${url}" (http://, https:// or file://)`);
  const g = group(name);
  if (repo.config.hasGroup(g)) {
    if (opts.ifNotExists) return false;
    if (!opts.force) throw new RemoteExistsError(`remote "${name}" already exists`);
    repo.config.remove(g);
  }
  repo.config.set(g, 'url', url);
  if (opts.branches && opts.branches.length > 0) repo.config.set(g, 'branches', opts.branches.map((b) => `${b};`).join(''));
  if (opts.noGpgVerify) repo.config.set(g, 'gpg-verify', 'false');
  for (const spec of opts.signVerify ?? []) {
    const m = /^([a-z0-9]+)(?:=(inline|file):(.+))?$/.exec(spec);
    if (!m || m[1] !== 'ed25519') throw new RemoteInvalidError(`--sign-verify: unsupported value "${spec}" (ed25519[=inline:KEY|=file:PATH])`);
    if (m[2] === 'inline') repo.config.set(g, 'verification-ed25519-key', m[3]!);
    else if (m[2] === 'file') repo.config.set(g, 'verification-ed25519-file', m[3]!);
    repo.config.set(g, 'sign-verify', 'ed25519');
  }
  for (const [k, v] of opts.set ?? []) {
    if (!/^[A-Za-z0-9][-A-Za-z0-9_.]*$/.test(k)) throw new RemoteInvalidError(`--set: invalid key "${k}"`);
    repo.config.set(g, k, v);
  }
  repo.saveConfig();
  return true;
}

export function deleteRemote(repo: Repo, name: string, opts: { ifExists?: boolean } = {}): boolean {
  validateRemoteName(name);
  if (!repo.config.hasGroup(group(name))) {
    if (opts.ifExists) return false;
    throw new RemoteNotFoundError(`remote "${name}" not found`);
  }
  repo.config.remove(group(name));
  repo.saveConfig();
  return true;
}

export function listRemotes(repo: Repo): Remote[] {
  return repo.config
    .groupNames()
    .flatMap((g) => {
      const m = /^remote "(.+)"$/.exec(g);
      return m ? [getRemote(repo, m[1]!)] : [];
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function getRemote(repo: Repo, name: string): Remote {
  const g = group(name);
  if (!repo.config.hasGroup(g)) throw new RemoteNotFoundError(`remote "${name}" not found`);
  const options: Record<string, string> = {};
  for (const k of repo.config.keys(g)) options[k] = repo.config.get(g, k) ?? '';
  const url = options.url;
  if (!url) throw new RemoteInvalidError(`remote "${name}" has no url`);
  return { name, url, options };
}

function bool(r: Remote, key: string, dflt: boolean): boolean {
  const v = r.options[key];
  if (v === undefined) return dflt;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new RemoteInvalidError(`remote "${r.name}": ${key}="${v}" is not a boolean`);
}

/** A remote's TLS settings: its `tls-*` options, as ostree reads them. */
export interface RemoteTls {
  /** The remote's name, for messages. */
  remote?: string;
  /** Trust only the certificate authorities in this PEM file. */
  caPath?: string;
  /** A client certificate and its key (PEM), set together. */
  clientCertPath?: string;
  clientKeyPath?: string;
  /** Do not check the server's certificate. */
  permissive?: boolean;
}

/** The TLS settings of a remote (tls-ca-path, tls-client-cert-path, tls-client-key-path, tls-permissive). */
export function remoteTls(r: Remote): RemoteTls {
  const t: RemoteTls = { remote: r.name };
  if (r.options['tls-ca-path']) t.caPath = r.options['tls-ca-path'];
  if (r.options['tls-client-cert-path']) t.clientCertPath = r.options['tls-client-cert-path'];
  if (r.options['tls-client-key-path']) t.clientKeyPath = r.options['tls-client-key-path'];
  if (!t.clientCertPath !== !t.clientKeyPath) {
    throw new RemoteInvalidError(`remote "${r.name}": tls-client-cert-path and tls-client-key-path must be set together`);
  }
  if (bool(r, 'tls-permissive', false)) t.permissive = true;
  return t;
}

/** Signature policy of a remote (spec §4.1): sign-verify, sign-verify-summary and the trusted keys. */
export function remoteSignPolicy(r: Remote): RemoteSignPolicy {
  const sv = r.options['sign-verify'];
  let verifyCommits = false;
  if (sv !== undefined && sv !== 'false' && sv !== '0') {
    for (const t of sv.split(';').filter(Boolean)) {
      if (t !== 'ed25519' && t !== 'true' && t !== '1') throw new RemoteInvalidError(`remote "${r.name}": unsupported sign-verify type "${t}"`);
    }
    verifyCommits = true;
  }
  const verifySummary = bool(r, 'sign-verify-summary', false);
  const keys: string[] = [];
  const inline = r.options['verification-ed25519-key'];
  if (inline) keys.push(...inline.split(/[;\s]+/).filter(Boolean));
  const file = r.options['verification-ed25519-file'];
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new RemoteInvalidError(`remote "${r.name}": cannot read verification-ed25519-file ${file}`, { path: file, cause: e });
    }
    keys.push(...text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
  }
  if ((verifyCommits || verifySummary) && keys.length === 0) {
    throw new RemoteInvalidError(`remote "${r.name}": signature verification is on but no verification-ed25519-key/-file is set`);
  }
  return { verifyCommits, verifySummary, keys };
}
