/**
 * pull (spec §3.4): summary(.sig) → commitmeta + commit → dirtree/dirmeta walk → only the
 * missing objects, many requests in flight. Every object is verified before it is stored
 * (metadata: SHA-256 + normal-form parse; content: inflate + recomputed canonical checksum),
 * and stored only through the repo layer's transactions, committed in batches so that an
 * interrupted pull keeps what it verified. state/<commit>.commitpartial marks a commit whose
 * tree is incomplete; the ref is written last.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import {
  type Checksum, type Dirtree, type ObjectType, fileChecksumPrefix,
  checkDirtree, isChecksum, parseCommit, parseDirmeta, parseDirtree, parseMetadata, sha256,
} from '../format/index.js';
import { type Summary, parseSummary } from '../format/index.js';
import {
  CairnError, FormatError, ObjectCorruptError, PullObjectCorruptError, PullRefNotFoundError, PullSignatureError, PullSummaryError,
} from '../errors.js';
import { ObjectPresence, type Repo, Transaction, setRef, validateRefName } from '../repo/index.js';
import { clearCommitPartial, dropPartialDownload, markCommitPartial, partialDownloadDir } from '../repo/index.js';
import type { RemoteSignPolicy } from '../repo/index.js';
import { SMALL_FILE, holdWriterPool, inspectFilezFile, pullWorkers, startWriterPool } from '../repo/index.js';
import {
  type EarlyPartDecode, type StagedObjects, type Superblock, decodeDeltaPart, deltaIndexRelPath, deltaRelDir, executeDeltaPart,
  parseSuperblock, partSatisfied, startPartDecode, superblockCommitmeta, superblockInlinePart,
} from '../delta/index.js';
import { type PartPayload, type SummaryDelta, parseDeltaIndex, parseDeltaName } from '../format/index.js';
import { serializeMetadata } from '../format/index.js';
import { resolveRev } from '../repo/index.js';
import { PullDeltaError } from '../errors.js';
import { type ContentPayload, MAX_SUPERBLOCK_SIZE, type ObjectSource } from './source.js';
import { Limiter } from '../util/index.js';

export interface PullRefSpec {
  ref: string;
  /** Pin to this commit instead of what the remote's ref points at. */
  commit?: Checksum;
}

export interface PullStats {
  phase: 'summary' | 'metadata' | 'content' | 'committing' | 'done';
  metadataFetched: number;
  contentFetched: number;
  /** Objects found missing so far (fetched + queued). */
  requested: number;
  bytes: number;
  /** Static delta parts applied. */
  deltaParts: number;
  startedAt: number;
}

export interface PullOptions {
  /** Refs go to refs/remotes/<remote>/ (or refs/heads/ with mirror / when remote is null). */
  remote: string | null;
  refs: readonly PullRefSpec[];
  depth?: number;
  mirror?: boolean;
  commitMetadataOnly?: boolean;
  /** Requests in flight. */
  concurrency?: number;
  signPolicy?: RemoteSignPolicy;
  verifyCommitSignature?: (commit: Buffer, commitmeta: Buffer | null, keys: string[]) => boolean;
  verifySummarySignature?: (summary: Buffer, sig: Buffer | null, keys: string[]) => boolean;
  /** auto: use a static delta when one is advertised (bare-family repos only); require; disable. */
  staticDeltas?: 'auto' | 'disable' | 'require';
  /** Count body bytes here (the fetcher reports them). */
  stats?: PullStats;
}

export interface PullResult {
  refs: { ref: string; commit: Checksum }[];
  metadataFetched: number;
  contentFetched: number;
  bytes: number;
  seconds: number;
}

/** Objects stored per transaction before it is committed (so an interrupted pull keeps them). */
const BATCH_OBJECTS = 4000;
const BATCH_MS = 5000;
const STORE_QUEUE = 64;
/** Delta parts decoded at once, payload bytes decoded ahead, parts fetched ahead (see applyParts). */
const PART_DECODERS = 2;
const PART_DECODED_AHEAD = 64 * 1024 * 1024;
const PART_FETCH_AHEAD = 8;

/**
 * V8 optimizes a function with TurboFan, on its helper threads, once the function has used up
 * its "interrupt budget" of executed bytecode a few times: 67,584 bytes each by default (Node
 * 20). A delta pull runs its parsers and checks a few hundred to a few thousand times, and their
 * compiles (~40 functions, ~150 ms of CPU in the benchmark's delta pull) took the cores the
 * parts' xz processes needed. A pull starts with a budget 8 times larger (13 compiles, ~25 ms;
 * delta pulls, 22 interleaved: CPU medians 702 against 741 ms, wall 0.480 against 0.487 s), and
 * goes back to the default once it has WORKERS_FROM objects to fetch: a pull of thousands of
 * objects runs long enough for the compiles to pay (a full pull was 14 % slower with the larger
 * budget throughout).
 */
