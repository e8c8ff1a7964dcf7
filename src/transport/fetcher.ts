/**
 * The fetcher port (what pull needs from a remote: "GET this path, bounded") and its HTTP(S)
 * implementation over undici 7. Every response is size-capped while it streams, stalled or
 * dripping responses time out, redirects are followed a bounded number of times with loops
 * refused, transient failures are retried, and large bodies spill to a file that a later
 * attempt (or a later pull) resumes with a Range request.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { Agent, Dispatcher, EnvHttpProxyAgent, buildConnector as BuildConnector } from 'undici';
import { type RemoteTls, readAt } from '../repo/index.js';
import { tlsOptionsFor } from './trust.js';
import {
  type CairnError, PullHttpError, PullNetworkError, PullRedirectError, PullTimeoutError, PullTooLargeError, noSpace,
} from '../errors.js';

/**
 * undici's Agent and connector: from the one-file build of them beside the CLI bundle
 * (scripts/bundle.mjs), or else (running from the sources) from the package.
 */
function undiciAgent(load: NodeJS.Require): { Agent: typeof Agent; buildConnector: typeof BuildConnector } {
  try {
    return load('./undici-agent.js') as { Agent: typeof Agent; buildConnector: typeof BuildConnector };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw e;
    return { Agent: load('undici/lib/dispatcher/agent.js') as typeof Agent, buildConnector: load('undici/lib/core/connect.js') as typeof BuildConnector };
  }
}

/**
 * undici parses HTTP with llhttp compiled to WebAssembly, and V8 recompiles its hot functions
 * with TurboFan on background threads: ~0.2 s of CPU in a delta pull, taken while xz decodes
 * the parts on the same cores. V8's --liftoff-only keeps the baseline code (a full pull's ~7,600
 * responses cost no more CPU with it). It is set here, once undici is loaded and before its
 * WebAssembly is compiled, not on node's command line: V8 refuses code caches made under other
 * flags, Node's own for its built-in modules included, and a pull compiled each built-in module
 * it loaded from source (~15 ms of its start-up). The flag stays set for the rest of the process
 * (it is V8's, process-wide); the CLI's entry point loads what a pull needs before a fetcher is made.
 */
function wasmBaselineOnly(load: NodeJS.Require): void {
  if (baselineOnly) return;
  baselineOnly = true;
  (load('node:v8') as typeof import('node:v8')).setFlagsFromString('--liftoff-only');
}
let baselineOnly = false;

/** Result of a fetch: the body in memory, or (large bodies / resumable downloads) in `file`. */
export type FetchResult = { kind: 'buffer'; bytes: Buffer } | { kind: 'file'; file: string; size: number };

export interface FetchRequest {
  /** Path relative to the remote's base URL, e.g. "objects/ab/cdef….dirtree". */
  rel: string;
  /** Hard cap on the body (the attack: an endless or huge response exhausting memory or disk). */
  maxBytes: number;
  /** Resolve to null on 404 instead of failing. */
  optional?: boolean;
  /**
   * Where a body larger than `spillAbove` bytes is streamed; if the file already holds a prefix
   * (an interrupted earlier download of the same immutable object) it is resumed with Range.
   */
  partFile?: string;
  spillAbove?: number;
  /**
   * Called with the first bytes of the body (at least `prefixBytes`, or the whole body if shorter):
   * returns a tighter cap for the total size, or throws to refuse the body early.
   */
  capFromPrefix?: (prefix: Buffer) => number;
  prefixBytes?: (prefix: Buffer) => number;
  /**
   * Called with each chunk of a 200/206 body as it arrives, `at` being its offset in the file,
   * before anything about the body is checked; a retried request's body starts again. Must not
   * throw.
   */
  onChunk?: (chunk: Buffer, at: number) => void;
}

export interface Fetcher {
  fetch(req: FetchRequest): Promise<FetchResult | null>;
  close(): Promise<void>;
}

