/**
 * TLS for a pull: which certificate authorities it trusts, and the client certificate it shows.
 *
 * By default, Node's roots plus NODE_EXTRA_CA_CERTS. Node 20 reads and parses the
 * NODE_EXTRA_CA_CERTS file as it starts, before any code runs: 38 ms of every cairn run on a
 * host that sets it to Debian's bundle, for commands that never open a TLS connection. bin/cairn
 * therefore hands the variable over under another name, and the CLI gives it here
 * (trustExtraCaCertsFile): the file is read and parsed at the first TLS connection, and its
 * certificates are trusted beside the bundled roots, as Node would have.
 *
 * A remote's options, as ostree reads them: `tls-ca-path` replaces the roots (only the
 * certificates in that file are trusted for that remote); `tls-client-cert-path` and
 * `tls-client-key-path` give a client certificate; `tls-permissive=true` skips the server's
 * certificate check (objects are still verified by checksum, and by signature where required).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type { ConnectionOptions, SecureContextOptions } from 'node:tls';
import { RemoteInvalidError } from '../errors.js';
import type { RemoteTls } from '../repo/index.js';

let extraCaFile: string | null = null;

/** Trust the certificates in `file` beside the bundled roots, as NODE_EXTRA_CA_CERTS does. */
export function trustExtraCaCertsFile(file: string | null): void {
  extraCaFile = file;
}

const prefix = (t: RemoteTls): string => (t.remote !== undefined ? `remote "${t.remote}": ` : '');

function readOption(t: RemoteTls, option: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RemoteInvalidError(`${prefix(t)}${option} "${file}": cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * The options for a fetcher's TLS connections, or null when Node's defaults apply as they are.
 * What the remote configures is read and checked now (a file that cannot be read, or a key that
 * does not fit its certificate, fails here with one line). With only the deferred extra
 * certificates, they are read and the context (a parse of every root certificate) is made at the
 * first TLS connection; an extra-certificates file that cannot be read is then ignored with a
 * warning, as Node ignores one.
 */
export function tlsOptionsFor(t: RemoteTls = {}): (() => ConnectionOptions) | null {
  const ctx: SecureContextOptions = {};
  if (t.caPath !== undefined) ctx.ca = [readOption(t, 'tls-ca-path', t.caPath)];
  if (t.clientCertPath !== undefined && t.clientKeyPath !== undefined) {
    ctx.cert = readOption(t, 'tls-client-cert-path', t.clientCertPath);
    ctx.key = readOption(t, 'tls-client-key-path', t.clientKeyPath);
  }
  const extra = t.caPath === undefined ? extraCaFile : null;
  if (Object.keys(ctx).length === 0 && !t.permissive && extra === null) return null;
  const build = (): ConnectionOptions => {
    // the extra certificates: only when a TLS connection is made (node:tls is ~4 ms to load, and
    // a pull from an http:// remote never needs it); unreadable, they are ignored as Node would
    if (extra !== null) {
      try {
        ctx.ca = [...loadTls().rootCertificates, fs.readFileSync(extra, 'utf8')];
      } catch (e) {
        process.emitWarning(`Ignoring extra certs from \`${extra}\`, load failed: ${(e as Error).message}`);
      }
    }
    let secureContext;
    try {
      secureContext = loadTls().createSecureContext(ctx);
    } catch (e) {
      throw new RemoteInvalidError(`${prefix(t)}TLS client certificate or key is unusable (${(e as Error).message})`);
    }
    return { secureContext, ...(t.permissive ? { rejectUnauthorized: false } : {}) };
  };
  // what the remote configures is checked now; only the deferred extra certificates wait
  if (t.caPath !== undefined || t.clientCertPath !== undefined || t.permissive) {
    const now = build();
    return () => now;
  }
  let made: ConnectionOptions | null = null;
  return () => (made ??= build());
}

// node:tls is loaded by the first fetcher that needs it, not at start-up (undici loads it then too)
const loadTls = (): typeof import('node:tls') => createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