const V8_INTERRUPT_BUDGET = 67_584;
const SHORT_PULL_INTERRUPT_BUDGET = 8 * V8_INTERRUPT_BUDGET;

function setInterruptBudget(bytes: number): void {
  (createRequire(import.meta.url)('node:v8') as typeof import('node:v8')).setFlagsFromString(`--interrupt-budget=${bytes}`);
}

/**
 * Objects to fetch from which a pull verifies and writes them on the writer pool's worker(s)
 * (pullWorkers: one on two cores) instead of this thread: starting one costs ~80 ms of CPU. An
 * update of 1,338 objects gained from it (see pullWorkers); smaller pulls were not measured.
 */
const WORKERS_FROM = 1000;

export function newStats(): PullStats {
  return { phase: 'summary', metadataFetched: 0, contentFetched: 0, requested: 0, bytes: 0, deltaParts: 0, startedAt: Date.now() };
}


function corrupt(what: string, csum: string, why: string, cause?: unknown): PullObjectCorruptError {
  return new PullObjectCorruptError(`${what} ${csum} from the remote is corrupt: ${why}`, { object: csum, cause });
}

/** A directory's dirtree and dirmeta checksums. */
interface DirPair {
  tree: Checksum;
  meta: Checksum;
}

/**
 * What a pull's tree walk finds locally: the repository's objects (listed per directory, see
 * ObjectPresence) and what this pull's delta parts staged, which may still be in an uncommitted
 * batch (their dirtrees are read from memory).
 */
class LocalObjects {
  private readonly presence: ObjectPresence;

  constructor(private readonly repo: Repo, private readonly staged: StagedObjects) {
    this.presence = new ObjectPresence(repo);
  }

  has(c: Checksum, type: ObjectType): boolean {
    if (type === 'file' ? this.staged.content.has(c) : this.staged.metadata.has(`${c}.${type}`)) return true;
    return this.presence.has(c, type);
  }

  dirtree(c: Checksum): Buffer {
    return this.staged.metadata.get(`${c}.dirtree`) ?? this.repo.readMetadataBytes(c, 'dirtree');
  }
}

export class Puller {
  readonly stats: PullStats;
  private readonly limiter: Limiter;
  /** Content objects fetched or being fetched and not stored yet (bounds memory: each up to 1 MiB). */
  private readonly storing = new Limiter(STORE_QUEUE);
  private txn: Transaction;
  private txnObjects = 0;
  private txnStarted = Date.now();
  private readonly committing: Promise<number>[] = [];
  /** Downloads that run on while the pull goes on (guarded: they never reject); flush() waits. */
  private readonly background: Promise<void>[] = [];
  private readonly seen = new Set<string>();
  private readonly scanned = new Set<Checksum>();
  /** Commits stored by this pull (possibly still in an uncommitted batch). */
  private readonly storedCommits = new Map<Checksum, Buffer>();
  private error: unknown = null;
  private partDir: string;
  /** Objects requested through delta parts (stats.requested counts them too; the writer pool does not write them). */
  private deltaRequested = 0;
  /** For a commit, a complete one to compare its tree with in the walk (a delta's from-commit). */
  private readonly walkBase = new Map<Checksum, Checksum>();
  /** What delta parts staged, committed or not yet: the tree walk reads it instead of the repo. */
  private readonly deltaStaged: StagedObjects = { metadata: new Map(), content: new Set() };
  /** Starts the current ref's tree walk, while a delta's parts are applied (see applyParts). */
  private earlyWalk: (() => void) | null = null;

  constructor(
    private readonly repo: Repo,
    private readonly source: ObjectSource,
    private readonly opts: PullOptions,
  ) {
    this.stats = opts.stats ?? newStats();
    this.limiter = new Limiter(opts.concurrency ?? 16);
    this.txn = new Transaction(repo);
    this.partDir = partialDownloadDir(repo);
  }

  /** Back to V8's default interrupt budget (see SHORT_PULL_INTERRUPT_BUDGET), once. */
  private defaultBudget(): void {
    if (!this.shortBudget) return;
    this.shortBudget = false;
    setInterruptBudget(V8_INTERRUPT_BUDGET);
  }
  private shortBudget = false;

