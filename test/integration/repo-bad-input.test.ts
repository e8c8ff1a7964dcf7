// Bad input gets one clear line on stderr and a non-zero exit, never a stack trace, and never
// changes the repository.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CAIRN, cairn, ok, sh, snapshotTree, tmpdir, treeDiff, type Run } from '../lib/helpers.js';

function oneLineError(r: Run, pattern: RegExp, code = 1): void {
  assert.equal(r.status, code, `exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

describe('bad input', () => {
  const dir = tmpdir();
  const repo = path.join(dir, 'repo');
  const tree = path.join(dir, 'tree');
  let head = '';
  /** The repo's files (tmp/ excluded) with content hashes, to prove nothing changed. */
  const repoState = () => {
    const s = snapshotTree(repo);
    for (const k of [...s.keys()]) if (k === '/tmp' || k.startsWith('/tmp/')) s.delete(k);
    return s;
  };

  before(() => {
    fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'sub/file'), 'content\n');
    ok(cairn(['init', `--repo=${repo}`, '--mode=archive']));
    head = ok(cairn(['commit', `--repo=${repo}`, '-b', 'main', '-s', 'one', `--tree=dir=${tree}`]));
  });

  it('a missing repository', () => {
    oneLineError(cairn(['refs', `--repo=${path.join(dir, 'nope')}`]), /not an OSTree repository/);
  });

  it('with --json, the one line is a JSON error event carrying the error code', () => {
    const nope = path.join(dir, 'nope');
    for (const args of [['refs', `--repo=${nope}`, '--json'], ['fsck', '--json', `--repo=${nope}`], ['log', `--repo=${repo}`, '--json', 'no-such-ref']]) {
      const r = cairn(args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${r.stderr}`);
      const ev = JSON.parse(lines[0]!) as Record<string, string>;
      assert.equal(ev.event, 'error');
      if (args[0] === 'log') assert.equal(ev.code, 'REPO_REF_NOT_FOUND');
      else assert.deepEqual(ev, { event: 'error', code: 'REPO_NOT_FOUND', message: `${nope}: not an OSTree repository (no config file)`, path: nope });
    }
    // `--json` after `--` is an argument, not the option
    assert.match(cairn(['refs', `--repo=${nope}`, '--', '--json']).stderr, /^error: /);
  });

  it('no --repo at all is a usage error', () => {
    oneLineError(cairn(['refs']), /--repo/, 2);
  });

  it('an unknown flag or command is a usage error', () => {
    const r = cairn(['commit', '--bogus']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option '--bogus'/);
    assert.equal(cairn(['frobnicate']).status, 2);
  });

  it('an invalid repository config', () => {
    const bad = path.join(dir, 'badrepo');
    fs.mkdirSync(path.join(bad, 'objects'), { recursive: true });
    fs.writeFileSync(path.join(bad, 'config'), 'this is not a key file\n');
    oneLineError(cairn(['refs', `--repo=${bad}`]), /config/);
    fs.writeFileSync(path.join(bad, 'config'), '[core]\nrepo_version=1\nmode=tarball\n');
    oneLineError(cairn(['refs', `--repo=${bad}`]), /unsupported repository mode "tarball"/);
  });

  it('init over an existing repository', () => {
    const before = repoState();
    oneLineError(cairn(['init', `--repo=${repo}`, '--mode=bare']), /already exists/);
    assert.deepEqual(treeDiff(before, repoState()), []);
  });

  it('an unknown ref, a bad ref name, a bad checksum', () => {
    oneLineError(cairn(['log', `--repo=${repo}`, 'no/such/ref']), /ref "no\/such\/ref" not found/);
    oneLineError(cairn(['rev-parse', `--repo=${repo}`, 'bad..name!']), /invalid ref/);
    oneLineError(cairn(['checkout', `--repo=${repo}`, 'nope', path.join(dir, 'co-nope')]), /not found/);
    assert.equal(fs.existsSync(path.join(dir, 'co-nope')), false);
  });

  it('a malformed commit object', () => {
    const r2 = path.join(dir, 'repo-malformed');
    fs.cpSync(repo, r2, { recursive: true });
    const obj = path.join(r2, 'objects', head.slice(0, 2), `${head.slice(2)}.commit`);
    fs.writeFileSync(obj, Buffer.from('garbage that is not a gvariant commit'));
    for (const args of [['log', 'main'], ['ls', 'main'], ['show', 'main'], ['checkout', 'main', path.join(dir, 'co-bad')]]) {
      oneLineError(cairn([args[0]!, `--repo=${r2}`, ...args.slice(1)]), new RegExp(`commit object ${head} is corrupt`));
    }
  });

  for (const kind of ['FIFO', 'socket', 'character device'] as const) {
    it(`an unsupported file type in the tree: ${kind}`, async () => {
      const t = path.join(dir, `tree-${kind.replace(' ', '-')}`);
      fs.cpSync(tree, t, { recursive: true });
      const special = path.join(t, 'sub/special');
      let server: net.Server | undefined;
      if (kind === 'FIFO') sh(`mkfifo ${special}`);
      else if (kind === 'character device') sh(`mknod ${special} c 1 3`);
      else {
        server = net.createServer();
        await new Promise<void>((res) => server!.listen(special, res));
      }
      const before = repoState();
      try {
        oneLineError(cairn(['commit', `--repo=${repo}`, '-b', 'main', `--tree=dir=${t}`]), new RegExp(`special: not a regular file or symlink \\(${kind}\\)`));
      } finally {
        server?.close();
      }
      assert.deepEqual(treeDiff(before, repoState()), [], 'repo unchanged');
      assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'main'])), head);
      assert.deepEqual(fs.readdirSync(path.join(repo, 'tmp')).filter((f) => f.startsWith('staging-')), [], 'no staging left behind');
    });
  }

  it('an unreadable source file (commit run as an unprivileged user)', () => {
    const r2 = path.join(dir, 'repo-nobody');
    const t = path.join(dir, 'tree-unreadable');
    fs.cpSync(tree, t, { recursive: true });
    fs.writeFileSync(path.join(t, 'secret'), 'no peeking\n', { mode: 0o000 });
    ok(cairn(['init', `--repo=${r2}`, '--mode=archive']));
    sh(`chown -R 65534:65534 ${r2} ${dir} && chmod 755 ${dir}`);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', CAIRN, 'commit', `--repo=${r2}`, '-b', 'main', `--tree=dir=${t}`], { encoding: 'utf8' });
    oneLineError({ status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }, /secret: cannot read: .*permission denied/i);
    assert.equal(cairn(['refs', `--repo=${r2}`]).stdout, '');
    ok(cairn(['fsck', `--repo=${r2}`]));
  });

  it('a missing tree, a file that is not a tarball, a truncated tarball', () => {
    const before = repoState();
    oneLineError(cairn(['commit', `--repo=${repo}`, '-b', 'main', `--tree=dir=${path.join(dir, 'missing')}`]), /no such file or directory/);
    const notTar = path.join(dir, 'not.tar');
    fs.writeFileSync(notTar, Buffer.alloc(2048, 0x41));
    oneLineError(cairn(['commit', `--repo=${repo}`, '-b', 'main', `--tree=tar=${notTar}`]), /not a readable tar archive/);
    const tar = path.join(dir, 'tree.tar');
    sh(`tar -C ${tree} -cf ${tar} .`);
    fs.truncateSync(tar, 1500);
    oneLineError(cairn(['commit', `--repo=${repo}`, '-b', 'main', `--tree=tar=${tar}`]), /truncated/);
    oneLineError(cairn(['commit', `--repo=${repo}`, '-b', 'main', '--tree=zip=foo']), /dir=PATH or tar=PATH/, 2);
    oneLineError(cairn(['commit', `--repo=${repo}`, '-b', 'main', '--timestamp=yesterday-ish', `--tree=dir=${tree}`]), /--timestamp/, 2);
    assert.deepEqual(treeDiff(before, repoState()), [], 'repo unchanged');
    ok(cairn(['fsck', `--repo=${repo}`]));
  });

  it('a checkout onto an existing non-empty directory', () => {
    const dest = path.join(dir, 'occupied');
    fs.mkdirSync(dest);
    fs.writeFileSync(path.join(dest, 'keep'), 'mine');
    oneLineError(cairn(['checkout', `--repo=${repo}`, 'main', dest]), /destination exists/);
    assert.deepEqual(fs.readdirSync(dest), ['keep']);
  });
});
