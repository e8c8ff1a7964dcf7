/** Network test helpers: `cairn serve` as a child, a scriptable (mis)behaving static server, async cairn runs. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { CAIRN, type Run } from './helpers.js';

export interface Served {
  url: string;
  stop(): Promise<void>;
}

/** Runs `cairn serve --repo=R` and waits for the URL it prints. */
export async function cairnServe(repo: string): Promise<Served> {
  const child = spawn(CAIRN, ['serve', `--repo=${repo}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^(http:\/\/\S+)\n/m.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`cairn serve exited ${code}`)));
  });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface Hit {
  method: string;
  path: string;
  range: string | undefined;
}

/**
 * A static file server over `root` whose behaviour a test scripts: `hook` may answer a request
 * itself (return true) — truncate, corrupt, redirect, drip — or leave it to the default handler.
 */
export class TestServer {
  readonly hits: Hit[] = [];
  private server!: http.Server | https.Server;
  url = '';
  hook: ((req: http.IncomingMessage, res: http.ServerResponse, file: string, rel: string) => boolean | Promise<boolean>) | null = null;

  constructor(readonly root: string) {}

  /** Listens on 127.0.0.1; over HTTPS with `tls` (at least a PEM key and certificate). */
  async start(tls?: https.ServerOptions): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.handle(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
    this.hits.push({ method: req.method ?? '', path: rel, range: req.headers.range });
    const file = path.join(this.root, rel);
    try {
      if (this.hook && (await this.hook(req, res, file, rel))) return;
    } catch {
      res.destroy();
      return;
    }
    serveFile(req, res, file);
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

/** Sends `bytes` as a 200 in slices of `slice` bytes, `delayMs` apart (a slow server, for TestServer hooks). */
export async function sendInSlices(res: http.ServerResponse, bytes: Buffer, slice: number, delayMs: number): Promise<void> {
  res.writeHead(200, { 'Content-Length': bytes.length });
  for (let off = 0; off < bytes.length && !res.destroyed; off += slice) {
    res.write(bytes.subarray(off, off + slice));
    await new Promise((r) => setTimeout(r, delayMs));
  }
  res.end();
}

/** Plain static handler with single-range support. */
export function serveFile(req: http.IncomingMessage, res: http.ServerResponse, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a file');
  } catch {
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
    return;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && Number(m[1]) < st.size) {
    const start = Number(m[1]);
    res.writeHead(206, { 'Content-Length': st.size - start, 'Content-Range': `bytes ${start}-${st.size - 1}/${st.size}` });
    fs.createReadStream(file, { start }).pipe(res);
    return;
  }
  res.writeHead(200, { 'Content-Length': st.size });
  fs.createReadStream(file).pipe(res);
}

/** Runs cairn without blocking the event loop (the test's own server must keep answering). */
export function cairnAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(CAIRN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('exit', (code, sig) => {
      if (t) clearTimeout(t);
      resolve({ status: code ?? (sig ? 128 : -1), stdout, stderr });
    });
  });
}

/** Starts cairn and returns the child (for kill tests). */
export function cairnSpawn(args: string[]): ChildProcess {
  return spawn(CAIRN, args, { stdio: ['ignore', 'ignore', 'ignore'] });
}

/** The objects/ files of a repo, relative, sorted (to assert nothing unverified was stored). */
export function objectFiles(repo: string): string[] {
  const root = path.join(repo, 'objects');
  const out: string[] = [];
  for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    for (const f of fs.readdirSync(path.join(root, d))) out.push(`${d}/${f}`);
  }
  return out.sort();
}

/** Runs the real ostree without blocking the event loop (needed when it talks to an in-process server). */
export function ostreeAsync(args: string[], timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn('ostree', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, sig) => {
      clearTimeout(t);
      resolve({ status: code ?? (sig ? 128 : -1), stdout, stderr });
    });
  });
}

/** A CONNECT proxy on 127.0.0.1 that tunnels to wherever it is asked, counting the tunnels. */
export async function connectProxy(): Promise<{ url: string; connects: () => number; close: () => void }> {
  let connects = 0;
  const proxy = net.createServer((client) => {
    client.once('data', (d) => {
      const m = /^CONNECT (\S+):(\d+) /.exec(d.toString());
      if (!m) {
        client.destroy();
        return;
      }
      connects++;
      const up = net.connect(Number(m[2]), m[1], () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, connects: () => connects, close: () => proxy.close() };
}