  async run(): Promise<PullResult> {
    const resolved: { ref: string; commit: Checksum }[] = [];
    setInterruptBudget(SHORT_PULL_INTERRUPT_BUDGET);
    this.shortBudget = true;
    // the writer pool's workers start only for a pull with enough objects to fetch (scanEntries)
    const release = holdWriterPool();
    try {
      const summary = await this.loadSummary();
      for (const spec of this.opts.refs) resolved.push({ ref: spec.ref, commit: await this.resolve(spec, summary) });
      this.stats.phase = 'metadata';
      const done: Checksum[] = [];
      for (const r of resolved) {
        await this.guard(async () => {
          const walk = (): Promise<void> => this.pullCommit(r.commit, r.ref, this.opts.depth ?? 0, done);
          // the walk may start while the delta's last parts still decode (see applyParts)
          let early: Promise<void> | null = null;
          this.earlyWalk = () => void (early ??= this.guard(walk));
          try {
            await this.maybeDelta(r.commit, r.ref, summary);
          } finally {
            this.earlyWalk = null;
            if (early) await early; // (a guarded step: it never rejects)
          }
          await walk(); // nothing left to do if the early walk ran
        });
        if (this.error) break;
      }
      this.stats.phase = 'committing';
      await this.flush();
      if (this.error) throw this.error;
      // every object is durable: the commits are complete, then the refs move
      if (!this.opts.commitMetadataOnly) for (const c of done) clearCommitPartial(this.repo, c);
      for (const r of resolved) {
        setRef(this.repo, this.opts.mirror || this.opts.remote === null ? null : this.opts.remote, r.ref, r.commit);
      }
      this.stats.phase = 'done';
    } catch (e) {
      await this.flush().catch(() => {});
      throw e;
    } finally {
      this.defaultBudget();
      release();
      await this.source.close().catch(() => {});
    }
    return {
      refs: resolved,
      metadataFetched: this.stats.metadataFetched,
      contentFetched: this.stats.contentFetched,
      bytes: this.stats.bytes,
      seconds: (Date.now() - this.stats.startedAt) / 1000,
    };
  }

  private async flush(): Promise<void> {
    await Promise.all(this.background);
    const last = this.txn;
    const all = [...this.committing, last.commit()];
    const rs = await Promise.allSettled(all);
    for (const r of rs) if (r.status === 'rejected') throw r.reason;
  }

  /** Runs a step; records the first failure and stops further work instead of rejecting. */
  private async guard(fn: () => Promise<void>): Promise<void> {
    if (this.error) return;
    try {
      await fn();
    } catch (e) {
      if (!this.error) this.error = e;
    }
  }

  private noteStored(): void {
    this.txnObjects++;
    if (this.txnObjects >= BATCH_OBJECTS || Date.now() - this.txnStarted > BATCH_MS) this.nextBatch();
  }

  /** Commits the current batch in the background and starts a new one. */
  private nextBatch(): void {
    const old = this.txn;
    this.txn = new Transaction(this.repo);
    this.txnObjects = 0;
    this.txnStarted = Date.now();
    this.commitInBackground(old);
  }

  /** Commits a batch while the pull goes on; flush() waits for it. */
  private commitInBackground(txn: Transaction): void {
    const p = txn.commit();
    p.catch(() => {});
    this.committing.push(p);
  }

  // ------------------------------------------------------------------ refs and summary

  private async loadSummary(): Promise<Summary | null> {
    const policy = this.opts.signPolicy;
    const { bytes, sig } = await this.source.summary(policy?.verifySummary ?? false);
    if (policy?.verifySummary) {
      if (!bytes) throw new PullSignatureError(`${this.source.description}: signature verification of the summary is on but the remote has no summary`);
      const ok = this.opts.verifySummarySignature?.(bytes, sig, policy.keys) ?? false;
      if (!ok) throw new PullSignatureError(`${this.source.description}: summary.sig is missing or not signed by a trusted key`);
    }
    if (!bytes) return null;
    try {
      return parseSummary(bytes);
    } catch (e) {
      if (e instanceof FormatError) throw new PullSummaryError(`${this.source.description}: summary is malformed: ${e.message}`, { cause: e });
      throw e;
    }
  }

  private async resolve(spec: PullRefSpec, summary: Summary | null): Promise<Checksum> {
    validateRefName(spec.ref);
    if (spec.commit) return spec.commit;
    if (summary) {
      const r = summary.refs.find((x) => x.name === spec.ref);
      if (!r) throw new PullRefNotFoundError(`${this.source.description}: no ref "${spec.ref}" in the remote summary`, { ref: spec.ref });
      return r.commit;
    }
    const text = await this.source.readRef(spec.ref);
    if (text === null) throw new PullRefNotFoundError(`${this.source.description}: no ref "${spec.ref}"`, { ref: spec.ref });
    if (!isChecksum(text)) throw new PullSummaryError(`${this.source.description}: refs/heads/${spec.ref} is not a checksum`, { ref: spec.ref });
    return text;
  }

  // ------------------------------------------------------------------ static deltas (spec §5.8)

  private deltasUsable(): boolean {
    const mode = this.opts.staticDeltas ?? 'auto';
    if (mode === 'disable' || this.opts.commitMetadataOnly) return false;
    if (this.repo.archive) {
      if (mode === 'require') throw new PullDeltaError(`${this.repo.path}: static deltas cannot be used in an archive repository`);
      return false;
    }
    return true;
  }

  private hasComplete(c: Checksum | null): boolean {
    return c !== null && this.repo.hasObject(c, 'commit') && !this.repo.isCommitPartial(c);
  }

