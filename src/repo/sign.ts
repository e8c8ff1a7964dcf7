/**
 * ed25519 signatures in ostree's format (spec §4.1, §5.9): commit signatures in the detached
 * metadata under `ostree.sign.ed25519` (aay of 64-byte signatures over the exact commit
 * bytes), summary.sig (a{sv} with the same key, over the summary bytes) and signed delta
 * superblocks. Keys are base64: public = 32 bytes, secret = libsodium's seed ‖ public (64).
 * Verification succeeds when any signature verifies with any trusted, non-revoked key.
 */
import { createPrivateKey, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import { type Checksum, type Metadata, type Variant, parseMetadata, serializeMetadata, sha256 } from '../format/index.js';
import { ED25519_KEY, parseSignedSuperblock, serializeSignedSuperblock } from '../format/index.js';
import { FormatError, ObjectCorruptError, SignKeyInvalidError, SignMissingError } from '../errors.js';
import { writeFileAtomic } from './fsutil.js';
import type { Repo } from './repo.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
export const SIGNATURE_TYPE = 'aay';

function decodeB64(s: string, what: string): Buffer {
  const t = s.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) throw new SignKeyInvalidError(`${what} is not valid base64`);
  return Buffer.from(t, 'base64');
}

/** A secret key: base64 of seed ‖ public (64 bytes, libsodium form) or of a bare 32-byte seed. */
export function parseSecretKey(b64: string): { privateKey: KeyObject; publicKey: Buffer } {
  const raw = decodeB64(b64, 'ed25519 secret key');
  if (raw.length !== 64 && raw.length !== 32) {
    throw new SignKeyInvalidError(`ed25519 secret key must be 64 bytes (seed and public key), got ${raw.length}`);
  }
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  if (raw.length === 64 && !publicKey.equals(raw.subarray(32))) {
    throw new SignKeyInvalidError('ed25519 secret key: its public half does not match its seed');
  }
  return { privateKey, publicKey: Buffer.from(publicKey) };
}

