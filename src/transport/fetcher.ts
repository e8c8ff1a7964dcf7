/**
 * The fetcher port (what pull needs from a remote: "GET this path, bounded") and its HTTP(S)
 * implementation over undici 7. Every response is size-capped while it streams, stalled or
 * dripping responses time out, redirects are followed a bounded number of times with loops
 * refused, transient failures are retried, and large bodies spill to a file that a later
 * attempt (or a later pull) resumes with a Range request.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import {
  type CairnError, PullHttpError, PullNetworkError, PullRedirectError, PullTimeoutError, PullTooLargeError,
} from '../errors.js';

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
    // undici is loaded here, not at import time: it is a third of every command's start-up
    const { Agent, EnvHttpProxyAgent } = createRequire(import.meta.url)('undici') as typeof import('undici');
    // HTTP_PROXY / HTTPS_PROXY / NO_PROXY are honoured through undici's EnvHttpProxyAgent
    this.dispatcher = proxyConfigured() ? new EnvHttpProxyAgent(common) : new Agent(common);
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
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
    if (req.partFile) have = fs.statSync(req.partFile, { throwIfNoEntry: false })?.size ?? 0;
    for (let hops = 0; ; hops++) {
      const range = have > 0 ? `bytes=${have}-` : null;
      this.opts.onRequest?.({ url: url.href, range });
      const ac = new AbortController();
      let res: Dispatcher.ResponseData;
      try {
        res = await this.dispatcher.request({
          origin: url.origin,
          path: url.pathname + url.search,
          method: 'GET',
          headers: range ? { range } : {},
          signal: ac.signal,
          headersTimeout: this.idle,
          bodyTimeout: this.idle,
        });
      } catch (e) {
        throw mapError(e, url.href);
      }
      const status = res.statusCode;
      if (status >= 300 && status < 400 && status !== 304) {
        res.body.resume();
        res.body.on('error', () => {});
        const loc = res.headers.location;
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
        res.body.resume();
        res.body.on('error', () => {});
        if (req.optional) return null;
        throw new PullHttpError(`${url.href}: not found on the server (HTTP ${status})`, { url: url.href });
      }
      if (status === 416 && have > 0 && req.partFile) {
        // the partial file is not a prefix the server recognises: start over
        res.body.resume();
        res.body.on('error', () => {});
        fs.rmSync(req.partFile, { force: true });
        have = 0;
        continue;
      }
      if (status !== 200 && status !== 206) {
        res.body.resume();
        res.body.on('error', () => {});
        const err = new PullHttpError(`${url.href}: server answered HTTP ${status}`, { url: url.href });
        if (status >= 500 || status === 408 || status === 429) throw new Transient(err);
        throw err;
      }
      let offset = 0;
      if (status === 206) {
        const cr = String(res.headers['content-range'] ?? '');
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
        if (!range || !m || Number(m[1]) !== have) {
          res.body.destroy();
          throw new PullHttpError(`${url.href}: unexpected partial response (Content-Range "${cr}" for Range ${range ?? 'none'})`, { url: url.href });
        }
        offset = have;
      }
      return await this.readBody(req, url.href, res, offset, ac);
    }
  }

  private async readBody(req: FetchRequest, href: string, res: Dispatcher.ResponseData, offset: number, ac: AbortController): Promise<FetchResult> {
    const clRaw = res.headers['content-length'];
    const contentLength = clRaw === undefined ? null : Number(Array.isArray(clRaw) ? clRaw[0] : clRaw);
    let cap = req.maxBytes;
    const tooLarge = (n: number): PullTooLargeError =>
      new PullTooLargeError(`${href}: response is larger than the ${cap}-byte limit for this object (${n}+ bytes)`, { url: href });
    if (contentLength !== null && offset + contentLength > cap) {
      res.body.destroy();
      throw tooLarge(offset + contentLength);
    }
    const spillAbove = req.partFile ? req.spillAbove ?? 1 << 20 : Infinity;
    const chunks: Buffer[] = [];
    let inMemory = 0;
    let received = 0;
    let fd: number | null = null;
    let prefix: Buffer | null = null;
    let prefixDone = !req.capFromPrefix;
    const openFile = (): void => {
      fd = fs.openSync(req.partFile!, offset > 0 ? 'a' : 'w', 0o600);
      for (const c of chunks) fs.writeSync(fd, c);
      chunks.length = 0;
    };
    if (offset > 0) {
      openFile();
      if (req.capFromPrefix) {
        const n = Math.min(offset, 1 << 20);
        prefix = Buffer.alloc(n);
        const rfd = fs.openSync(req.partFile!, 'r');
        fs.readSync(rfd, prefix, 0, n, 0);
        fs.closeSync(rfd);
      }
    }
    // low-speed watchdog: a server dripping a byte at a time never trips the idle timeout
    let windowBytes = 0;
    let timedOut = false;
    const watchdog =
      this.lowLimit > 0
        ? setInterval(() => {
            if (windowBytes < (this.lowLimit * this.lowTime) / 1000) {
              timedOut = true;
              ac.abort();
              res.body.destroy();
            }
            windowBytes = 0;
          }, this.lowTime)
        : null;
    try {
      for await (const c of res.body as AsyncIterable<Buffer>) {
        received += c.length;
        windowBytes += c.length;
        this.opts.onBytes?.(c.length);
        if (offset + received > cap) throw tooLarge(offset + received);
        if (!prefixDone) {
          prefix = prefix ? Buffer.concat([prefix, c]) : c;
          const need = req.prefixBytes ? req.prefixBytes(prefix) : 64;
          if (prefix.length >= need) {
            cap = Math.min(cap, req.capFromPrefix!(prefix));
            prefixDone = true;
            prefix = null;
            if (offset + received > cap) throw tooLarge(offset + received);
          }
        }
        if (fd !== null) fs.writeSync(fd, c);
        else {
          chunks.push(c);
          inMemory += c.length;
          if (inMemory > spillAbove) openFile();
        }
      }
    } catch (e) {
      res.body.destroy();
      if (timedOut) {
        throw new Transient(new PullTimeoutError(`${href}: transfer slower than ${this.lowLimit} bytes/s for ${this.lowTime / 1000}s`, { url: href }));
      }
      throw mapError(e, href);
    } finally {
      if (watchdog) clearInterval(watchdog);
      if (fd !== null) fs.closeSync(fd);
    }
    if (timedOut) {
      throw new Transient(new PullTimeoutError(`${href}: transfer slower than ${this.lowLimit} bytes/s for ${this.lowTime / 1000}s`, { url: href }));
    }
    if (contentLength !== null && received !== contentLength) {
      throw new Transient(new PullNetworkError(`${href}: body is ${received} bytes, Content-Length said ${contentLength}`, { url: href }));
    }
    if (!prefixDone && prefix) req.capFromPrefix!(prefix);
    if (fd !== null) return { kind: 'file', file: req.partFile!, size: offset + received };
    return { kind: 'buffer', bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, inMemory) };
  }
}

function mapError(e: unknown, href: string): Error {
  if (e instanceof Transient || (e as CairnError).code?.startsWith?.('PULL_')) return e as Error;
  const code = (e as { code?: string }).code ?? '';
  const msg = (e as Error).message ?? String(e);
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new Transient(new PullTimeoutError(`${href}: no data from the server for too long (${msg})`, { url: href }));
  }
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
    return new Transient(new PullNetworkError(`${href}: body length does not match Content-Length`, { url: href }));
  }
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new PullNetworkError(`${href}: cannot connect (${code})`, { url: href });
  }
  const NET = ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN',
    'ERR_STREAM_PREMATURE_CLOSE'];
  if (code.startsWith('UND_ERR') || NET.includes(code) || (e as Error).name === 'AbortError') {
    return new Transient(new PullNetworkError(`${href}: connection failed or closed early (${msg})`, { url: href }));
  }
  return e as Error;
}