  /** The commit the local ref this pull writes for `ref` points at now, if any. */
  private currentCommit(ref: string): Checksum | null {
    const refName = this.opts.mirror || this.opts.remote === null ? ref : `${this.opts.remote}:${ref}`;
    try {
      return resolveRev(this.repo, refName, { allowMissing: true });
    } catch {
      return null;
    }
  }

  /** Picks a delta to `to`: from a commit we have (the current ref first), else from scratch. */
  private async findDelta(to: Checksum, ref: string, summary: Summary | null): Promise<{ from: Checksum | null; superblock: Checksum | null } | null> {
    const current = this.currentCommit(ref);
    // the summary's own list, when it names a delta from the commit this repo is at, is the one
    // the index would pick: no round trip for the index (the same summary vouches for both)
    const direct = summary?.deltas.find((d) => d.to === to && d.from !== null && d.from === current && this.hasComplete(d.from));
    if (direct) return { from: direct.from, superblock: direct.superblockChecksum };
    let candidates: readonly SummaryDelta[] | null = null;
    if (summary?.indexedDeltas) {
      const idx = await this.limiter.run(() => this.source.file(deltaIndexRelPath(to), MAX_SUPERBLOCK_SIZE, true));
      if (idx) {
        try {
          candidates = [...parseDeltaIndex(idx)].map(([name, superblockChecksum]) => ({ ...parseDeltaName(name), superblockChecksum }));
        } catch (e) {
          if (e instanceof FormatError) throw new PullSummaryError(`delta index for ${to} is malformed: ${e.message}`, { cause: e });
          throw e;
        }
      }
    }
    if (candidates === null && summary && summary.deltas.length > 0) candidates = summary.deltas;
    if (candidates !== null) {
      const usable = candidates.filter((d) => d.to === to && (d.from === null || this.hasComplete(d.from)));
      const pick = usable.find((d) => d.from !== null && d.from === current) ?? usable.find((d) => d.from !== null) ?? usable.find((d) => d.from === null);
      return pick ? { from: pick.from, superblock: pick.superblockChecksum } : null;
    }
    // no summary entry: guess the path from the current ref, else from scratch (a 404 means none)
    return { from: this.hasComplete(current) && current !== to ? current : null, superblock: null };
  }

  private async maybeDelta(to: Checksum, ref: string, summary: Summary | null): Promise<void> {
    if (!this.deltasUsable() || this.hasComplete(to)) return;
    const required = this.opts.staticDeltas === 'require';
    const found = await this.findDelta(to, ref, summary);
    const rel = found ? `${deltaRelDir(found.from, to)}/superblock` : null;
    const bytes = rel ? await this.limiter.run(() => this.source.file(rel, MAX_SUPERBLOCK_SIZE, true)) : null;
    if (!found || !bytes) {
      if (required) throw new PullDeltaError(`${this.source.description}: no static delta to ${to}`, { object: to });
      return;
    }
    if (found.superblock && sha256(bytes) !== found.superblock) {
      throw new PullDeltaError(`static delta superblock ${rel} does not match the checksum the remote advertised`, { object: to });
    }
    let sb: Superblock;
    try {
      sb = parseSuperblock(bytes);
    } catch (e) {
      throw new PullDeltaError(`static delta superblock ${rel} is invalid: ${(e as Error).message}`, { object: to, cause: e });
    }
    if (sb.to !== to || sb.from !== found.from) throw new PullDeltaError(`static delta ${rel} is for ${sb.from ?? 'scratch'}-${sb.to}, not the requested commit`, { object: to });
    await this.applyDelta(sb, ref);
  }