export interface HttpFetcherOptions {
  /** Parallel connections per origin. */
  connections?: number;
  /** A request with no bytes for this long fails (ms). */
  idleTimeoutMs?: number;
  /** curl-style low-speed limit: fewer than lowSpeedLimit bytes/s over lowSpeedTimeMs fails. */
  lowSpeedLimit?: number;
  lowSpeedTimeMs?: number;
  /** Redirects followed per request before giving up. */
  maxRedirects?: number;
  /** Retries of transient failures (connection reset, truncated body, timeout, 5xx). */
  retries?: number;
  /** Called as body bytes arrive. */
  onBytes?: (n: number) => void;
  /** Called once per HTTP request (tests, logs). */
  onRequest?: (r: { url: string; range: string | null }) => void;
  /** The remote's TLS settings (its `tls-*` options). */
  tls?: RemoteTls;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_REDIRECTS = 5;

function proxyConfigured(): boolean {
  return ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'].some((k) => (process.env[k] ?? '') !== '');
}

class Transient extends Error {
  constructor(readonly error: CairnError) {
    super(error.message);
  }
}

export class HttpFetcher implements Fetcher {
  private readonly dispatcher: Dispatcher;
  private readonly base: URL;
  private readonly idle: number;
  private readonly lowLimit: number;
  private readonly lowTime: number;
  private readonly maxRedirects: number;
  private readonly retries: number;

  constructor(baseUrl: string, private readonly opts: HttpFetcherOptions = {}) {
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    this.idle = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.lowLimit = opts.lowSpeedLimit ?? 0;
    this.lowTime = opts.lowSpeedTimeMs ?? 30_000;
    this.maxRedirects = opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    this.retries = opts.retries ?? 2;
    const common = {
      connections: opts.connections ?? 8,
      headersTimeout: this.idle,
      bodyTimeout: this.idle,
      keepAliveTimeout: 10_000,
    };
    // undici is loaded here, not at import time. Without a proxy, only its Agent: the index also
    // loads fetch, WebSocket, caches and mocks (60 ms of start-up, against 25 for the Agent).
    // HTTP_PROXY / HTTPS_PROXY / NO_PROXY are honoured through undici's EnvHttpProxyAgent, which
    // needs the whole package (its tunnels use the connect() API the index adds to dispatchers).
    // TLS settings other than Node's defaults (trust.ts) go into every TLS connection: to the
    // origin, to a host it redirects to, through or to a proxy.
    const load = createRequire(import.meta.url);
    const tlsOptions = tlsOptionsFor(opts.tls);
    if (proxyConfigured()) {
      const tls = tlsOptions ? tlsOptions() : {};
      this.dispatcher = new (load('undici') as { EnvHttpProxyAgent: typeof EnvHttpProxyAgent }).EnvHttpProxyAgent({
        ...common, connect: tls, requestTls: tls, proxyTls: tls,
      });
      wasmBaselineOnly(load);
    } else {
      const { Agent: Agent_, buildConnector } = undiciAgent(load);
      wasmBaselineOnly(load);
      let plain: BuildConnector.connector | null = null;
      let secure: BuildConnector.connector | null = null;
      this.dispatcher = new Agent_({
        ...common,
        connect: (o, cb) => {
          if (o.protocol !== 'https:') return (plain ??= buildConnector({}))(o, cb);
          return (secure ??= buildConnector(tlsOptions ? { ...tlsOptions() } : {}))(o, (err, socket) => {
            socket?.on('error', (e: NodeJS.ErrnoException) => {
              if (e.code?.startsWith('ERR_SSL_')) this.tlsAlerts.set(originKey(o.hostname, o.port), e);
            });
            cb(err, socket as never);
          });
        },
      });
    }
  }

  /**
   * The last TLS alert a server sent, per host:port. With TLS 1.3 a server that refuses the
   * client (one with no certificate, say) does so after the handshake, and undici reports only
   * that the connection closed: the alert, seen on the socket, says why.
   */
  private readonly tlsAlerts = new Map<string, NodeJS.ErrnoException>();

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /**
   * Names in each part-file directory when this fetcher first looked, plus those it made since:
   * a pull asks for thousands of objects that have no partial download, and a stat each was
   * ~30 ms of its main thread.
   */
  private readonly knownParts = new Map<string, Set<string>>();

  private partsIn(file: string): Set<string> {
    const dir = path.dirname(file);
    let names = this.knownParts.get(dir);
    if (!names) {
      names = new Set(fs.existsSync(dir) ? fs.readdirSync(dir) : []);
      this.knownParts.set(dir, names);
    }
    return names;
  }

