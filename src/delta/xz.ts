/**
 * xz for delta parts, through the `xz` CLI (Debian xz-utils: the same liblzma ostree links).
 * Node 20 has no xz; the npm bindings either need a native build with downloads or are a
 * different encoder. One process per part costs a few milliseconds, parts are few and large.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DeltaCompressionError } from '../errors.js';

function run(args: string[], input: Uint8Array, maxOutput: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn('xz', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new DeltaCompressionError(`${what}: cannot run xz`, { cause: e }));
      return;
    }
    const out: Buffer[] = [];
    let outLen = 0;
    let errText = '';
    let failed: Error | null = null;
    child.on('error', (e) => {
      failed = new DeltaCompressionError(`${what}: cannot run xz (is xz-utils installed?)`, { cause: e });
    });
    child.stdout.on('data', (c: Buffer) => {
      outLen += c.length;
      if (outLen > maxOutput) {
        failed ??= new DeltaCompressionError(`${what}: decompressed data exceeds ${maxOutput} bytes`);
        child.kill('SIGKILL');
        return;
      }
      out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errText.length < 4096) errText += c.toString();
    });
    child.stdin.on('error', () => {
      /* xz exited early; reported through the exit status */
    });
    child.on('close', (code) => {
      if (failed) reject(failed);
      else if (code !== 0) reject(new DeltaCompressionError(`${what}: ${errText.trim().split('\n')[0] || `xz exited ${code}`}`));
      else resolve(Buffer.concat(out, outLen));
    });
    child.stdin.end(input);
  });
}

/** xz stream, CRC64, preset 8 as ostree; optionally with the x86 BCJ filter for executables. */
export function xzCompress(data: Uint8Array, opts: { preset?: number; extreme?: boolean; threads?: number; x86?: boolean } = {}): Promise<Buffer> {
  const preset = `${opts.preset ?? 8}${opts.extreme ? 'e' : ''}`;
  // --x86: the BCJ filter for x86 machine code (any xz/liblzma decoder, ostree's included, reads it)
  const filters = opts.x86 ? ['--x86', `--lzma2=preset=${preset}`] : [`-${preset}`];
  const args = ['-z', '-c', '-q', '--check=crc64', ...filters, `-T${opts.threads ?? 1}`];
  return run(args, data, Number.MAX_SAFE_INTEGER, 'compressing delta part');
}

/**
 * Decompresses one xz stream, refusing output larger than `maxOutput` (decompression bombs).
 * xz reads and writes temporary files, not pipes: a pipe's 64 KiB fill while this thread is busy
 * (applying another part), and xz stops until it is read; a pull's second part was decoded only
 * once the first had been applied. The output file is capped by `ulimit -f`.
 */
export async function xzDecompress(data: Uint8Array, maxOutput: number): Promise<Buffer> {
  const what = 'decompressing delta part';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-xz-'));
  try {
    const input = path.join(dir, 'in');
    const output = path.join(dir, 'out');
    fs.writeFileSync(input, data, { mode: 0o600 });
    const inFd = fs.openSync(input, 'r');
    const outFd = fs.openSync(output, 'wx', 0o600);
    try {
      // dash counts ulimit -f in 512-byte blocks; one block more than the cap tells "too large"
      const blocks = Math.floor(maxOutput / 512) + 1;
      await new Promise<void>((resolve, reject) => {
        let errText = '';
        const child = spawn('sh', ['-c', `ulimit -f ${blocks} && exec xz -d -c -q`], { stdio: [inFd, outFd, 'pipe'] });
        child.stderr!.on('data', (c: Buffer) => {
          if (errText.length < 4096) errText += c.toString();
        });
        child.on('error', (e) => reject(new DeltaCompressionError(`${what}: cannot run xz`, { cause: e })));
        child.on('close', (code, signal) => {
          if (signal === 'SIGXFSZ') reject(new DeltaCompressionError(`${what}: decompressed data exceeds ${maxOutput} bytes`));
          else if (code === 127) reject(new DeltaCompressionError(`${what}: cannot run xz (is xz-utils installed?)`));
          else if (code !== 0) reject(new DeltaCompressionError(`${what}: ${errText.trim().split('\n')[0] || `xz exited ${code ?? signal}`}`));
          else resolve();
        });
      });
    } finally {
      fs.closeSync(inFd);
      fs.closeSync(outFd);
    }
    if (fs.statSync(output).size > maxOutput) throw new DeltaCompressionError(`${what}: decompressed data exceeds ${maxOutput} bytes`);
    return fs.readFileSync(output);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