  private async applyDelta(sb: Superblock, ref: string): Promise<void> {
    const to = sb.to;
    const dir = deltaRelDir(sb.from, to);
    if (!this.repo.hasObject(to, 'commit')) {
      let meta: Buffer | null = null;
      const carried = superblockCommitmeta(sb);
      // the commitmeta (detached metadata: signatures) is waited for only when the commit's
      // signature is to be checked; else it is fetched beside the parts (one round trip less
      // before them) and stored before the pull ends (flush waits for it)
      const late = !carried && !this.opts.signPolicy?.verifyCommits;
      if (carried) meta = serializeMetadata(carried);
      else if (!late) meta = await this.fetchMeta(to, 'commitmeta', true);
      this.checkSignature(to, sb.commitBytes, meta);
      // as for a commit fetched loose: one bound to other branches is not taken for this one
      this.checkBinding(to, sb.commitBytes, ref);
      markCommitPartial(this.repo, to);
      if (meta) await this.store(to, 'commitmeta', meta);
      await this.store(to, 'commit', sb.commitBytes);
      this.storedCommits.set(to, sb.commitBytes);
      // committed now (it is marked partial), while the parts download and decode, rather than
      // by flush(): a syncfs pair less at the end of the pull
      this.nextBatch();
      // the commit (and commitmeta, if it is carried) came in the superblock; a fetched
      // commitmeta was counted as fetched by fetchMeta
      const carriedObjects = carried ? 2 : 1;
      this.stats.requested += carriedObjects + (meta && !carried ? 1 : 0);
      this.stats.metadataFetched += carriedObjects;
      if (late) {
        this.background.push(this.guard(async () => {
          const m = await this.fetchMeta(to, 'commitmeta', true);
          if (!m) return;
          this.stats.requested++;
          await this.store(to, 'commitmeta', m);
        }));
      }
    }
    if (sb.from) this.walkBase.set(to, sb.from);
    // fallback objects are fetched once the first parts are in (see applyParts); the walk need
    // not wait for them (they are "seen", as any object being fetched), flush() does
    const fallbacks: Checksum[] = [];
    for (const f of sb.fallbacks) {
      if (f.type !== 'file' || this.seen.has(`${f.checksum}.file`)) continue;
      this.seen.add(`${f.checksum}.file`);
      if (this.repo.hasObject(f.checksum, 'file')) continue;
      this.stats.requested++;
      fallbacks.push(f.checksum);
    }
    let fallbacksStarted = false;
    const startFallbacks = (): void => {
      if (fallbacksStarted) return;
      fallbacksStarted = true;
      for (const c of fallbacks) this.background.push(this.guard(() => this.pullContent(c)));
    };
    try {
      await this.guard(() => this.applyParts(sb, dir, startFallbacks));
    } finally {
      startFallbacks();
    }
    if (this.error) throw this.error;
  }

