/**
 * bsdiff / bspatch in the form ostree's static deltas carry (spec §5.5): the mendsley
 * "ENDSLEY" control/diff/extra stream, without its 24-byte header and without bzip2 (the
 * delta part is xz-compressed as a whole). Pure.
 *
 * Record: three 8-byte sign-magnitude little-endian integers (diffLen, extraLen, seek), then
 * diffLen bytes added byte-wise to the old data at the old position, then extraLen literal
 * bytes; the old position then moves by `seek`.
 *
 * The generator is Colin Percival's algorithm (suffix array of the old file, greedy scan for
 * long approximate matches), with a prefix-doubling suffix sort.
 */
import { FormatError } from '../errors.js';

function readOff(b: Uint8Array, p: number): number {
  let y = 0;
  for (let i = 6; i >= 0; i--) y = y * 256 + b[p + i]!;
  const hi = b[p + 7]!;
  y += (hi & 0x7f) * 2 ** 56;
  if (!Number.isSafeInteger(y)) throw new FormatError('bsdiff control value out of range');
  return hi & 0x80 ? -y : y;
}

function writeOff(out: Buffer, p: number, v: number): void {
  let y = Math.abs(v);
  for (let i = 0; i < 8; i++) {
    out[p + i] = y % 256;
    y = Math.floor(y / 256);
  }
  if (v < 0) out[p + 7]! |= 0x80;
}

/**
 * out[at + i] += old[oldAt + i] for i in [from, to). A function of its own: V8 optimizes this
 * small loop cheaply, where inside bspatch it compiled the whole function twice per pull (once
 * on stack replacement in the first large patch, again for the next calls: ~30 ms of
 * TurboFan time for a delta's six patches).
 */
function addOld(out: Buffer, at: number, old: Uint8Array, oldAt: number, from: number, to: number): void {
  for (let i = from; i < to; i++) out[at + i] = (out[at + i]! + old[oldAt + i]!) & 0xff;
}

/** Applies `patch` to `old`, producing exactly `newSize` bytes; throws FormatError on a bad patch. */
export function bspatch(old: Uint8Array, patch: Uint8Array, newSize: number): Buffer {
  const out = Buffer.alloc(newSize);
  let newPos = 0;
  let oldPos = 0;
  let p = 0;
  while (newPos < newSize) {
    if (p + 24 > patch.length) throw new FormatError('bsdiff patch is truncated');
    const diffLen = readOff(patch, p);
    const extraLen = readOff(patch, p + 8);
    const seek = readOff(patch, p + 16);
    p += 24;
    if (diffLen < 0 || extraLen < 0 || newPos + diffLen > newSize || p + diffLen > patch.length) {
      throw new FormatError('bsdiff patch is corrupt');
    }
    // the diff bytes, plus the old file's bytes where the window overlaps it (outside it adds 0):
    // a copy, then an add loop with no per-byte bounds test (twice as fast warm)
    out.set(patch.subarray(p, p + diffLen), newPos);
    addOld(out, newPos, old, oldPos, Math.max(0, -oldPos), Math.min(diffLen, old.length - oldPos));
    p += diffLen;
    newPos += diffLen;
    oldPos += diffLen;
    if (newPos + extraLen > newSize || p + extraLen > patch.length) throw new FormatError('bsdiff patch is corrupt');
    out.set(patch.subarray(p, p + extraLen), newPos);
    p += extraLen;
    newPos += extraLen;
    oldPos += seek;
  }
  return out;
}

/** Suffix array by prefix doubling with radix sorts, O(n log n): the simple reference for SA-IS. */
export function suffixArrayDoubling(s: Uint8Array): Int32Array {
  const n = s.length;
  const sa = new Int32Array(n);
  if (n === 0) return sa;
  let rank = new Int32Array(n);
  let tmp = new Int32Array(n);
  const sa2 = new Int32Array(n);
  // initial sort by first byte
  let cnt = new Int32Array(Math.max(256, n) + 1);
  for (let i = 0; i < n; i++) cnt[s[i]! + 1]!++;
  for (let i = 1; i <= 256; i++) cnt[i]! += cnt[i - 1]!;
  for (let i = 0; i < n; i++) sa[cnt[s[i]!]!++] = i;
  let classes = 1;
  rank[sa[0]!] = 0;
  for (let i = 1; i < n; i++) {
    if (s[sa[i]!] !== s[sa[i - 1]!]) classes++;
    rank[sa[i]!] = classes - 1;
  }
  for (let k = 1; classes < n; k *= 2) {
    // order by second key: suffixes without a second half first, then by sa
    let j = 0;
    for (let i = n - k; i < n; i++) sa2[j++] = i;
    for (let i = 0; i < n; i++) if (sa[i]! >= k) sa2[j++] = sa[i]! - k;
    // stable counting sort by first key
    cnt = cnt.length >= classes + 1 ? cnt : new Int32Array(classes + 1);
    cnt.fill(0, 0, classes + 1);
    for (let i = 0; i < n; i++) cnt[rank[i]! + 1]!++;
    for (let i = 1; i <= classes; i++) cnt[i]! += cnt[i - 1]!;
    for (let i = 0; i < n; i++) {
      const x = sa2[i]!;
      sa[cnt[rank[x]!]!++] = x;
    }
    tmp[sa[0]!] = 0;
    classes = 1;
    for (let i = 1; i < n; i++) {
      const a = sa[i]!;
      const b = sa[i - 1]!;
      const ra2 = a + k < n ? rank[a + k]! : -1;
      const rb2 = b + k < n ? rank[b + k]! : -1;
      if (rank[a] !== rank[b] || ra2 !== rb2) classes++;
      tmp[a] = classes - 1;
    }
    [rank, tmp] = [tmp, rank];
  }
  return sa;
}

