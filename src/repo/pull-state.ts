/**
 * Repository-side state a pull keeps: state/<commit>.commitpartial markers (spec §3.4) and the
 * directory of partial downloads (tmp/cairn-pull/, keyed by object checksum, so an interrupted
 * large object can be resumed with a Range request by a later pull).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Checksum } from '../format/index.js';
import type { Repo } from './repo.js';

function markerPath(repo: Repo, commit: Checksum): string {
  return path.join(repo.path, 'state', `${commit}.commitpartial`);
}

/**
 * Marks a commit's tree as incomplete; must happen before the commit object is stored, through a
 * Transaction: its commit runs syncfs before it renames anything into objects/, and that puts the
 * marker on disk before the commit object can be found (no fsync of its own, which cost a pull's
 * start-up 3 ms of waiting for the disk; ostree does not sync its marker either).
 */
export function markCommitPartial(repo: Repo, commit: Checksum): void {
  fs.mkdirSync(path.join(repo.path, 'state'), { recursive: true });
  fs.writeFileSync(markerPath(repo, commit), '');
}

/** Clears the marker once every object of the commit's tree is stored durably. */
export function clearCommitPartial(repo: Repo, commit: Checksum): void {
  fs.rmSync(markerPath(repo, commit), { force: true });
}

/** Directory for partial downloads, created on demand. */
export function partialDownloadDir(repo: Repo): string {
  const d = path.join(repo.path, 'tmp', 'cairn-pull');
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Removes a partial download (after it was stored or found corrupt). */
export function dropPartialDownload(file: string): void {
  fs.rmSync(file, { force: true });
}