  /**
   * A delta's parts are applied one at a time on this thread, each as soon as it is decoded.
   * Meanwhile the others are decoded, PART_DECODERS at a time (an xz process each), as far
   * ahead as PART_DECODED_AHEAD bytes of payload, and fetched PART_FETCH_AHEAD parts ahead.
   * Decoding starts with the smallest part and the largest, then goes on from both ends: the
   * small one is soon ready to apply, and the large one, slow to decode, does not come last
   * (new files come in parts that are quick to decode and slow to apply, executables and
   * bsdiff'd files in parts that are the other way round). The parts stage into their own batch
   * transactions: an interrupted pull keeps what its finished parts staged, and the next one
   * skips the parts whose objects are all there.
   *
   * `partsIn` is called once the parts of the first fetch window are in (or have failed). The
   * delta's fallback objects are fetched from then on: a fallback object arriving beside the
   * parts was inflated, hashed and written on this thread while the parts' bodies waited for it
   * (~20 ms later to the first decode); after, it is stored while the parts decode.
   */
  private async applyParts(sb: Superblock, dir: string, partsIn: () => void): Promise<void> {
    const todo = sb.parts.flatMap((hdr, i) => (partSatisfied(this.repo, hdr) ? [] : [i]));
    for (const i of todo) {
      this.stats.requested += sb.parts[i]!.objects.length;
      this.deltaRequested += sb.parts[i]!.objects.length;
    }
    const bySize = [...todo].sort((x, y) => sb.parts[x]!.size - sb.parts[y]!.size);
    const order: number[] = [];
    while (bySize.length > 0) order.push(order.length % 2 === 0 ? bySize.shift()! : bySize.pop()!);
    const fetched = new Map<number, Promise<Buffer>>();
    const early = new Map<number, EarlyPartDecode>();
    // `decodeNow`: the part is decoded as soon as it is in, so its decode starts as it downloads
    // (parts fetched ahead are decoded later, from the whole file)
    const fetch = (i: number, decodeNow = false): Promise<Buffer> => {
      let p = fetched.get(i);
      if (!p) {
        const inline = superblockInlinePart(sb, i);
        const decode = !inline && decodeNow ? startPartDecode(sb, i) : null;
        if (decode) early.set(i, decode);
        p = inline
          ? Promise.resolve(inline)
          : this.limiter.run(async () => (await this.source.file(`${dir}/${i}`, sb.parts[i]!.size, false, decode ? (c, at) => decode.onChunk(c, at) : undefined))!);
        p.catch(() => decode?.abort()); // else awaited when decoded
        fetched.set(i, p);
      }
      return p;
    };
    const ready: { i: number; payload: PartPayload }[] = [];
    let failed = null as { i: number; error: unknown } | null; // set by a decode that fails
    let wake: (() => void) | null = null;
    let next = 0;
    let decoding = 0;
    let ahead = 0; // payload bytes decoding or decoded, not applied yet
    let stopped = false;
    const pump = (): void => {
      const first = next;
      while (!stopped && next < order.length && decoding < PART_DECODERS && (ahead === 0 || ahead + sb.parts[order[next]!]!.usize <= PART_DECODED_AHEAD)) {
        const i = order[next]!;
        next++;
        decoding++;
        ahead += sb.parts[i]!.usize;
        fetch(i, true)
          .then((b) => decodeDeltaPart(sb, i, b, early.get(i)))
          .then((payload) => void ready.push({ i, payload }), (error: unknown) => void (failed ??= { i, error }))
          .finally(() => {
            fetched.delete(i);
            early.delete(i);
            decoding--;
            wake?.();
            pump();
          });
      }
      // the parts decoded next are fetched ahead (requested after the ones decoding now)
      if (next > first) for (const f of order.slice(first, first + PART_FETCH_AHEAD)) fetch(f);
    };
    pump();
    void Promise.allSettled([...fetched.values()]).then(partsIn);
    // the parts' own batches (the pull's batch may be committed while a part runs)
    let txn = new Transaction(this.repo);
    let staged = 0;
    let started = Date.now();
    const nextPartBatch = (): void => {
      this.commitInBackground(txn);
      txn = new Transaction(this.repo);
      staged = 0;
      started = Date.now();
    };
    const refused = (i: number, e: unknown): unknown =>
      e instanceof CairnError && e.code.startsWith('DELTA_') ? new PullDeltaError(`static delta ${dir} part ${i}: ${e.message}`, { object: sb.to, cause: e }) : e;
    // the parts that carry metadata (dirtrees, dirmetas): once they are applied, the tree walk
    // can read every directory of the new commit
    const metaParts = new Set(todo.filter((i) => sb.parts[i]!.objects.some((o) => o.type !== 'file')));
    const applied = new Set<number>();
    try {
      for (let n = 0; n < todo.length; n++) {
        if (ready.length === 0 && !failed && this.earlyWalk && [...metaParts].every((i) => applied.has(i))) {
          // Nothing to apply yet: the walk runs now instead of after the last part, taking the
          // content the parts still to come list as being fetched (as the fallback objects are).
          // Those parts are applied before the pull ends, or it fails; each lists its objects
          // exactly (executeDeltaPart), and each is verified as it is staged.
          for (const i of todo) {
            if (applied.has(i)) continue;
            for (const o of sb.parts[i]!.objects) if (o.type === 'file') this.seen.add(`${o.checksum}.file`);
          }
          const walk = this.earlyWalk;
          this.earlyWalk = null;
          walk();
        }
        if (ready.length === 0 && !failed && staged > 0) {
          // still nothing to apply: what the applied parts staged is committed now (its renames
          // into objects/ are most of a commit's work on this thread), not at the end
          nextPartBatch();
        }
        while (ready.length === 0 && !failed) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        if (failed) throw refused(failed.i, failed.error);
        if (this.error) return;
        const { i, payload } = ready.shift()!;
        const hdr = sb.parts[i]!;
        try {
          // the part is not all there (partSatisfied): its objects are written without a lookup each
          await executeDeltaPart(this.repo, txn, sb, i, payload, { into: this.deltaStaged, unchecked: true });
        } catch (e) {
          throw refused(i, e);
        }
        applied.add(i);
        ahead -= hdr.usize;
        pump();
        this.stats.deltaParts++;
        this.stats.contentFetched += hdr.objects.length;
        staged += hdr.objects.length;
        if (n + 1 < todo.length && (staged >= BATCH_OBJECTS || Date.now() - started > BATCH_MS)) nextPartBatch();
      }
    } finally {
      stopped = true;
      // what the finished parts staged is verified: kept, even when a later part is refused
      this.commitInBackground(txn);
    }
  }

  // ------------------------------------------------------------------ commits

  private async pullCommit(c: Checksum, ref: string | null, depth: number, done: Checksum[], optional = false): Promise<void> {
    if (this.scanned.has(c)) return;
    this.scanned.add(c);
    let bytes: Buffer;
    const complete = this.repo.hasObject(c, 'commit') && !this.repo.isCommitPartial(c);
    const stored = this.storedCommits.get(c);
    if (stored) bytes = stored;
    else if (this.repo.hasObject(c, 'commit')) {
      bytes = this.repo.readMetadataBytes(c, 'commit');
    } else {
      const [meta, commit] = await Promise.all([this.fetchMeta(c, 'commitmeta', true), this.fetchMeta(c, 'commit', optional)]);
      if (!commit) return; // an optional parent the remote no longer has
      this.stats.requested += meta ? 2 : 1;
      bytes = commit;
      this.checkSignature(c, bytes, meta);
      this.checkBinding(c, bytes, ref);
      markCommitPartial(this.repo, c);
      if (meta) await this.store(c, 'commitmeta', meta);
      await this.store(c, 'commit', bytes);
      this.storedCommits.set(c, bytes);
    }
    // trusted: fetched bytes were checked strictly in fetchMeta, local ones when they were stored
    const commit = parseCommit(bytes, true);
    if (!complete) {
      if (!this.opts.commitMetadataOnly) {
        // what the repo has, taken after the delta (if any) was applied
        const local = new LocalObjects(this.repo, this.deltaStaged);
        const baseCommit = this.walkBase.get(c) ?? (ref !== null ? this.currentCommit(ref) : null);
        const base = baseCommit !== c && this.hasComplete(baseCommit) ? parseCommit(this.repo.readMetadataBytes(baseCommit!, 'commit'), true) : null;
        await this.scanDir(commit.rootTree, commit.rootMeta, local, base ? { tree: base.rootTree, meta: base.rootMeta } : null);
      }
      done.push(c);
    }
    if (depth !== 0 && commit.parent) await this.pullCommit(commit.parent, null, depth - 1, done, true);
  }