  private mayHavePart(file: string): boolean {
    return this.partsIn(file).has(path.basename(file));
  }

  async fetch(req: FetchRequest): Promise<FetchResult | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.fetchOnce(req);
      } catch (e) {
        if (e instanceof Transient) {
          if (attempt < this.retries) {
            await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
            continue;
          }
          throw e.error;
        }
        throw e;
      }
    }
  }

  private async fetchOnce(req: FetchRequest): Promise<FetchResult | null> {
    let url = new URL(req.rel, this.base);
    const seen = new Set<string>([url.href]);
    let have = 0;
    if (req.partFile && this.mayHavePart(req.partFile)) have = fs.statSync(req.partFile, { throwIfNoEntry: false })?.size ?? 0;
    for (let hops = 0; ; hops++) {
      const range = have > 0 ? `bytes=${have}-` : null;
      this.opts.onRequest?.({ url: url.href, range });
      const { status, headers, result } = await this.exchange(url, req, have);
      if (result) return result;
      if (status >= 300 && status < 400 && status !== 304) {
        const loc = headers.location;
        const where = Array.isArray(loc) ? loc[0] : loc;
        if (!where) throw new PullHttpError(`${url.href}: HTTP ${status} without a Location`, { url: url.href });
        const next = new URL(where, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new PullRedirectError(`${url.href}: redirect to unsupported URL ${next.href}`, { url: url.href });
        }
        if (seen.has(next.href)) throw new PullRedirectError(`${url.href}: redirect loop (back to ${next.href})`, { url: url.href });
        if (hops + 1 > this.maxRedirects) throw new PullRedirectError(`${url.href}: more than ${this.maxRedirects} redirects`, { url: url.href });
        seen.add(next.href);
        url = next;
        continue;
      }
      if (status === 404 || status === 410) {
        if (req.optional) return null;
        throw new PullHttpError(`${url.href}: not found on the server (HTTP ${status})`, { url: url.href });
      }
      if (status === 416 && have > 0 && req.partFile) {
        // the partial file is not a prefix the server recognises: start over
        fs.rmSync(req.partFile, { force: true });
        have = 0;
        continue;
      }
      const err = new PullHttpError(`${url.href}: server answered HTTP ${status}`, { url: url.href });
      if (status >= 500 || status === 408 || status === 429) throw new Transient(err);
      throw err;
    }
  }

  /**
   * One request through undici's dispatch API: the body's chunks go straight into a
   * BodyCollector (no Readable stream, async iterator or AbortController per request, which
   * were a large share of a pull's main-thread time). 200 and 206 give a result; any other
   * status gives its headers, with its (bounded) body read and dropped so that the connection
   * stays usable.
   */
  private exchange(url: URL, req: FetchRequest, have: number): Promise<{ status: number; headers: IncomingHttpHeaders; result: FetchResult | null }> {
    const href = url.href;
    const range = have > 0 ? `bytes=${have}-` : null;
    return new Promise((resolve, reject) => {
      let status = 0;
      let headers: IncomingHttpHeaders = {};
      let body: BodyCollector | null = null;
      let dropped = 0;
      let failed: Error | null = null;
      let controller: Dispatcher.DispatchController | null = null;
      let watchdog: NodeJS.Timeout | null = null;
      const settle = (): void => {
        if (watchdog) clearInterval(watchdog);
        body?.close();
      };
      const fail = (e: unknown): void => {
        if (failed) return;
        failed = mapError(e, href, this.tlsAlerts);
        settle();
        reject(failed);
        if (controller && !controller.aborted) controller.abort(failed);
      };
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: (c) => {
          controller = c;
        },
        onResponseStart: (_c, code, h) => {
          status = code;
          headers = h;
          if (code !== 200 && code !== 206) return;
          try {
            let offset = 0;
            if (code === 206) {
              const cr = String(h['content-range'] ?? '');
              const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
              if (!range || !m || Number(m[1]) !== have) {
                throw new PullHttpError(`${href}: unexpected partial response (Content-Range "${cr}" for Range ${range ?? 'none'})`, { url: href });
              }
              offset = have;
            }
            const cl = h['content-length'];
            const contentLength = cl === undefined ? null : Number(Array.isArray(cl) ? cl[0] : cl);
            body = new BodyCollector(req, href, offset, contentLength, () => this.partsIn(req.partFile!).add(path.basename(req.partFile!)));
            if (this.lowLimit > 0) {
              // low-speed watchdog: a server dripping a byte at a time never trips the idle timeout
              watchdog = setInterval(() => {
                if (body && !body.moving((this.lowLimit * this.lowTime) / 1000)) {
                  fail(new Transient(new PullTimeoutError(`${href}: transfer slower than ${this.lowLimit} bytes/s for ${this.lowTime / 1000}s`, { url: href })));
                }
              }, this.lowTime);
            }
          } catch (e) {
            fail(e);
          }
        },
        onResponseData: (_c, chunk) => {
          if (failed) return;
          if (body) {
            this.opts.onBytes?.(chunk.length);
            try {
              body.push(chunk);
            } catch (e) {
              fail(e);
            }
          } else if ((dropped += chunk.length) > MAX_DROPPED_BODY) {
            fail(new PullHttpError(`${href}: HTTP ${status} with a body of more than ${MAX_DROPPED_BODY} bytes`, { url: href }));
          }
        },
        onResponseEnd: () => {
          if (failed) return;
          try {
            const result = body ? body.finish() : null;
            settle();
            resolve({ status, headers, result });
          } catch (e) {
            fail(e);
          }
        },
        onResponseError: (_c, e) => fail(e),
      };
      try {
        this.dispatcher.dispatch({
          origin: url.origin,
          path: url.pathname + url.search,
          method: 'GET',
          headers: range ? { range } : {},
          headersTimeout: this.idle,
          bodyTimeout: this.idle,
        }, handler);
      } catch (e) {
        fail(e);
      }
    });
  }
}