/** Suffix array of `s` (SA-IS, linear time). */
export function suffixArray(s: Uint8Array): Int32Array {
  const n = s.length;
  if (n === 0) return new Int32Array(0);
  const t = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) t[i] = s[i]! + 1;
  t[n] = 0; // unique smallest sentinel
  return sais(t, n + 1, 257).slice(1);
}

/**
 * SA-IS (Nong, Zhang, Chan 2009) over `t` whose last symbol is a unique minimum 0 and whose
 * symbols are < k: sort the LMS substrings by induction, name them, recurse on the names when
 * they are not unique, then induce the full order from the sorted LMS suffixes.
 */
function sais(t: Int32Array, n: number, k: number): Int32Array {
  const sa = new Int32Array(n);
  const stype = new Uint8Array(n); // 1 = S-type, 0 = L-type
  stype[n - 1] = 1;
  for (let i = n - 2; i >= 0; i--) stype[i] = t[i]! < t[i + 1]! || (t[i] === t[i + 1] && stype[i + 1] === 1) ? 1 : 0;
  const isLms = (i: number): boolean => i > 0 && stype[i] === 1 && stype[i - 1] === 0;
  const count = new Int32Array(k);
  for (let i = 0; i < n; i++) count[t[i]!]!++;
  const bkt = new Int32Array(k);
  const buckets = (ends: boolean): void => {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      sum += count[c]!;
      bkt[c] = ends ? sum - 1 : sum - count[c]!;
    }
  };
  const induce = (): void => {
    buckets(false);
    for (let i = 0; i < n; i++) {
      const j = sa[i]! - 1;
      if (j >= 0 && stype[j] === 0) sa[bkt[t[j]!]!++] = j;
    }
    buckets(true);
    for (let i = n - 1; i >= 0; i--) {
      const j = sa[i]! - 1;
      if (j >= 0 && stype[j] === 1) sa[bkt[t[j]!]!--] = j;
    }
  };
  // 1. sort LMS substrings
  sa.fill(-1);
  buckets(true);
  for (let i = 1; i < n; i++) if (isLms(i)) sa[bkt[t[i]!]!--] = i;
  induce();
  // 2. name them
  let n1 = 0;
  for (let i = 0; i < n; i++) if (isLms(sa[i]!)) sa[n1++] = sa[i]!;
  sa.fill(-1, n1);
  let names = 0;
  let prev = -1;
  for (let i = 0; i < n1; i++) {
    const pos = sa[i]!;
    let diff = prev < 0;
    for (let d = 0; !diff; d++) {
      if (t[pos + d] !== t[prev + d] || stype[pos + d] !== stype[prev + d]) diff = true;
      else if (d > 0 && (isLms(pos + d) || isLms(prev + d))) break;
    }
    if (diff) {
      names++;
      prev = pos;
    }
    sa[n1 + (pos >> 1)] = names - 1;
  }
  const s1 = new Int32Array(n1);
  for (let i = n1, j = 0; i < n; i++) if (sa[i]! >= 0) s1[j++] = sa[i]!;
  // 3. order of the LMS suffixes (recursing when names repeat)
  let sa1: Int32Array;
  if (names < n1) sa1 = sais(s1, n1, names);
  else {
    sa1 = new Int32Array(n1);
    for (let i = 0; i < n1; i++) sa1[s1[i]!] = i;
  }
  const lms = new Int32Array(n1);
  for (let i = 1, j = 0; i < n; i++) if (isLms(i)) lms[j++] = i;
  // 4. induce the full suffix array from the sorted LMS suffixes
  sa.fill(-1);
  buckets(true);
  for (let i = n1 - 1; i >= 0; i--) {
    const j = lms[sa1[i]!]!;
    sa[bkt[t[j]!]!--] = j;
  }
  induce();
  return sa;
}