  private checkSignature(c: Checksum, bytes: Buffer, meta: Buffer | null): void {
    const policy = this.opts.signPolicy;
    if (!policy?.verifyCommits) return;
    const verify = this.opts.verifyCommitSignature;
    if (!meta) throw new PullSignatureError(`commit ${c} is not signed (no detached metadata) and the remote requires ed25519 signatures`, { object: c });
    if (!verify || !verify(bytes, meta, policy.keys)) {
      throw new PullSignatureError(`commit ${c} has no valid ed25519 signature from a trusted key`, { object: c });
    }
  }

  private checkBinding(c: Checksum, bytes: Buffer, ref: string | null): void {
    if (ref === null) return;
    const binding = parseCommit(bytes, true).metadata.find(([k]) => k === 'ostree.ref-binding')?.[1];
    if (!binding || binding.type !== 'as') return;
    const refs = binding.value as string[];
    if (!refs.includes(ref)) {
      throw new PullObjectCorruptError(`commit ${c} is bound to ${refs.map((r) => `"${r}"`).join(', ')}, not to the requested ref "${ref}"`, { object: c, ref });
    }
  }

  // ------------------------------------------------------------------ tree walk

  /**
   * Walks a commit's tree: what the repo has is read here, what it lacks is fetched. With `base`,
   * the root of a complete commit in the repo (the delta's from-commit, or what the ref points
   * at), a subtree or file identical to the one at the same path in it is not looked at: a
   * complete commit has every object under it. An update then reads only the directories that
   * changed.
   */
  private async scanDir(tree: Checksum, meta: Checksum, presence: LocalObjects, base: DirPair | null): Promise<void> {
    const jobs: Promise<void>[] = [];
    try {
      this.scanLocal(tree, meta, presence, jobs, base);
    } catch (e) {
      if (!this.error) this.error = e;
    }
    await Promise.all(jobs);
  }

  /**
   * The synchronous part of the walk: a directory whose dirtree the repo has is read and walked
   * at once (no promise per directory: after a delta, or for an update, that is most of the
   * tree); each object the repo lacks becomes a job in `jobs`, and a fetched dirtree's job walks
   * its entries the same way.
   */
  private scanLocal(tree: Checksum, meta: Checksum, presence: LocalObjects, jobs: Promise<void>[], base: DirPair | null): void {
    if (this.error) return;
    if (meta !== base?.meta && !this.seen.has(`${meta}.dirmeta`)) {
      this.seen.add(`${meta}.dirmeta`);
      if (!presence.has(meta, 'dirmeta')) {
        this.stats.requested++;
        jobs.push(this.guard(async () => {
          const b = (await this.fetchMeta(meta, 'dirmeta', false))!;
          await this.store(meta, 'dirmeta', b);
        }));
      }
    }
    if (tree === base?.tree) return;
    if (this.seen.has(`${tree}.dirtree`)) return;
    this.seen.add(`${tree}.dirtree`);
    if (presence.has(tree, 'dirtree')) {
      this.scanEntries(parseDirtree(presence.dirtree(tree)), presence, jobs, base);
      return;
    }
    this.stats.requested++;
    jobs.push(this.guard(async () => {
      const bytes = (await this.fetchMeta(tree, 'dirtree', false))!;
      await this.store(tree, 'dirtree', bytes);
      const sub: Promise<void>[] = [];
      this.scanEntries(parseDirtree(bytes), presence, sub, base);
      await Promise.all(sub);
    }));
  }

  private scanEntries(t: Dirtree, presence: LocalObjects, jobs: Promise<void>[], base: DirPair | null): void {
    if (this.stats.requested - this.deltaRequested >= WORKERS_FROM) {
      startWriterPool(pullWorkers);
      this.defaultBudget();
    }
    // the base's directory at this path: its files and subdirectories by name
    const old = base ? parseDirtree(presence.dirtree(base.tree)) : null;
    const oldFiles = old && old.files.length > 0 ? new Map(old.files.map((f) => [f.name, f.checksum])) : null;
    const oldDirs = old && old.dirs.length > 0 ? new Map(old.dirs.map((d) => [d.name, d])) : null;
    for (const f of t.files) {
      if (oldFiles?.get(f.name) === f.checksum) continue;
      if (this.seen.has(`${f.checksum}.file`)) continue;
      this.seen.add(`${f.checksum}.file`);
      if (presence.has(f.checksum, 'file')) continue;
      this.stats.requested++;
      jobs.push(this.guard(() => this.pullContent(f.checksum)));
    }
    for (const d of t.dirs) this.scanLocal(d.tree, d.meta, presence, jobs, oldDirs?.get(d.name) ?? null);
  }

