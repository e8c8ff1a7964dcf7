// Test vectors from the verified spec (shared/spec/ostree-format.md §7), produced by ostree 2022.7.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  EMPTY_DIRTREE_CHECKSUM, fileChecksumPrefix, parseArchiveHeader, parseCommit, parseDirmeta, parseDirtree,
  parseMetadata, serializeArchiveHeader, serializeCommit, serializeDirmeta, serializeDirtree, serializeMetadata,
  serializeTombstone, sha256, parseChecksum, S_IFDIR, S_IFLNK, S_IFREG, type Checksum,
} from '../../../src/format/index.js';

const c = (s: string): Checksum => parseChecksum(s);
const DIRMETA_0755 = c('446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488');
const TS = 1704067200n;

function fileChecksum(mode: number, content: string, target = '', xattrs: { name: string; value: Uint8Array }[] = []): Checksum {
  const h = { uid: 0, gid: 0, mode, symlinkTarget: target, xattrs };
  return sha256(fileChecksumPrefix(h), Buffer.from(content));
}

describe('ostree test vectors', () => {
  it('TV1: empty dirtree, root dirmeta and empty commit', () => {
    assert.equal(EMPTY_DIRTREE_CHECKSUM, '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    assert.equal(sha256(serializeDirtree({ files: [], dirs: [] })), EMPTY_DIRTREE_CHECKSUM);
    const dm = serializeDirmeta({ uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] });
    assert.equal(dm.toString('hex'), '00000000' + '00000000' + '000041ed');
    assert.equal(sha256(dm), DIRMETA_0755);
    const commit = serializeCommit({ metadata: [], parent: null, subject: '', body: '', timestamp: TS, rootTree: EMPTY_DIRTREE_CHECKSUM, rootMeta: DIRMETA_0755 });
    assert.equal(commit.length, 86);
    assert.equal(sha256(commit), 'e0a636a2b3f7d17905fbf86721e37108fa90628e4da42e2b307e54bda0c17ebd');
    assert.deepEqual(parseCommit(commit).rootTree, EMPTY_DIRTREE_CHECKSUM);
  });

  it('TV2: regular file, its filez and dirtree and commit', () => {
    const f = fileChecksum(S_IFREG | 0o644, 'hello\n');
    assert.equal(f, '44f778e59f0a4748d6b0c90a47347212a231c4ad1e8f7ea5c5dffc7749153a6b');
    const hdr = serializeArchiveHeader({ uid: 0, gid: 0, mode: S_IFREG | 0o644, symlinkTarget: '', xattrs: [] }, 6);
    assert.equal(hdr.toString('hex'), '0000001a0000000000000000000000060000000000000000000081a4000000000019');
    const parsed = parseArchiveHeader(Buffer.concat([hdr, Buffer.from('cb48cdc9c9e70200', 'hex')]));
    assert.equal(parsed.size, 6);
    assert.equal(parsed.headerLength, hdr.length);
    const tree = serializeDirtree({ files: [{ name: 'hello', checksum: f }], dirs: [] });
    assert.equal(tree.length, 41);
    assert.equal(sha256(tree), 'b203b8cf6333823b9b7701086070db0785483ab6860d28dd3586df29af6879ef');
    assert.deepEqual(parseDirtree(tree).files, [{ name: 'hello', checksum: f }]);
    const commit = serializeCommit({ metadata: [], parent: null, subject: '', body: '', timestamp: TS, rootTree: sha256(tree), rootMeta: DIRMETA_0755 });
    assert.equal(sha256(commit), '0e3f2e96901c3172a6cb3236e311c7cb0fef1d12ddea12238cc5f1f8cd62cb9d');
  });

  it('TV3: symlink', () => {
    const f = fileChecksum(S_IFLNK | 0o777, '', 'hello');
    assert.equal(f, '73baaba0102e9154b8522687d33eedb8ed1bc78eadb82428b2616144ec502934');
    const tree = serializeDirtree({ files: [{ name: 'link', checksum: f }], dirs: [] });
    assert.equal(sha256(tree), '63847307eeec135e423ea06c787c180fed2534606808a7dff63fc1c06dfd3b44');
  });

  it('TV4: xattrs are part of the content checksum', () => {
    const f = fileChecksum(S_IFREG | 0o644, 'hello\n', '', [
      { name: 'user.a', value: Buffer.from('1') },
      { name: 'user.b', value: Buffer.from('2') },
    ]);
    assert.equal(f, 'ec8a777849ae5bfbbafd11738442c8a2f8a5f8588d09df043a3d6bf5f0c24540');
  });

  it('TV5: nested tree with byte-order sorting', () => {
    const hello = fileChecksum(S_IFREG | 0o644, 'hello\n');
    const world = fileChecksum(S_IFREG | 0o644, 'world\n');
    assert.equal(world, '30b0616406265d4eeff2823d98822ba45f89e1a82699fd94ec04577d3aa2644d');
    const empty = fileChecksum(S_IFREG | 0o600, '');
    assert.equal(empty, 'd3fa9214de0816a2cf5475da17be2036ae0eda3df526eff7c1ddee082c6e5b58');
    const z = fileChecksum(S_IFLNK | 0o777, '', 'a/x');
    const m700 = sha256(serializeDirmeta({ uid: 0, gid: 0, mode: S_IFDIR | 0o700, xattrs: [] }));
    assert.equal(m700, '84641b0a39d8c873690da8f32aea21cf5d6fff354f85e045f6f5ecdc8e7758d0');
    const a = sha256(serializeDirtree({ files: [{ name: 'x', checksum: hello }], dirs: [] }));
    const sub = sha256(serializeDirtree({ files: [{ name: 'y', checksum: world }], dirs: [] }));
    const b = sha256(serializeDirtree({ files: [], dirs: [{ name: 'sub', tree: sub, meta: DIRMETA_0755 }] }));
    const root = serializeDirtree({
      files: [{ name: 'empty', checksum: empty }, { name: 'Z', checksum: z }],
      dirs: [
        { name: 'c', tree: EMPTY_DIRTREE_CHECKSUM, meta: m700 },
        { name: 'a', tree: a, meta: DIRMETA_0755 },
        { name: 'b', tree: b, meta: DIRMETA_0755 },
      ],
    });
    assert.equal(sha256(root), '3e9c59189c6b36008f2f94be4f271c0577efe380a7dc9a62cfade74d2b9096d7');
    const commit = serializeCommit({ metadata: [], parent: null, subject: '', body: '', timestamp: TS, rootTree: sha256(root), rootMeta: DIRMETA_0755 });
    assert.equal(sha256(commit), '1c353fa66b23e1ec6c40f28a06e69de2ea00e3338473ab085627a6e80240af71');
  });

  it('TV6: commit metadata and detached metadata', () => {
    const tree = sha256(serializeDirtree({ files: [{ name: 'hello', checksum: fileChecksum(S_IFREG | 0o644, 'hello\n') }], dirs: [] }));
    const le7 = Buffer.alloc(4);
    le7.writeUInt32LE(7);
    const commit = serializeCommit({
      metadata: [
        ['version', { type: 's', value: '1.0' }],
        ['num', { type: 'u', value: 7 }],
        ['ostree.ref-binding', { type: 'as', value: ['test/ref'] }],
      ],
      parent: null, subject: 'Test subject', body: 'Body text', timestamp: TS, rootTree: tree, rootMeta: DIRMETA_0755,
    });
    assert.equal(sha256(commit), '180ad3455550fca69d53f6f2818f815892dbd9645fd4ee7f0fcc1f4611d2617b');
    const meta = serializeMetadata([['dkey', { type: 's', value: 'dval' }]]);
    assert.equal(meta.toString('hex'), '646b6579000000006476616c0000730510');
    assert.deepEqual(parseMetadata(meta), [['dkey', { type: 's', value: 'dval' }]]);
  });

  it('TV8: tombstone', () => {
    const t = serializeTombstone(c('0e3f2e96901c3172a6cb3236e311c7cb0fef1d12ddea12238cc5f1f8cd62cb9d'));
    assert.equal(sha256(t), 'aadc161c05173f72cb52a3c3e612e9458c47f18e35e9636db8d8bfe6229f34db');
  });

  it('rejects metadata that is not in normal form or not well typed', () => {
    const dm = serializeDirmeta({ uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] });
    assert.throws(() => parseDirmeta(Buffer.concat([dm, Buffer.from([0])])), { code: 'FORMAT_INVALID' });
    assert.throws(() => parseDirmeta(dm.subarray(0, 11)), { code: 'FORMAT_INVALID' });
    const file = Buffer.from(dm);
    file.writeUInt32BE(0o100644, 8);
    assert.throws(() => parseDirmeta(file), /invalid directory mode/);
    const tree = serializeDirtree({ files: [{ name: 'hello', checksum: DIRMETA_0755 }], dirs: [] });
    const bad = Buffer.from(tree);
    bad[bad.length - 1] = 0xff;
    assert.throws(() => parseDirtree(bad), { code: 'FORMAT_INVALID' });
    assert.throws(() => parseCommit(Buffer.alloc(3)), { code: 'FORMAT_INVALID' });
  });
});
