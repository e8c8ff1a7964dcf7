/**
 * xz for delta parts, through the `xz` CLI (Debian xz-utils: the same liblzma ostree links).
 * Node 20 has no xz; the npm bindings either need a native build with downloads or are a
 * different encoder. One process per part costs a few milliseconds, parts are few and large.
 */
import { spawn } from 'node:child_process';
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

/** Decompresses one xz stream, refusing output larger than `maxOutput` (decompression bombs). */
export function xzDecompress(data: Uint8Array, maxOutput: number): Promise<Buffer> {
  return run(['-d', '-c', '-q'], data, maxOutput, 'decompressing delta part');
}