  // ------------------------------------------------------------------ fetch + verify + store

  private async store(c: Checksum, type: ObjectType, bytes: Buffer): Promise<void> {
    // register the write before the batch may rotate, so the old batch's commit waits for it
    const p = this.txn.writeVerifiedMetadataAsync(type, bytes, c);
    this.noteStored();
    await p;
  }

  /** Streamed writes register late in a transaction: give each its own, committed at once. */
  private async ownTransaction<T>(fn: (t: Transaction) => Promise<T>): Promise<T> {
    const t = new Transaction(this.repo);
    try {
      const r = await fn(t);
      await t.commit();
      return r;
    } catch (e) {
      await t.abort();
      throw e;
    }
  }

  private async fetchMeta(c: Checksum, type: ObjectType, optional: boolean): Promise<Buffer | null> {
    if (this.error) throw this.error;
    const bytes = await this.limiter.run(() => this.source.metadata(c, type, optional));
    if (!bytes) return null;
    if (type !== 'commitmeta') {
      const got = sha256(bytes);
      if (got !== c) throw corrupt(`${type} object`, c, `its bytes hash to ${got}`);
    }
    try {
      if (type === 'commit') parseCommit(bytes);
      else if (type === 'dirtree') checkDirtree(bytes); // its walk parses it (checkDirtree: the same checks, no strings)
      else if (type === 'dirmeta') parseDirmeta(bytes);
      else parseMetadata(bytes);
    } catch (e) {
      if (e instanceof FormatError) throw corrupt(`${type} object`, c, e.message, e);
      throw e;
    }
    this.stats.metadataFetched++;
    return bytes;
  }

  private async pullContent(c: Checksum): Promise<void> {
    if (this.error) return;
    // the network slot is freed once the body is here; storing is bounded on its own
    await this.storing.run(async () => {
      if (this.error) return;
      const part = path.join(this.partDir, `${c}.filez.part`);
      const payload = await this.limiter.run(() => this.source.content(c, part));
      if (this.error) return;
      await this.storeContent(c, payload, part);
    });
    this.stats.contentFetched++;
  }

  private async storeContent(c: Checksum, payload: ContentPayload, part: string): Promise<void> {
    // always write into the current batch at the moment of the call: an earlier one may be committed by now
    if (payload.kind === 'object') {
      const o = payload.object;
      if (o.size <= SMALL_FILE) {
        const content = await o.read();
        const got = sha256(fileChecksumPrefix(o.header), content);
        if (got !== c) throw corrupt('file object', c, `its content hashes to ${got}`);
        const p = this.txn.writeVerifiedContentAsync(c, o.header, content);
        this.noteStored();
        await p;
      } else {
        const got = await this.ownTransaction((t) => t.writeContentStream(o.header, o.stream(), o.size));
        if (got !== c) throw corrupt('file object', c, `its content hashes to ${got}`);
      }
      return;
    }
    const r = payload.result;
    if (r.kind === 'buffer') {
      // verified and written on a writer-pool worker
      const p = this.txn.storeFilez(c, r.bytes);
      this.noteStored();
      try {
        await p;
      } catch (e) {
        if (e instanceof ObjectCorruptError) throw corrupt('file object', c, e.message, e);
        throw e;
      }
      return;
    }
    // large object on disk: verified by streaming, then moved in (archive), or unpacked while
    // being verified (bare: one pass of inflate and hash, not two)
    try {
      if (this.repo.archive) {
        await inspectFilezFile(c, r.file);
        const p = this.txn.writeVerifiedFilezFile(c, r.file);
        this.noteStored();
        await p;
      } else {
        await this.ownTransaction((t) => t.unpackFilezFile(c, r.file));
        dropPartialDownload(part);
      }
    } catch (e) {
      if (e instanceof ObjectCorruptError) {
        dropPartialDownload(r.file);
        throw corrupt('file object', c, e.message, e);
      }
      throw e;
    }
  }
}

/** Splits REF[@COMMIT] arguments. */
export function parsePullRefs(args: readonly string[]): PullRefSpec[] {
  return args.map((a) => {
    const at = a.lastIndexOf('@');
    if (at < 0) return { ref: a };
    const commit = a.slice(at + 1);
    if (!isChecksum(commit)) throw new PullRefNotFoundError(`"${a}": "${commit}" is not a full commit checksum`, { ref: a });
    return { ref: a.slice(0, at), commit };
  });
}

export { CairnError };
