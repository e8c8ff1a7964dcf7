/**
 * Re-hashing small content objects for fsck (inflating .filez in archive repos), spread over
 * worker threads so that reading, inflating and hashing use every core. The per-object check is a plain function, also run
 * in-thread when workers are unavailable (e.g. when running from TypeScript sources).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { type Checksum, S_IFLNK, S_IFMT, fileChecksumPrefix, parseArchiveHeader, sha256 } from '../format/index.js';
import { CairnError } from '../errors.js';
import { type RepoMode, readBareHeader } from './repo.js';

export interface VerifyJob {
  checksum: string;
  path: string;
  mode: RepoMode;
}

/** Returns null when the (small) content object is intact, else why not. */
export function verifyContentObject(job: VerifyJob): string | null {
  try {
    if (job.mode !== 'archive') {
      const { header } = readBareHeader(job.path, job.checksum as Checksum, job.mode);
      const content = (header.mode & S_IFMT) === S_IFLNK ? Buffer.alloc(0) : fs.readFileSync(job.path);
      const got = sha256(fileChecksumPrefix(header), content);
      return got === job.checksum ? null : `checksum mismatch, content hashes to ${got}`;
    }
    const raw = fs.readFileSync(job.path);
    const { header, size, headerLength } = parseArchiveHeader(raw);
    let content: Buffer;
    if ((header.mode & S_IFMT) === S_IFLNK) {
      if (raw.length !== headerLength) return 'symlink object has trailing content';
      content = Buffer.alloc(0);
    } else {
      try {
        content = zlib.inflateRawSync(raw.subarray(headerLength), { maxOutputLength: Math.max(size, 1) + 1 });
      } catch (e) {
        const msg = (e as Error).message;
        return msg === 'unexpected end of file' ? 'truncated compressed content' : msg;
      }
      if (content.length !== size) return `content is ${content.length} bytes, header says ${size}`;
    }
    const got = sha256(fileChecksumPrefix(header), content);
    return got === job.checksum ? null : `checksum mismatch, content hashes to ${got}`;
  } catch (e) {
    return e instanceof CairnError && e.cause instanceof Error ? e.cause.message : (e as Error).message;
  }
}

const BATCH = 64;

/** Verifies every job; returns the failures. Uses up to one worker per core when it can. */
export async function verifyContentObjects(jobs: VerifyJob[], onDone?: (n: number) => void): Promise<Map<string, string>> {
  const failures = new Map<string, string>();
  const compiled = import.meta.url.endsWith('.js');
  const width = Math.min(Number(process.env.CAIRN_WORKERS ?? 0) || (os.availableParallelism?.() ?? os.cpus().length), 8);
  if (!compiled || width < 2 || jobs.length < BATCH) {
    for (const j of jobs) {
      const why = verifyContentObject(j);
      if (why) failures.set(j.checksum, why);
    }
    onDone?.(jobs.length);
    return failures;
  }
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: width }, () =>
      new Promise<void>((resolve, reject) => {
        const w = new Worker(new URL('./content-verify-worker.js', import.meta.url));
        const feed = (): void => {
          if (next >= jobs.length) {
            void w.terminate().then(() => resolve());
            return;
          }
          const batch = jobs.slice(next, next + BATCH);
          next += batch.length;
          w.postMessage(batch);
        };
        w.on('message', (results: [string, string | null][]) => {
          for (const [c, why] of results) if (why) failures.set(c, why);
          done += results.length;
          onDone?.(done);
          feed();
        });
        w.on('error', reject);
        feed();
      }),
    ),
  );
  return failures;
}
