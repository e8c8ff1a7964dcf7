/**
 * Which certificate authorities a pull trusts over TLS.
 *
 * By default, Node's: its bundled roots plus NODE_EXTRA_CA_CERTS. Node 20 reads and parses the
 * NODE_EXTRA_CA_CERTS file as it starts, before any code runs: 38 ms of every cairn run on a
 * host that sets it to Debian's bundle, for commands that never open a TLS connection. bin/cairn
 * therefore hands the variable over under another name, and the CLI gives it here
 * (trustExtraCaCertsFile): the certificates are read when a fetcher is made and parsed at the
 * first TLS connection, and are trusted beside the bundled roots, as Node would have.
 *
 * A remote's `tls-ca-path` (an ostree remote option) replaces the roots: only the certificates in
 * that file are trusted for that remote.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';
import { RemoteInvalidError } from '../errors.js';

let extraCaFile: string | null = null;

/** Trust the certificates in `file` beside the bundled roots, as NODE_EXTRA_CA_CERTS does. */
export function trustExtraCaCertsFile(file: string | null): void {
  extraCaFile = file;
}

/**
 * The TLS context for a fetcher, made on first use, or null when Node's own defaults apply.
 * A `caPath` that cannot be read fails here, with one line; an extra-certificates file that
 * cannot be read is ignored with a warning, as Node ignores one.
 */
export function tlsContextFor(caPath: string | undefined): (() => SecureContext) | null {
  let ca: string[];
  if (caPath !== undefined) {
    try {
      ca = [fs.readFileSync(caPath, 'utf8')];
    } catch (e) {
      throw new RemoteInvalidError(`tls-ca-path "${caPath}": cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  } else if (extraCaFile !== null) {
    let extra: string;
    try {
      extra = fs.readFileSync(extraCaFile, 'utf8');
    } catch (e) {
      process.emitWarning(`Ignoring extra certs from \`${extraCaFile}\`, load failed: ${(e as Error).message}`);
      return null;
    }
    ca = [...(loadTls().rootCertificates), extra];
  } else {
    return null;
  }
  let made: SecureContext | null = null;
  return () => (made ??= loadTls().createSecureContext({ ca }));
}

// node:tls is loaded by the first fetcher that needs it, not at start-up (undici loads it then too)
const loadTls = (): typeof import('node:tls') => createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
