// GVariant codec: byte-exact against GLib itself (Debian python3-gi) on tricky cases, round
// trips, and refusal of input that is not in normal form.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type GValue, parse, serialize } from '../../../src/format/gvariant.js';
import { ROOT } from '../../lib/helpers.js';

type J = number | string | boolean | null | J[] | { type: string; value: J };
interface Case {
  type: string;
  json: J; // what GLib gets (bigints as strings, bytes as number arrays)
  value: GValue; // what our codec gets
}

const bytes = (n: number, seed = 1): number[] => Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const longStrings = (n: number, len: number): string[] => Array.from({ length: n }, (_, i) => `${i}`.padEnd(len, 'x'));

const CASES: Case[] = [
  { type: 'y', json: 200, value: 200 },
  { type: 'b', json: true, value: true },
  { type: 'n', json: -2, value: -2 },
  { type: 'q', json: 65000, value: 65000 },
  { type: 'i', json: -5, value: -5 },
  { type: 'u', json: 4000000000, value: 4000000000 },
  { type: 't', json: '18446744073709551615', value: 18446744073709551615n },
  { type: 'x', json: '-9007199254740993', value: -9007199254740993n },
  { type: 'd', json: 3.25, value: 3.25 },
  { type: 's', json: 'héllo ☃', value: 'héllo ☃' },
  { type: 's', json: '', value: '' },
  { type: 'ay', json: bytes(300), value: new Uint8Array(bytes(300)) },
  { type: 'v', json: { type: 's', value: '1.0' }, value: { type: 's', value: '1.0' } },
  { type: 'v', json: { type: 't', value: '7' }, value: { type: 't', value: 7n } },
  { type: '()', json: [], value: [] },
  { type: '(ysi)', json: [1, 'ab', -5], value: [1, 'ab', -5] },
  { type: '(yt)', json: [1, '2'], value: [1, 2n] },
  { type: '(ty)', json: ['2', 1], value: [2n, 1] },
  { type: '(sy)', json: ['abc', 9], value: ['abc', 9] },
  { type: '(ss)', json: ['a', 'b'], value: ['a', 'b'] },
  { type: 'as', json: ['x'], value: ['x'] },
  { type: 'as', json: [], value: [] },
  { type: 'as', json: longStrings(10, 25), value: longStrings(10, 25) },
  { type: 'as', json: longStrings(300, 200), value: longStrings(300, 200) },
  { type: 'as', json: longStrings(40, 2000), value: longStrings(40, 2000) },
  { type: 'aas', json: [['a', 'b'], [], ['c']], value: [['a', 'b'], [], ['c']] },
  { type: 'a(say)', json: [['hello', bytes(32)], ['x', bytes(32, 7)]], value: [['hello', new Uint8Array(bytes(32))], ['x', new Uint8Array(bytes(32, 7))]] },
  { type: 'a{sv}', json: [['version', { type: 's', value: '1' }], ['n', { type: 'u', value: 7 }], ['b', { type: 'as', value: ['x', 'y'] }]], value: [['version', { type: 's', value: '1' }], ['n', { type: 'u', value: 7 }], ['b', { type: 'as', value: ['x', 'y'] }]] },
  { type: 'a{ss}', json: [['k', 'v'], ['k2', 'v2']], value: [['k', 'v'], ['k2', 'v2']] },
  { type: 'a(uuu)', json: [[1, 2, 3], [4, 5, 6]], value: [[1, 2, 3], [4, 5, 6]] },
  { type: 'a(yaytt)', json: [[1, bytes(32), '5', '6']], value: [[1, new Uint8Array(bytes(32)), 5n, 6n]] },
  { type: 'ms', json: 'x', value: 'x' },
  { type: 'ms', json: null, value: null },
  { type: 'mu', json: 5, value: 5 },
  { type: 'm(ss)', json: ['a', 'b'], value: ['a', 'b'] },
  { type: '(tuuuusa(ayay))', json: ['6', 0, 0, 33188, 0, '', [[bytes(7), bytes(3)]]], value: [6n, 0, 0, 33188, 0, '', [[new Uint8Array(bytes(7)), new Uint8Array(bytes(3))]]] },
  { type: '(a{sv}aya(say)sstayay)', json: [[['k', { type: 's', value: 'v' }]], [], [], 'subj', 'body', '1704067200', bytes(32), bytes(32, 3)], value: [[['k', { type: 's', value: 'v' }]], new Uint8Array(0), [], 'subj', 'body', 1704067200n, new Uint8Array(bytes(32)), new Uint8Array(bytes(32, 3))] },
  { type: '(a(say)a(sayay))', json: [longStrings(400, 3).map((s, i) => [s, bytes(32, i)]), [['d', bytes(32), bytes(32, 2)]]], value: [longStrings(400, 3).map((s, i) => [s, new Uint8Array(bytes(32, i))]), [['d', new Uint8Array(bytes(32)), new Uint8Array(bytes(32, 2))]]] },
];

describe('GVariant codec', () => {
  it('serialises exactly as GLib does, and parses GLib\'s bytes back', () => {
    const r = spawnSync('/usr/bin/python3', [join(ROOT, 'test/vectors/glib-serialize.py')], {
      input: CASES.map((c) => JSON.stringify({ type: c.type, value: c.json })).join('\n') + '\n',
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const hex = r.stdout.trim().split('\n');
    assert.equal(hex.length, CASES.length);
    CASES.forEach((c, i) => {
      const ours = serialize(c.type, c.value).toString('hex');
      assert.equal(ours, hex[i], `${c.type} #${i}`);
      assert.deepEqual(parse(c.type, Buffer.from(hex[i]!, 'hex')), c.value, `parse ${c.type} #${i}`);
    });
  });

  it('refuses input that is not in normal form', () => {
    const bad: [string, string][] = [
      ['b', '02'], // boolean not 0/1
      ['s', '6162'], // no NUL terminator
      ['s', '610062 00'.replace(' ', '')], // embedded NUL
      ['s', 'ff00'], // invalid UTF-8
      ['(ysi)', '016162000000000000fbffffff04'], // non-zero padding after the string... (extra bytes)
      ['(ysi)', '01616200fbffffff05'], // offset points past the string end
      ['as', '7800'], // missing offset table
      ['as', '780003'], // offset beyond the body
      ['u', '010000'], // wrong fixed size
      ['(uu)', '0100000002000000ff'], // trailing garbage
      ['v', '3100'], // variant with empty type
      ['v', '31002e'], // invalid type string
      ['a(uuu)', '01000000'], // fixed array not a multiple of its element
      ['ay', ''], // fine: empty
    ];
    for (const [t, h] of bad.slice(0, -1)) {
      assert.throws(() => parse(t, Buffer.from(h, 'hex')), { code: 'FORMAT_INVALID' }, `${t} ${h}`);
    }
    assert.deepEqual(parse('ay', Buffer.alloc(0)), new Uint8Array(0));
  });

  it('refuses values of the wrong shape when serialising', () => {
    assert.throws(() => serialize('u', 'x'), { code: 'FORMAT_INVALID' });
    assert.throws(() => serialize('(uu)', [1]), { code: 'FORMAT_INVALID' });
    assert.throws(() => serialize('s', 'a\0b'), { code: 'FORMAT_INVALID' });
    assert.throws(() => serialize('t', 5), { code: 'FORMAT_INVALID' });
    assert.throws(() => serialize('a{vs}', []), { code: 'FORMAT_INVALID' });
    assert.throws(() => serialize('(u', [1]), { code: 'FORMAT_INVALID' });
  });
});
