/**
 * `serve`: a static HTTP file server for a repository (what `ostree pull` needs from a remote:
 * summary, config, objects/, refs/, deltas/, delta-indexes/). GET and HEAD, single byte ranges,
 * loopback by default; never serves anything outside the repository or under tmp/.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { ServeError } from '../errors.js';
import { readAt } from '../repo/index.js';

export interface ServeOptions {
  port?: number;
  /** Address to bind; 127.0.0.1 unless told otherwise. */
  bind?: string;
  /** Called once per request (for logging). */
  onRequest?: (r: { method: string; url: string; status: number; bytes: number }) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly server: http.Server;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = { '.json': 'application/json' };

export async function serveRepo(root: string, opts: ServeOptions = {}): Promise<RunningServer> {
  const realRoot = fs.realpathSync(root);
  const dirs = new Map<string, boolean>();
  const server = http.createServer((req, res) => {
    handle(realRoot, req, res, opts, dirs).catch(() => {
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end();
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  const bind = opts.bind ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new ServeError(`cannot listen on ${bind}:${opts.port ?? 0}: ${e.code ?? e.message}`, { cause: e })),
    );
    server.listen(opts.port ?? 0, bind, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Maps a request path to a file under root, or null when it must not be served. */
export function resolveRequestPath(root: string, urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]!);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.includes('\\')) return null;
  const segs = rel.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.some((s) => s === '..')) return null;
  if (segs.length === 0 || segs[0] === 'tmp' || segs[0] === '.lock') return null;
  const p = path.join(root, ...segs);
  if (!p.startsWith(root + path.sep)) return null;
  return p;
}

/** Bodies up to this size are read in one synchronous call (page-cache reads take microseconds). */
const SMALL_BODY = 64 * 1024;
/**
 * Larger bodies stream in reads of up to this size (Node's default is 64 KiB: a read on libuv's
 * threads and a socket write per 64 KiB). Two delta parts (2.5 and 3 MB) fetched at once took
 * 13 ms instead of 17 (medians of 15, curl); a stream holds at most about this much at a time.
 */
const STREAM_CHUNK = 1024 * 1024;

/**
 * Whether `dir` (a directory under root, by name) really lies inside root once symlinks are
 * resolved. Cached: a pull asks for thousands of files in the same 256 object directories.
 */
function dirInsideRoot(root: string, dir: string, cache: Map<string, boolean>): boolean {
  let ok = cache.get(dir);
  if (ok === undefined) {
    try {
      const real = fs.realpathSync.native(dir);
      ok = real === root || real.startsWith(root + path.sep);
    } catch {
      return false;
    }
    if (cache.size >= 4096) cache.clear();
    cache.set(dir, ok);
  }
  return ok;
}

/** Opens a file to serve: no symlink may lead out of the repository. Null when it must be a 404. */
async function openInside(root: string, p: string, cache: Map<string, boolean>): Promise<number | null> {
  if (!dirInsideRoot(root, path.dirname(p), cache)) return null;
  try {
    return fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOOP') return null;
  }
  // the file itself is a symlink: follow it only if it stays inside
  try {
    const real = await fs.promises.realpath(p);
    if (!real.startsWith(root + path.sep)) return null;
    return fs.openSync(real, 'r');
  } catch {
    return null;
  }
}

async function handle(root: string, req: http.IncomingMessage, res: http.ServerResponse, opts: ServeOptions, dirs: Map<string, boolean>): Promise<void> {
  const method = req.method ?? 'GET';
  const done = (status: number, bytes = 0): void => opts.onRequest?.({ method, url: req.url ?? '', status, bytes });
  const fail = (status: number, extra: Record<string, string> = {}): void => {
    res.writeHead(status, { 'Content-Length': '0', ...extra });
    res.end();
    done(status);
  };
  if (method !== 'GET' && method !== 'HEAD') return fail(405, { Allow: 'GET, HEAD' });
  const p = resolveRequestPath(root, req.url ?? '/');
  if (!p) return fail(404);
  const fd = await openInside(root, p, dirs);
  if (fd === null) return fail(404);
  let handedOver = false;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return fail(404);
    const size = st.size;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (m && (m[1] !== '' || m[2] !== '')) {
        if (m[1] === '') {
          const n = Number(m[2]);
          start = Math.max(0, size - n);
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(Number(m[2]), size - 1);
        }
        if (start >= size || start > end) return fail(416, { 'Content-Range': `bytes */${size}` });
        status = 206;
      }
      // anything else (multiple ranges, other units) is answered with the whole file
    }
    const len = size === 0 ? 0 : end - start + 1;
    const headers: Record<string, string> = {
      'Content-Length': String(len),
      'Content-Type': CONTENT_TYPES[path.extname(p)] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Last-Modified': st.mtime.toUTCString(),
    };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    if (method === 'HEAD' || len === 0) {
      res.writeHead(status, headers);
      res.end();
      done(status);
      return;
    }
    if (len <= SMALL_BODY) {
      const body = readAt(fd, start, len);
      if (body.length < len) throw new Error('file shrank while being served');
      res.writeHead(status, headers);
      res.end(body);
      done(status, len);
      return;
    }
    res.writeHead(status, headers);
    const stream = fs.createReadStream('', { fd, start, end, autoClose: true, highWaterMark: STREAM_CHUNK });
    handedOver = true;
    stream.on('error', () => res.destroy());
    stream.pipe(res);
    res.on('finish', () => done(status, len));
    res.on('close', () => stream.destroy());
  } finally {
    if (!handedOver) fs.closeSync(fd);
  }
}