/** A body with a status other than 200/206 (a redirect, an error page) is read up to this and dropped. */
const MAX_DROPPED_BODY = 1 << 20;

/**
 * Collects one 200/206 body: in memory, or spilled to `req.partFile` once larger than
 * `req.spillAbove` (appended to a resumed prefix at `offset`). Enforces the size cap while the
 * body arrives, including a cap tightened from the body's first bytes (capFromPrefix).
 */
class BodyCollector {
  private cap: number;
  private readonly spillAbove: number;
  private readonly chunks: Buffer[] = [];
  private inMemory = 0;
  private received = 0;
  private windowBytes = 0;
  private fd: number | null = null;
  private prefix: Buffer | null = null;
  private prefixDone: boolean;

  constructor(
    private readonly req: FetchRequest,
    private readonly href: string,
    private readonly offset: number,
    private readonly contentLength: number | null,
    /** Called when the body starts going to req.partFile. */
    private readonly onSpill: () => void,
  ) {
    this.cap = req.maxBytes;
    this.prefixDone = !req.capFromPrefix;
    this.spillAbove = req.partFile ? req.spillAbove ?? 1 << 20 : Infinity;
    if (contentLength !== null && offset + contentLength > this.cap) throw this.tooLarge(offset + contentLength);
    if (offset > 0) {
      if (req.capFromPrefix) {
        const rfd = fs.openSync(req.partFile!, 'r');
        try {
          this.prefix = readAt(rfd, 0, Math.min(offset, 1 << 20));
        } finally {
          fs.closeSync(rfd);
        }
      }
      this.openFile(); // last: nothing after it throws, so the fd cannot leak from here
    }
  }

  private tooLarge(n: number): PullTooLargeError {
    return new PullTooLargeError(`${this.href}: response is larger than the ${this.cap}-byte limit for this object (${n}+ bytes)`, { url: this.href });
  }

  private openFile(): void {
    this.onSpill();
    try {
      this.fd = fs.openSync(this.req.partFile!, this.offset > 0 ? 'a' : 'w', 0o600);
      for (const c of this.chunks) fs.writeSync(this.fd, c);
    } catch (e) {
      throw this.full(e);
    }
    this.chunks.length = 0;
  }

  /** A download that finds its filesystem full says where it was going (see noSpace). */
  private full(e: unknown): unknown {
    return noSpace(e, `cannot save ${this.href} to ${this.req.partFile}`, this.req.partFile);
  }

