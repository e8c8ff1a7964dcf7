/** Worker thread for content-verify.ts: verifies batches of archive objects. */
import { parentPort } from 'node:worker_threads';
import { type VerifyJob, verifyArchiveObject } from './content-verify.js';

parentPort?.on('message', (batch: VerifyJob[]) => {
  parentPort!.postMessage(batch.map((j) => [j.checksum, verifyArchiveObject(j)]));
});
