// ed25519 signatures in ostree's format (spec §4.1, §5.9, TV10).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { serializeMetadata, serializeCommit, sha256, parseChecksum, type Checksum } from '../../../src/format/index.js';
import { SignKeyInvalidError, SignMissingError } from '../../../src/errors.js';
import { Repo, Transaction } from '../../../src/repo/index.js';
import {
  deleteCommitSignatures, parseSecretKey, publicKeyOf, readKeysFile, signBytes, signCommit, signSummary, signSuperblock,
  verifyCommit, verifyCommitSignature, verifySummarySignature, verifySuperblockSignature,
} from '../../../src/repo/sign.js';
import { tmpdir } from '../../lib/helpers.js';

const PK = '6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=';
const SK = 'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwfqSmxj4pxSCr71UHsTLsX5lUd2rr6+e5JCHuppFEbSLA==';
const TV10_COMMITMETA = '6f73747265652e7369676e2e65643235353139000000000011a92cb9d51cdd6b08bbd33474acab5e11bff13cc2d04a5c2bf87c5ee8dc0ddc155a1b9870e375ea1ccf7a570278ce13734c5b588718d46fdf381d7f8572390d4000616179145e';
// a second key pair (seed = 32 x 0x09)
const SK2 = Buffer.concat([Buffer.alloc(32, 9), parseSecretKey(Buffer.alloc(32, 9).toString('base64')).publicKey]).toString('base64');
const PK2 = publicKeyOf(SK2);

/** TV2's commit: "hello\n" in a 0755 dir, 2024-01-01, no metadata. */
function tv2Commit(): Buffer {
  const c = serializeCommit({
    metadata: [], parent: null, subject: '', body: '', timestamp: 1704067200n,
    rootTree: parseChecksum('b203b8cf6333823b9b7701086070db0785483ab6860d28dd3586df29af6879ef'),
    rootMeta: parseChecksum('446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488'),
  });
  assert.equal(sha256(c), '0e3f2e96901c3172a6cb3236e311c7cb0fef1d12ddea12238cc5f1f8cd62cb9d');
  return c;
}

async function repoWithCommit(): Promise<{ repo: Repo; commit: Checksum }> {
  const repo = Repo.init(path.join(tmpdir(), 'r'), { mode: 'archive', config: { fsync: 'false' } });
  const txn = new Transaction(repo);
  const commit = await txn.writeMetadata('commit', tv2Commit());
  await txn.commit();
  return { repo, commit };
}

describe('ed25519 signatures', () => {
  it('TV10: signing the TV2 commit gives ostree\'s commitmeta byte for byte', async () => {
    const sig = signBytes(tv2Commit(), SK);
    const cm = serializeMetadata([['ostree.sign.ed25519', { type: 'aay', value: [sig] }]]);
    assert.equal(cm.toString('hex'), TV10_COMMITMETA);
    assert.equal(publicKeyOf(SK), PK);
    const { repo, commit } = await repoWithCommit();
    signCommit(repo, commit, [SK]);
    assert.equal(fs.readFileSync(repo.objectPath(commit, 'commitmeta')).toString('hex'), TV10_COMMITMETA);
    assert.ok(verifyCommit(repo, commit, [PK]));
    // signing again with the same key does not duplicate the signature
    signCommit(repo, commit, [SK]);
    assert.equal(fs.readFileSync(repo.objectPath(commit, 'commitmeta')).toString('hex'), TV10_COMMITMETA);
  });
  it('verifies with any trusted key, refuses wrong keys, tampered commits and revoked keys', async () => {
    const { repo, commit } = await repoWithCommit();
    assert.throws(() => verifyCommit(repo, commit, [PK]), SignMissingError);
    signCommit(repo, commit, [SK2]);
    assert.equal(verifyCommit(repo, commit, [PK]), false);
    assert.equal(verifyCommit(repo, commit, [PK, PK2]), true);
    assert.equal(verifyCommit(repo, commit, [PK2], [PK2]), false);
    const meta = repo.loadCommitmeta(commit);
    const tampered = Buffer.from(tv2Commit());
    tampered[tampered.length - 40] ^= 1;
    assert.equal(verifyCommitSignature(tampered, meta, [PK2]), false);
    assert.equal(verifyCommitSignature(tv2Commit(), null, [PK2]), false);
    signCommit(repo, commit, [SK]);
    assert.equal(deleteCommitSignatures(repo, commit, [PK2]), 1);
    assert.equal(verifyCommit(repo, commit, [PK2]), false);
    assert.equal(verifyCommit(repo, commit, [PK]), true);
  });
  it('signs and verifies summaries and superblocks', () => {
    const summary = Buffer.from('pretend summary bytes');
    const sig = signSummary(summary, [SK, SK2]);
    assert.ok(verifySummarySignature(summary, sig, [PK2]));
    assert.ok(!verifySummarySignature(Buffer.from('other'), sig, [PK]));
    assert.ok(!verifySummarySignature(summary, Buffer.from('junk'), [PK]));
    const inner = Buffer.from('inner superblock');
    const signed = signSuperblock(inner, [SK]);
    assert.ok(verifySuperblockSignature(signed, [PK]));
    assert.ok(!verifySuperblockSignature(signed, [PK2]));
    assert.ok(!verifySuperblockSignature(inner, [PK]));
  });
  it('refuses malformed keys with one clear error', () => {
    assert.throws(() => parseSecretKey('not base64!'), SignKeyInvalidError);
    assert.throws(() => parseSecretKey(Buffer.alloc(40).toString('base64')), SignKeyInvalidError);
    const mismatched = Buffer.concat([Buffer.alloc(32, 7), Buffer.alloc(32, 1)]).toString('base64');
    assert.throws(() => parseSecretKey(mismatched), /public half/);
    assert.throws(() => verifyCommitSignature(tv2Commit(), [], ['AAAA']), SignKeyInvalidError);
  });
  it('reads keys files like ostree: one base64 key per line', () => {
    const f = path.join(tmpdir(), 'keys');
    fs.writeFileSync(f, `${PK}\n\n# comment\n${PK2}\n`);
    assert.deepEqual(readKeysFile(f), [PK, PK2]);
  });
});
