// The dirtree codec is written out for its one type; these tests hold it to the generic GVariant
// reader and writer: same bytes out, and the same bytes accepted (normal form included).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Checksum, type Dirtree, checkDirtree, checksumFromBytes, checksumToBytes, compareNames, parse, parseDirtree, serialize,
  serializeDirtree, validateFileName,
} from '../../../src/format/index.js';
import { FormatError } from '../../../src/errors.js';

const TYPE = '(a(say)a(sayay))';

/** A deterministic PRNG, so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const PIECES = ['a', 'Z', '0', '.', '-', '_', ' ', 'é', '日本', '\u{1F600}', '\uFEFF', 'lib', 'x86_64-linux-gnu'];

function randomTree(r: () => number, maxEntries: number, nameLen: number): Dirtree {
  const names = (n: number): string[] => {
    const set = new Set<string>();
    while (set.size < n) {
      let s = '';
      const len = 1 + Math.floor(r() * nameLen);
      for (let i = 0; i < len; i++) s += PIECES[Math.floor(r() * PIECES.length)];
      if (s !== '.' && s !== '..') set.add(s);
    }
    return [...set];
  };
  const sum = (): Checksum => Buffer.from(Array.from({ length: 32 }, () => Math.floor(r() * 256))).toString('hex') as Checksum;
  return {
    files: names(Math.floor(r() * maxEntries)).map((name) => ({ name, checksum: sum() })),
    dirs: names(Math.floor(r() * maxEntries)).map((name) => ({ name, tree: sum(), meta: sum() })),
  };
}

/** The generic path: GVariant parse with its normal-form check, then the dirtree rules. */
function genericParse(b: Uint8Array): Dirtree {
  const v = parse(TYPE, b) as unknown as [[string, Uint8Array][], [string, Uint8Array, Uint8Array][]];
  const files = v[0].map(([name, c]) => ({ name, checksum: checksumFromBytes(c) }));
  const dirs = v[1].map(([name, t, m]) => ({ name, tree: checksumFromBytes(t), meta: checksumFromBytes(m) }));
  for (const names of [files.map((f) => f.name), dirs.map((d) => d.name)]) {
    names.forEach((n, i) => {
      validateFileName(n);
      if (i > 0 && compareNames(names[i - 1]!, n) >= 0) throw new FormatError('not sorted');
    });
  }
  return { files, dirs };
}

function genericSerialize(t: Dirtree): Buffer {
  const files = [...t.files].sort((a, b) => compareNames(a.name, b.name));
  const dirs = [...t.dirs].sort((a, b) => compareNames(a.name, b.name));
  return serialize(TYPE, [
    files.map((f) => [f.name, checksumToBytes(f.checksum)]),
    dirs.map((d) => [d.name, checksumToBytes(d.tree), checksumToBytes(d.meta)]),
  ]);
}

/** 'accepted', or the error message (FormatError only). */
function errorOf(f: () => unknown): string {
  try {
    f();
    return 'accepted';
  } catch (e) {
    assert.ok(e instanceof FormatError, `only FormatError may escape, got ${String(e)}`);
    return (e as Error).message;
  }
}
const checkOutcome = (b: Buffer): string => errorOf(() => checkDirtree(b));
const parseOutcome = (b: Buffer): string => errorOf(() => parseDirtree(b));

function outcome(f: () => Dirtree): Dirtree | 'refused' {
  try {
    return f();
  } catch (e) {
    assert.ok(e instanceof FormatError, `only FormatError may escape, got ${String(e)}`);
    return 'refused';
  }
}

