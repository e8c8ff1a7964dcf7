// Pull over HTTPS from a server on 127.0.0.1 whose certificate a test CA signed: trusted through
// NODE_EXTRA_CA_CERTS (which bin/cairn defers past Node's start-up: the file is not read unless a
// TLS connection is made) or through the remote's tls-ca-path, as ostree reads it; refused with
// one line and nothing stored when the CA is not trusted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CAIRN, cairn, ok, ostree, tmpdir } from '../lib/helpers.js';
import { makeAwkwardTree } from '../lib/trees.js';
import { cairnAsync, ostreeAsync, TestServer } from '../lib/net.js';

const dir = tmpdir('cairn-https-');
const src = path.join(dir, 'src');
const caPem = path.join(dir, 'ca.pem');
let server: TestServer;
let commit = '';

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** The environment without NODE_EXTRA_CA_CERTS (this test sets it where it wants it). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = { ...process.env, ...extra };
  if (!('NODE_EXTRA_CA_CERTS' in extra)) delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

function client(name: string, remoteArgs: string[] = []): string {
  const repo = path.join(dir, name);
  ok(cairn(['init', `--repo=${repo}`, '--mode=bare-user']));
  ok(cairn(['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', ...remoteArgs, 'origin', server.url]));
  return repo;
}

before(async () => {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=cairn test CA']);
  openssl(['req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'san.cnf']);
  const tree = path.join(dir, 'tree');
  makeAwkwardTree(tree, { manyFiles: 50, bigFile: 1 << 20, owners: false, xattrs: false });
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  commit = ok(cairn(['commit', `--repo=${src}`, '-b', 'os/main', '--timestamp=2024-01-01T00:00:00Z', tree]));
  ok(cairn(['summary', `--repo=${src}`, '-u']));
  server = await new TestServer(src).start({ key: fs.readFileSync(path.join(dir, 'srv.key'), 'utf8'), cert: fs.readFileSync(path.join(dir, 'srv.pem'), 'utf8') });
});
after(() => server.stop());

describe('pull over HTTPS', () => {
  it('an untrusted certificate: one line, exit 1, nothing stored', async () => {
    const repo = client('untrusted');
    const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env() });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^error: https:\/\/127\.0\.0\.1:\d+\/.*TLS certificate is not trusted/);
    assert.equal(cairn(['rev-parse', `--repo=${repo}`, 'origin:os/main']).status, 1);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'objects')), []);
    ok(cairn(['fsck', `--repo=${repo}`]));
  });

  it('NODE_EXTRA_CA_CERTS: trusted, though Node no longer reads the file as cairn starts', async () => {
    const repo = client('extra-ca');
    const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env({ NODE_EXTRA_CA_CERTS: caPem }) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'origin:os/main'])), commit);
    ok(cairn(['fsck', `--repo=${repo}`]));
    ok(ostree(['fsck', `--repo=${repo}`]));
    // a command that makes no TLS connection never opens the file
    const traced = spawnSync('strace', ['-f', '-e', 'trace=open,openat', CAIRN, 'refs', `--repo=${repo}`], { encoding: 'utf8', env: env({ NODE_EXTRA_CA_CERTS: caPem }) });
    assert.equal(traced.status, 0, traced.stderr);
    assert.match(traced.stdout, /origin:os\/main/);
    assert.ok(!traced.stderr.includes(caPem), 'the CA file is not opened');
  });

  it("a remote's tls-ca-path: trusted by cairn and by ostree; an unreadable one is one line", async () => {
    const repo = client('ca-path', [`--set=tls-ca-path=${caPem}`]);
    const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env() });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'origin:os/main'])), commit);
    const o = path.join(dir, 'ostree-ca-path');
    ok(ostree(['init', `--repo=${o}`, '--mode=bare-user']));
    ok(ostree(['remote', 'add', `--repo=${o}`, '--no-gpg-verify', `--set=tls-ca-path=${caPem}`, 'origin', server.url]));
    const or = await ostreeAsync(['pull', `--repo=${o}`, 'origin', 'os/main']);
    assert.equal(or.status, 0, or.stderr);
    assert.equal(ok(ostree(['rev-parse', `--repo=${o}`, 'origin:os/main'])), commit);

    const missing = client('ca-path-missing', [`--set=tls-ca-path=${path.join(dir, 'no-such.pem')}`]);
    const m = await cairnAsync(['pull', `--repo=${missing}`, 'origin', 'os/main'], { env: env() });
    assert.equal(m.status, 1);
    assert.match(m.stderr, /^error: tls-ca-path ".*no-such\.pem": cannot read it \(ENOENT\)\n$/);
  });
});
