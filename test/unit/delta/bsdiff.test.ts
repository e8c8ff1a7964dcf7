// bsdiff / bspatch (spec §5.5): round trips and refusal of corrupt patches.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { bsdiff, bspatch, suffixArray, suffixArrayDoubling } from '../../../src/delta/bsdiff.js';
import { FormatError } from '../../../src/errors.js';
import { pseudoRandom } from '../../lib/trees.js';

const prng = pseudoRandom;

describe('bsdiff', () => {
  it('builds a correct suffix array', () => {
    const s = Buffer.from('mississippi$banana');
    const sa = Array.from(suffixArray(s));
    const naive = [...Array(s.length).keys()].sort((a, b) => Buffer.compare(s.subarray(a), s.subarray(b)));
    assert.deepEqual(sa, naive);
    for (const [i, x] of [prng(5000, 'r'), Buffer.from('abababababababababab'), Buffer.alloc(300, 7), Buffer.from('a'), Buffer.concat([prng(2000, 'q'), prng(2000, 'q'), Buffer.alloc(500)])].entries()) {
      assert.deepEqual(Array.from(suffixArray(x)), Array.from(suffixArrayDoubling(x)), `case ${i}`);
    }
    const z = Buffer.alloc(1000);
    assert.deepEqual(Array.from(suffixArray(z)).slice(0, 3), [999, 998, 997]);
  });
  it('round-trips edits, insertions, deletions and unrelated data', () => {
    const old = prng(200_000, 'old');
    const edited = Buffer.from(old);
    for (let i = 0; i < 300; i++) edited[(i * 7919) % edited.length] ^= 0x5a;
    const inserted = Buffer.concat([old.subarray(0, 50_000), prng(3000, 'ins'), old.subarray(50_000, 150_000), old.subarray(160_000)]);
    for (const [a, b] of [[old, edited], [old, inserted], [Buffer.alloc(0), prng(100, 'x')], [prng(100, 'y'), Buffer.alloc(0)], [prng(5000, 'a'), prng(7000, 'b')]] as const) {
      const p = bsdiff(a, b);
      assert.ok(bspatch(a, p, b.length).equals(b));
    }
    // a small edit gives a patch that compresses far below the file
    const p = bsdiff(old, edited);
    assert.ok(deflateRawSync(p).length < edited.length / 20);
  });
  it('adds old bytes only where the diff window overlaps the old file', () => {
    // hand-made patches whose windows start before the old file, straddle its end or miss it,
    // checked against the definition: new[i] = diff[i] + (old[o] if 0 <= o < old.length, else 0)
    const off = (v: number): Buffer => {
      const b = Buffer.alloc(8);
      let y = Math.abs(v);
      for (let i = 0; i < 8; i++) {
        b[i] = y % 256;
        y = Math.floor(y / 256);
      }
      if (v < 0) b[7]! |= 0x80;
      return b;
    };
    const old = prng(300, 'window');
    const controls: [diff: number, extra: number, seek: number][] = [[50, 5, -80], [60, 0, 200], [90, 3, 400], [70, 0, -1000], [30, 2, 0]];
    let oldPos = 0;
    const chunks: Buffer[] = [];
    const expected: number[] = [];
    for (const [k, [diff, extra, seek]] of controls.entries()) {
      const d = prng(diff, `d${k}`);
      const x = prng(extra, `x${k}`);
      chunks.push(off(diff), off(extra), off(seek), d, x);
      for (let i = 0; i < diff; i++) {
        const o = oldPos + i;
        expected.push((d[i]! + (o >= 0 && o < old.length ? old[o]! : 0)) & 0xff);
      }
      expected.push(...x);
      oldPos += diff + seek;
    }
    assert.ok(bspatch(old, Buffer.concat(chunks), expected.length).equals(Buffer.from(expected)));
  });
  it('refuses truncated and inconsistent patches', () => {
    const old = prng(1000, 'o');
    const nw = Buffer.concat([old.subarray(0, 500), Buffer.from('new bytes'), old.subarray(500)]);
    const p = bsdiff(old, nw);
    assert.throws(() => bspatch(old, p.subarray(0, p.length - 5), nw.length), FormatError);
    assert.throws(() => bspatch(old, p, nw.length + 100), FormatError);
    const neg = Buffer.from(p);
    neg[7] |= 0x80; // negative diff length
    assert.throws(() => bspatch(old, neg, nw.length), FormatError);
  });
});
