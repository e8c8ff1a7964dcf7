/**
 * Which objects a repository has, for a pull's tree walk. Each `objects/xx` directory is listed
 * once, on first use, instead of one lstat per object: a rootfs walk asks ~9,000 times (~50 ms
 * of the main thread), and most of those answers come from ~256 directory reads. A directory
 * larger than LIST_MAX_BYTES (~850 entries: a repo of ~200,000 objects, where listing would cost
 * more than the lookups it saves) is asked object by object.
 *
 * A snapshot: an object that appears after its directory was listed reads as missing (a pull
 * fetches it again, harmlessly). Make one per walk, after anything the walk must see was written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Checksum, type ObjectType, objectRelPath } from '../format/index.js';
import { isErrno } from './fsutil.js';
import type { Repo } from './repo.js';

const LIST_MAX_BYTES = 64 * 1024;

export class ObjectPresence {
  private readonly dirs = new Map<string, Set<string> | null>();
  private readonly root: string;

  constructor(private readonly repo: Repo) {
    this.root = path.join(repo.path, '.');
  }

  has(csum: Checksum, type: ObjectType): boolean {
    const rel = objectRelPath(csum, type, this.repo.archive);
    const slash = rel.lastIndexOf('/');
    const dir = rel.slice(0, slash);
    let names = this.dirs.get(dir);
    if (names === undefined) {
      names = this.list(dir);
      this.dirs.set(dir, names);
    }
    return names ? names.has(rel.slice(slash + 1)) : this.repo.hasObject(csum, type);
  }

  /** The directory's names, an empty set if it does not exist, or null when it is too large to list. */
  private list(dir: string): Set<string> | null {
    const p = `${this.root}/${dir}`; // (path.join normalises each time: up to 256 calls in a walk)
    let size: number;
    try {
      size = fs.statSync(p).size;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return new Set();
      throw e;
    }
    return size > LIST_MAX_BYTES ? null : new Set(fs.readdirSync(p));
  }
}