export function parsePublicKey(b64: string): KeyObject {
  const raw = decodeB64(b64, 'ed25519 public key');
  if (raw.length !== 32) throw new SignKeyInvalidError(`ed25519 public key must be 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The base64 public key of a base64 secret key. */
export function publicKeyOf(secretB64: string): string {
  return parseSecretKey(secretB64).publicKey.toString('base64');
}

/** Keys file as ostree reads it: one base64 key per line; blank lines and '#' comments skipped. */
export function readKeysFile(p: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch (e) {
    throw new SignKeyInvalidError(`${p}: cannot read keys file`, { path: p, cause: e });
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

export function signBytes(data: Uint8Array, secretB64: string): Buffer {
  return edSign(null, data, parseSecretKey(secretB64).privateKey);
}

/** True when any of `signatures` verifies `data` with any of the (non-revoked) public keys. */
export function verifyBytes(data: Uint8Array, signatures: readonly Uint8Array[], publicKeysB64: readonly string[], revokedB64: readonly string[] = []): boolean {
  const revoked = new Set(revokedB64.map((k) => k.trim()));
  const keys = publicKeysB64.filter((k) => !revoked.has(k.trim())).map(parsePublicKey);
  for (const sig of signatures) {
    if (sig.length !== 64) continue;
    for (const k of keys) if (edVerify(null, data, k, sig)) return true;
  }
  return false;
}

function signaturesIn(m: Metadata | null): Uint8Array[] {
  const v = m?.find(([k]) => k === ED25519_KEY)?.[1];
  if (!v) return [];
  if (v.type !== SIGNATURE_TYPE) throw new FormatError(`${ED25519_KEY} has type ${v.type}, expected aay`);
  return [...(v.value as readonly Uint8Array[])];
}

function withSignatures(m: Metadata | null, sigs: readonly Uint8Array[]): Metadata {
  const rest = (m ?? []).filter(([k]) => k !== ED25519_KEY);
  if (sigs.length === 0) return rest;
  const entry: readonly [string, Variant] = [ED25519_KEY, { type: SIGNATURE_TYPE, value: sigs }];
  // keep the key where it was, or append it
  const idx = (m ?? []).findIndex(([k]) => k === ED25519_KEY);
  if (idx < 0) return [...rest, entry];
  const out = [...(m ?? [])];
  out[idx] = entry;
  return out;
}

/** Commit signature check over the exact commit bytes (§4.1). */
export function verifyCommitSignature(commitBytes: Buffer, commitmeta: Metadata | null, publicKeysB64: string[], revokedB64: string[] = []): boolean {
  return verifyBytes(commitBytes, signaturesIn(commitmeta), publicKeysB64, revokedB64);
}

function loadCommitBytes(repo: Repo, commit: Checksum): Buffer {
  const bytes = repo.readMetadataBytes(commit, 'commit');
  if (sha256(bytes) !== commit) throw new ObjectCorruptError(`commit ${commit} does not match its checksum`, { object: commit });
  return bytes;
}

function writeCommitmeta(repo: Repo, commit: Checksum, m: Metadata): void {
  const p = repo.objectPath(commit, 'commitmeta');
  if (m.length === 0) {
    fs.rmSync(p, { force: true });
    return;
  }
  writeFileAtomic(p, serializeMetadata(m), { durable: repo.durable, mode: 0o644 });
}

/** Signs a commit with each secret key, appending to its detached metadata (as `ostree sign`). */
export function signCommit(repo: Repo, commit: Checksum, secretKeysB64: string[]): Buffer[] {
  const bytes = loadCommitBytes(repo, commit);
  const meta = repo.loadCommitmeta(commit);
  const sigs = signaturesIn(meta);
  const made: Buffer[] = [];
  for (const k of secretKeysB64) {
    const sig = signBytes(bytes, k);
    made.push(sig);
    if (!sigs.some((s) => Buffer.from(s).equals(sig))) sigs.push(sig);
  }
  writeCommitmeta(repo, commit, withSignatures(meta, sigs));
  return made;
}

/** Verifies a commit in the repo; throws SignMissingError when it carries no signature. */
export function verifyCommit(repo: Repo, commit: Checksum, publicKeysB64: string[], revokedB64: string[] = []): boolean {
  const bytes = loadCommitBytes(repo, commit);
  const meta = repo.loadCommitmeta(commit);
  if (signaturesIn(meta).length === 0) throw new SignMissingError(`commit ${commit} has no ed25519 signature`, { object: commit });
  return verifyCommitSignature(bytes, meta, publicKeysB64, revokedB64);
}

/** Removes the signatures made by any of the given keys (public, or secret whose public half is used). */
export function deleteCommitSignatures(repo: Repo, commit: Checksum, keysB64: string[]): number {
  const bytes = loadCommitBytes(repo, commit);
  const meta = repo.loadCommitmeta(commit);
  const publics = keysB64.map((k) => (decodeB64(k, 'ed25519 key').length === 32 ? k : publicKeyOf(k)));
  const sigs = signaturesIn(meta);
  const keep = sigs.filter((s) => !verifyBytes(bytes, [s], publics));
  if (keep.length !== sigs.length) writeCommitmeta(repo, commit, withSignatures(meta, keep));
  return sigs.length - keep.length;
}

/** summary.sig bytes for `summaryBytes`: a{sv} {ostree.sign.ed25519: aay}. */
export function signSummary(summaryBytes: Buffer, secretKeysB64: string[]): Buffer {
  const sigs = secretKeysB64.map((k) => signBytes(summaryBytes, k));
  return serializeMetadata(withSignatures(null, sigs));
}

export function verifySummarySignature(summaryBytes: Buffer, sigBytes: Buffer, publicKeysB64: string[], revokedB64: string[] = []): boolean {
  let m: Metadata;
  try {
    m = parseMetadata(sigBytes);
  } catch {
    return false;
  }
  return verifyBytes(summaryBytes, signaturesIn(m), publicKeysB64, revokedB64);
}

/** Wraps unsigned superblock bytes into a signed superblock (§5.9). */
export function signSuperblock(innerBytes: Buffer, secretKeysB64: string[]): Buffer {
  const sigs = secretKeysB64.map((k) => signBytes(innerBytes, k));
  return serializeSignedSuperblock(innerBytes, withSignatures(null, sigs));
}

/** Verifies a signed superblock file; false for an unsigned one or a bad signature. */
export function verifySuperblockSignature(raw: Buffer, publicKeysB64: string[], revokedB64: string[] = []): boolean {
  let signed;
  try {
    signed = parseSignedSuperblock(raw);
  } catch {
    return false;
  }
  return verifyBytes(signed.inner, signaturesIn(signed.signatures), publicKeysB64, revokedB64);
}