function matchLen(a: Uint8Array, ap: number, b: Uint8Array, bp: number): number {
  const n = Math.min(a.length - ap, b.length - bp);
  let i = 0;
  while (i < n && a[ap + i] === b[bp + i]) i++;
  return i;
}

/** Longest match of new[scan..] among old's suffixes (binary search over the suffix array). */
function search(sa: Int32Array, old: Uint8Array, nw: Uint8Array, scan: number): { len: number; pos: number } {
  let lo = 0;
  let hi = sa.length - 1;
  while (hi - lo > 1) {
    const mid = lo + ((hi - lo) >> 1);
    const o = sa[mid]!;
    // compare old[o..] with nw[scan..]
    const n = Math.min(old.length - o, nw.length - scan);
    let i = 0;
    while (i < n && old[o + i] === nw[scan + i]) i++;
    const less = i < n ? old[o + i]! < nw[scan + i]! : old.length - o < nw.length - scan;
    if (less) lo = mid;
    else hi = mid;
  }
  const x = matchLen(old, sa[lo]!, nw, scan);
  const y = matchLen(old, sa[hi]!, nw, scan);
  return x > y ? { len: x, pos: sa[lo]! } : { len: y, pos: sa[hi]! };
}

/** Produces a patch turning `old` into `nw` (the stream bspatch reads). */
export function bsdiff(old: Uint8Array, nw: Uint8Array): Buffer {
  const chunks: Buffer[] = [];
  const newSize = nw.length;
  const oldSize = old.length;
  const sa = oldSize > 0 ? suffixArray(old) : new Int32Array(0);
  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastScan = 0;
  let lastPos = 0;
  let lastOffset = 0;
  while (scan < newSize) {
    let oldScore = 0;
    let scsc = (scan += len);
    for (; scan < newSize; scan++) {
      if (oldSize === 0) {
        len = 0;
        pos = 0;
      } else {
        const m = search(sa, old, nw, scan);
        len = m.len;
        pos = m.pos;
      }
      for (; scsc < scan + len; scsc++) {
        if (scsc + lastOffset < oldSize && old[scsc + lastOffset] === nw[scsc]) oldScore++;
      }
      if ((len === oldScore && len !== 0) || len > oldScore + 8) break;
      if (scan + lastOffset < oldSize && old[scan + lastOffset] === nw[scan]) oldScore--;
    }
    if (len !== oldScore || scan === newSize) {
      // extend the previous match forwards …
      let s = 0;
      let sf = 0;
      let lenF = 0;
      for (let i = 0; lastScan + i < scan && lastPos + i < oldSize; ) {
        if (old[lastPos + i] === nw[lastScan + i]) s++;
        i++;
        if (s * 2 - i > sf * 2 - lenF) {
          sf = s;
          lenF = i;
        }
      }
      // … and the new match backwards
      let lenB = 0;
      if (scan < newSize) {
        let sb = 0;
        s = 0;
        for (let i = 1; scan >= lastScan + i && pos >= i; i++) {
          if (old[pos - i] === nw[scan - i]) s++;
          if (s * 2 - i > sb * 2 - lenB) {
            sb = s;
            lenB = i;
          }
        }
      }
      // split an overlap where it scores best
      if (lastScan + lenF > scan - lenB) {
        const overlap = lastScan + lenF - (scan - lenB);
        s = 0;
        let ss = 0;
        let lenS = 0;
        for (let i = 0; i < overlap; i++) {
          if (nw[lastScan + lenF - overlap + i] === old[lastPos + lenF - overlap + i]) s++;
          if (nw[scan - lenB + i] === old[pos - lenB + i]) s--;
          if (s > ss) {
            ss = s;
            lenS = i + 1;
          }
        }
        lenF += lenS - overlap;
        lenB -= lenS;
      }
      const extraLen = scan - lenB - (lastScan + lenF);
      const rec = Buffer.alloc(24 + lenF + extraLen);
      writeOff(rec, 0, lenF);
      writeOff(rec, 8, extraLen);
      writeOff(rec, 16, pos - lenB - (lastPos + lenF));
      for (let i = 0; i < lenF; i++) rec[24 + i] = (nw[lastScan + i]! - old[lastPos + i]!) & 0xff;
      rec.set(nw.subarray(lastScan + lenF, lastScan + lenF + extraLen), 24 + lenF);
      chunks.push(rec);
      lastScan = scan - lenB;
      lastPos = pos - lenB;
      lastOffset = pos - scan;
    }
  }
  return Buffer.concat(chunks);
}
