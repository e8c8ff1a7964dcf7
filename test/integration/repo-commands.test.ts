// refs, log, show, diff, prune against the real ostree on twin repositories (same commits),
// --json for every read command, and core.fsync honoured.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CAIRN, cairn, ok, ostree, tmpdir } from '../lib/helpers.js';

function objectList(repo: string): string[] {
  const root = path.join(repo, 'objects');
  return fs.readdirSync(root).flatMap((d) => fs.readdirSync(path.join(root, d)).map((f) => `${d}/${f}`)).sort();
}

describe('repo commands against ostree on twin repos', () => {
  const dir = tmpdir();
  const tree = path.join(dir, 'tree');
  const repos = { cairn: path.join(dir, 'c'), ostree: path.join(dir, 'o') };
  const commits: string[] = [];
  let orphan = '';

  const both = (args: string[]): [string, string] => {
    const c = ok(cairn([...args.slice(0, 1), `--repo=${repos.cairn}`, ...args.slice(1)]), `cairn ${args.join(' ')}`);
    const o = ok(ostree([...args.slice(0, 1), `--repo=${repos.ostree}`, ...args.slice(1)]), `ostree ${args.join(' ')}`);
    return [c, o];
  };

  before(() => {
    fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
    for (const r of Object.values(repos)) fs.mkdirSync(r);
    ok(cairn(['init', `--repo=${repos.cairn}`, '--mode=archive']));
    ok(ostree(['init', `--repo=${repos.ostree}`, '--mode=archive']));
    for (let i = 1; i <= 4; i++) {
      fs.writeFileSync(path.join(tree, 'etc/version'), `${i}\n`);
      fs.writeFileSync(path.join(tree, `file${i}`), `added in ${i}\n`);
      if (i === 3) fs.rmSync(path.join(tree, 'file1'));
      if (i === 4) fs.mkdirSync(path.join(tree, 'newdir'));
      const args = ['commit', '-b', 'os/stable', `--timestamp=2024-01-0${i}T00:00:00Z`, '-s', `release ${i}`, '-m', `notes for ${i}\nsecond line`, `--add-metadata-string=version=${i}.0`, `--tree=dir=${tree}`];
      const [c, o] = both(args);
      assert.equal(c, o);
      commits.push(c);
    }
    fs.writeFileSync(path.join(tree, 'orphan-only'), 'x');
    const [co, oo] = both(['commit', '--orphan', '--timestamp=2024-02-01T00:00:00Z', '-s', 'orphan', `--tree=dir=${tree}`]);
    assert.equal(co, oo, 'orphan commit (carries an empty ostree.ref-binding, as ostree writes)');
    orphan = co;
    both(['refs', '--create=os/old', commits[1]!]);
  });

  it('refs, rev-parse, log, show and diff print what ostree prints', () => {
    const [cr, or] = both(['refs']);
    assert.equal(cr, or);
    const pairs: string[][] = [['log', 'os/stable'], ['show', 'os/stable'], ['show', commits[0]!], ['rev-parse', 'os/stable^'], ['diff', commits[0]!, 'os/stable'], ['diff', 'os/old', commits[2]!]];
    for (const args of pairs) {
      const [c, o] = both(args);
      assert.equal(c, o, args.join(' '));
    }
  });

  it('--json output of the read commands parses and carries the data', () => {
    const r = repos.cairn;
    const refs = JSON.parse(ok(cairn(['refs', `--repo=${r}`, '--json'])));
    assert.equal(refs['os/stable'], commits[3]);
    const log = JSON.parse(ok(cairn(['log', `--repo=${r}`, '--json', 'os/stable'])));
    assert.deepEqual(log.map((e: { checksum: string }) => e.checksum), [...commits].reverse());
    assert.equal(log[0].version, '4.0');
    assert.equal(log[0].metadata['ostree.ref-binding'][0], 'os/stable');
    const show = JSON.parse(ok(cairn(['show', `--repo=${r}`, '--json', 'os/old'])));
    assert.equal(show.parent, commits[0]);
    assert.equal(show.date, '2024-01-02T00:00:00.000Z');
    const ls = JSON.parse(ok(cairn(['ls', `--repo=${r}`, '--json', '-R', 'os/stable'])));
    assert.ok(ls.some((e: { path: string; type: string }) => e.path === '/newdir' && e.type === 'dir'));
    const diff = JSON.parse(ok(cairn(['diff', `--repo=${r}`, '--json', commits[0]!, commits[3]!])));
    assert.deepEqual(diff.find((d: { path: string }) => d.path === '/file1'), { kind: 'D', path: '/file1' });
    const fsck = JSON.parse(ok(cairn(['fsck', `--repo=${r}`, '--json'])));
    assert.deepEqual(fsck.problems, []);
    assert.equal(fsck.commits, 5);
  });

  it('prune --no-prune only reports', () => {
    const before = objectList(repos.cairn);
    const out = ok(cairn(['prune', `--repo=${repos.cairn}`, '--refs-only', '--no-prune']));
    assert.match(out, /Would delete \d+ objects/);
    assert.deepEqual(objectList(repos.cairn), before);
  });

  it('prune (default) keeps every commit: only unreachable objects go, as in ostree', () => {
    both(['prune']);
    assert.deepEqual(objectList(repos.cairn), objectList(repos.ostree));
    assert.ok(objectList(repos.cairn).includes(`${orphan.slice(0, 2)}/${orphan.slice(2)}.commit`));
  });

  it('prune --refs-only drops the orphan commit and its objects, as in ostree', () => {
    both(['prune', '--refs-only']);
    assert.deepEqual(objectList(repos.cairn), objectList(repos.ostree));
    assert.ok(!objectList(repos.cairn).includes(`${orphan.slice(0, 2)}/${orphan.slice(2)}.commit`));
  });

  it('prune --refs-only --depth=0 keeps only the ref heads, as in ostree', () => {
    both(['prune', '--refs-only', '--depth=0']);
    assert.deepEqual(objectList(repos.cairn), objectList(repos.ostree));
    const commitsLeft = objectList(repos.cairn).filter((o) => o.endsWith('.commit'));
    assert.equal(commitsLeft.length, 2);
    for (const r of Object.values(repos)) {
      assert.equal(ostree(['fsck', `--repo=${r}`]).status, 0);
      assert.equal(cairn(['fsck', `--repo=${r}`]).status, 0);
    }
    // the history is now cut, and log says so
    assert.match(ok(cairn(['log', `--repo=${repos.cairn}`, 'os/stable'])), /History beyond this commit not fetched/);
  });
});