  /** False when fewer than `min` bytes arrived since the last call (the low-speed watchdog). */
  moving(min: number): boolean {
    const ok = this.windowBytes >= min;
    this.windowBytes = 0;
    return ok;
  }

  push(c: Buffer): void {
    this.received += c.length;
    this.windowBytes += c.length;
    if (this.offset + this.received > this.cap) throw this.tooLarge(this.offset + this.received);
    if (!this.prefixDone) {
      const prefix = this.prefix ? Buffer.concat([this.prefix, c]) : c;
      this.prefix = prefix;
      const need = this.req.prefixBytes ? this.req.prefixBytes(prefix) : 64;
      if (prefix.length >= need) {
        this.cap = Math.min(this.cap, this.req.capFromPrefix!(prefix));
        this.prefixDone = true;
        this.prefix = null;
        if (this.offset + this.received > this.cap) throw this.tooLarge(this.offset + this.received);
      }
    }
    this.req.onChunk?.(c, this.offset + this.received - c.length);
    if (this.fd !== null) {
      try {
        fs.writeSync(this.fd, c);
      } catch (e) {
        throw this.full(e);
      }
    } else {
      // undici hands over chunks it does not reuse; keep them as they are
      this.chunks.push(c);
      this.inMemory += c.length;
      if (this.inMemory > this.spillAbove) this.openFile();
    }
  }

  finish(): FetchResult {
    const { contentLength, received, href } = this;
    if (contentLength !== null && received !== contentLength) {
      throw new Transient(new PullNetworkError(`${href}: body is ${received} bytes, Content-Length said ${contentLength}`, { url: href }));
    }
    if (!this.prefixDone && this.prefix) this.req.capFromPrefix!(this.prefix);
    const spilled = this.fd !== null;
    this.close();
    if (spilled) return { kind: 'file', file: this.req.partFile!, size: this.offset + received };
    return { kind: 'buffer', bytes: this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.inMemory) };
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Node's codes for a certificate that fails verification: not transient, not retried. */
const TLS_VERIFY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function originKey(hostname: string, port: string | number): string {
  return `${hostname}:${port || 443}`;
}

/** The reason in an OpenSSL error line ("…:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:…"). */
function sslReason(code: string, message: string): string {
  return /error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+)/.exec(message)?.[1] ?? code;
}

function mapError(e: unknown, href: string, tlsAlerts?: ReadonlyMap<string, NodeJS.ErrnoException>): Error {
  if (e instanceof Transient || (e as CairnError).code?.startsWith?.('PULL_')) return e as Error;
  let code = (e as { code?: string }).code ?? '';
  let msg = (e as Error).message ?? String(e);
  if (code === 'UND_ERR_SOCKET' && tlsAlerts) {
    const u = new URL(href);
    const alert = u.protocol === 'https:' ? tlsAlerts.get(originKey(u.hostname, u.port)) : undefined;
    if (alert) {
      code = alert.code ?? code;
      msg = alert.message;
    }
  }
  if (code.startsWith('ERR_SSL_')) {
    // the server refused this client, or TLS cannot work with it: not transient, not retried
    const reason = sslReason(code, msg);
    const why = code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'
      ? 'the server requires a TLS client certificate (the remote\'s tls-client-cert-path and tls-client-key-path)'
      : reason.includes('alert') ? `the server refused the TLS connection (${reason})` : `TLS failed (${reason})`;
    return new PullNetworkError(`${href}: ${why}`, { url: href });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new Transient(new PullTimeoutError(`${href}: no data from the server for too long (${msg})`, { url: href }));
  }
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return new Transient(new PullNetworkError(`${href}: body length does not match Content-Length`, { url: href }));
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new PullNetworkError(`${href}: cannot connect (${code})`, { url: href });
  }
  if (TLS_VERIFY.has(code)) {
    return new PullNetworkError(`${href}: the server's TLS certificate is not trusted (${msg}; see the remote's tls-ca-path)`, { url: href });
  }
  const NET = ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN',
    'ERR_STREAM_PREMATURE_CLOSE'];
  if (code.startsWith('UND_ERR') || NET.includes(code) || (e as Error).name === 'AbortError') {
    return new Transient(new PullNetworkError(`${href}: connection failed or closed early (${msg})`, { url: href }));
  }
  return e as Error;
}