describe('dirtree codec', () => {
  it('writes the same bytes as the generic writer, across all offset widths, and reads them back', () => {
    const r = rng(1);
    // entry counts and name lengths chosen so containers cross 255 and 65,535 bytes
    for (const [maxEntries, nameLen, trees] of [[4, 3, 200], [20, 8, 100], [300, 20, 20], [3000, 30, 3]] as const) {
      for (let i = 0; i < trees; i++) {
        const t = randomTree(r, maxEntries, nameLen);
        const bytes = serializeDirtree(t);
        assert.ok(bytes.equals(genericSerialize(t)));
        const back = parseDirtree(bytes);
        assert.deepEqual(back, genericParse(bytes));
        assert.deepEqual(new Set(back.files.map((f) => f.name)), new Set(t.files.map((f) => f.name)));
      }
    }
    const large = serializeDirtree(randomTree(rng(7), 3000, 30));
    assert.ok(large.length > 65535, 'the sample reaches 4-byte offsets');
  });

  it('keeps a leading byte-order mark in a name (the generic reader used to strip it)', () => {
    const t: Dirtree = { files: [{ name: '\uFEFFbom', checksum: 'ab'.repeat(32) as Checksum }], dirs: [] };
    const bytes = serializeDirtree(t);
    assert.equal(parseDirtree(bytes).files[0]!.name, '\uFEFFbom');
    assert.equal(genericParse(bytes).files[0]!.name, '\uFEFFbom');
  });

  it('accepts exactly the bytes the generic reader accepts, under random corruption', () => {
    const r = rng(42);
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 4000; i++) {
      const t = randomTree(r, i % 10 === 0 ? 60 : 5, 6);
      const good = serializeDirtree(t);
      let bad: Buffer;
      const kind = Math.floor(r() * 5);
      if (kind === 4) {
        // a byte that names turn on: NUL, '/', '.', a bare continuation byte, 0xff
        bad = Buffer.from(good);
        bad[Math.floor(r() * bad.length)] = [0, 0x2f, 0x2e, 0x80, 0xff][Math.floor(r() * 5)]!;
      } else if (kind === 0 || good.length === 0) {
        bad = Buffer.from(good);
        for (let k = 0; k < 1 + Math.floor(r() * 3); k++) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
      } else if (kind === 1) bad = good.subarray(0, Math.floor(r() * good.length));
      else if (kind === 2) bad = Buffer.concat([good, Buffer.from([Math.floor(r() * 256)])]);
      else {
        // offsets are where normal form is decided: nudge the last byte (an offset) by one
        bad = Buffer.from(good);
        const at = bad.length - 1 - Math.floor(r() * Math.min(4, bad.length));
        bad[at] = (bad[at]! + (r() < 0.5 ? 1 : 255)) & 0xff;
      }
      const mine = outcome(() => parseDirtree(bad));
      const generic = outcome(() => genericParse(bad));
      assert.deepEqual(mine, generic, `case ${i}: ${bad.toString('hex')}`);
      assert.deepEqual(checkOutcome(bad), parseOutcome(bad), `case ${i}: checkDirtree agrees with parseDirtree, error included`);
      if (mine === 'refused') refused++;
      else accepted++;
    }
    assert.ok(refused > 1000 && accepted > 100, `both outcomes exercised (${refused} refused, ${accepted} accepted)`);
  });

  it('checkDirtree accepts and refuses exactly what parseDirtree does, with the same error', () => {
    const sum = 'cd'.repeat(32) as Checksum;
    for (const name of ['.', '..', 'a/b', '..a', '.a', 'é', 'a\u00e9/b']) {
      let bytes: Buffer;
      try {
        bytes = serializeDirtree({ files: [{ name, checksum: sum }], dirs: [{ name: 'd', tree: sum, meta: sum }] });
      } catch {
        continue;
      }
      assert.deepEqual(checkOutcome(bytes), parseOutcome(bytes), name);
    }
    const ok = serializeDirtree({ files: [{ name: 'a', checksum: sum }, { name: 'é', checksum: sum }], dirs: [{ name: 'b', tree: sum, meta: sum }] });
    assert.equal(checkOutcome(ok), 'accepted');
    const bad = Buffer.from(ok);
    bad[ok.indexOf(Buffer.from('é'))] = 0xff; // no longer UTF-8
    assert.deepEqual(checkOutcome(bad), parseOutcome(bad));
    assert.match(String(checkOutcome(bad)), /UTF-8/);
  });

  it('refuses names ostree refuses and entries out of order', () => {
    const sum = 'cd'.repeat(32) as Checksum;
    for (const name of ['.', '..', 'a/b']) {
      assert.throws(() => parseDirtree(serializeDirtree({ files: [{ name, checksum: sum }], dirs: [] })), /invalid file name/);
    }
    const two = serializeDirtree({ files: [{ name: 'a', checksum: sum }, { name: 'b', checksum: sum }], dirs: [] });
    const swapped = Buffer.from(two);
    swapped[0] = 'b'.charCodeAt(0);
    swapped[two.indexOf('b\0', 1)] = 'a'.charCodeAt(0);
    assert.throws(() => parseDirtree(swapped), /not sorted/);
    assert.throws(() => serializeDirtree({ files: [{ name: 'x', checksum: 'zz' as Checksum }], dirs: [] }), /invalid checksum/);
    assert.throws(() => serializeDirtree({ files: [{ name: 'a\0b', checksum: sum }], dirs: [] }), /NUL/);
  });
});