describe('core.fsync', () => {
  const syncfsCalls = (repo: string, tree: string): number => {
    const r = spawnSync('strace', ['-f', '-c', '-e', 'trace=syncfs,fsync,fdatasync', '-o', path.join(repo, '..', 'strace.out'), CAIRN, 'commit', `--repo=${repo}`, '-b', 'x', `--tree=dir=${tree}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = fs.readFileSync(path.join(repo, '..', 'strace.out'), 'utf8');
    // strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall
    return out
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((t) => (t.length === 5 || t.length === 6) && ['syncfs', 'fsync', 'fdatasync'].includes(t.at(-1)!))
      .reduce((n, t) => n + Number(t[3]), 0);
  };

  it('a durable repo (default) flushes before objects and refs become visible; fsync=false does not', () => {
    const dir = tmpdir();
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'f'), 'data\n');
    const durable = path.join(dir, 'd', 'repo');
    const fast = path.join(dir, 'f', 'repo');
    fs.mkdirSync(path.dirname(durable));
    fs.mkdirSync(path.dirname(fast));
    ok(cairn(['init', `--repo=${durable}`, '--mode=archive']));
    ok(cairn(['init', `--repo=${fast}`, '--mode=archive', '--no-fsync']));
    assert.match(fs.readFileSync(path.join(fast, 'config'), 'utf8'), /^fsync=false$/m);
    assert.ok(syncfsCalls(durable, tree) >= 3, 'syncfs for objects, fsync for the ref');
    assert.equal(syncfsCalls(fast, tree), 0);
  });
});
