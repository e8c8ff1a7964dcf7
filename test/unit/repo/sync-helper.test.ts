// The process helper (repo/fsutil.ts): transactions flush through one long-lived `sh` running
// `sync -f` per request (xz: xz-helper.test.ts). Every request gets its own answer; failures are
// errors; and a helper that is gone hands its syncs to one `sync` process each instead of losing them.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processHelperPid, startProcessHelper, syncFilesystemAsync } from '../../../src/repo/fsutil.js';
import { IoError } from '../../../src/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-sync-helper-'));

it('answers every request, reports a failing path as IoError, and survives its own death', async () => {
  startProcessHelper();
  const pid = processHelperPid();
  assert.ok(pid && pid > 0, 'the helper runs');
  // many at once: each resolves
  await Promise.all(Array.from({ length: 20 }, () => syncFilesystemAsync(dir)));
  // a path that does not exist fails with an IoError naming it, and the next request still works
  const missing = path.join(dir, 'no', 'such', 'dir');
  await assert.rejects(syncFilesystemAsync(missing), (e: unknown) => e instanceof IoError && e.message.includes(missing));
  await syncFilesystemAsync(dir);
  // a name with a newline cannot go through the line protocol: it takes the one-process way
  const odd = path.join(dir, 'a\nb');
  fs.mkdirSync(odd);
  await syncFilesystemAsync(odd);
  // requests made while the helper is being killed are not lost
  const pending = Array.from({ length: 5 }, () => syncFilesystemAsync(dir));
  process.kill(pid!, 'SIGKILL');
  await Promise.all(pending);
  await syncFilesystemAsync(dir); // after its death: the one-process way
  assert.throws(() => process.kill(pid!, 0), 'the helper is gone');
  fs.rmSync(dir, { recursive: true, force: true });
});
