/** Worker thread for writer-pool.ts: runs batches of object writes, one reply per batch, in order. */
import { parentPort } from 'node:worker_threads';
import type { ObjectJob } from './object-files.js';
import { runJobCatching } from './writer-pool.js';

parentPort?.on('message', (jobs: ObjectJob[]) => {
  parentPort!.postMessage(jobs.map((job) => {
    if (job.op === 'content' || job.op === 'commit-file') {
      // structured clone turns Buffers into plain Uint8Arrays; the xattr binding wants Buffers
      const xattrs = job.header.xattrs.map((x) => ({ name: x.name, value: Buffer.from(x.value.buffer, x.value.byteOffset, x.value.byteLength) }));
      job = { ...job, header: { ...job.header, xattrs } };
    }
    return runJobCatching(job);
  }));
});
