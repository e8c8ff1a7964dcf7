/** Worker thread for content-verify.ts: verifies batches of content objects. */
import { parentPort } from 'node:worker_threads';
import { type VerifyJob, verifyContentObject } from './content-verify.js';

parentPort?.on('message', (batch: VerifyJob[]) => {
  parentPort!.postMessage(batch.map((j) => [j.checksum, verifyContentObject(j)]));
});
