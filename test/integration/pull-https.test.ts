// Pull over HTTPS from servers on 127.0.0.1 whose certificates a test CA signed: trusted through
// NODE_EXTRA_CA_CERTS (which bin/cairn defers past Node's start-up: the file is not read unless a
// TLS connection is made) or through the remote's tls-ca-path, as ostree reads it; refused with
// one line and nothing stored when the CA is not trusted; a client certificate for a server that
// asks for one (tls-client-cert-path / tls-client-key-path); tls-permissive.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { CAIRN, cairn, ok, ostree, tmpdir } from '../lib/helpers.js';
import { makeAwkwardTree } from '../lib/trees.js';
import { cairnAsync, cairnServe, connectProxy, ostreeAsync, TestServer } from '../lib/net.js';

const dir = tmpdir('cairn-https-');
const src = path.join(dir, 'src');
const caPem = path.join(dir, 'ca.pem');
let server: TestServer;
let mtls: TestServer; // asks for a client certificate signed by the test CA
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

function client(name: string, remoteArgs: string[] = [], url = server.url): string {
  const repo = path.join(dir, name);
  ok(cairn(['init', `--repo=${repo}`, '--mode=bare-user']));
  ok(cairn(['remote', 'add', `--repo=${repo}`, '--no-gpg-verify', ...remoteArgs, 'origin', url]));
  return repo;
}

const pem = (name: string): string => fs.readFileSync(path.join(dir, name), 'utf8');

before(async () => {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=cairn test CA']);
  openssl(['req', ...ec, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'san.cnf']);
  openssl(['req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=cairn test host']);
  openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2']);
  // a client certificate from a CA the server does not know
  openssl(['req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2', '-subj', '/CN=another CA']);
  openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'other-ca.pem', '-CAkey', 'other-ca.key', '-CAcreateserial', '-out', 'stranger.pem', '-days', '2']);
  const tree = path.join(dir, 'tree');
  makeAwkwardTree(tree, { manyFiles: 50, bigFile: 1 << 20, owners: false, xattrs: false });
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  commit = ok(cairn(['commit', `--repo=${src}`, '-b', 'os/main', '--timestamp=2024-01-01T00:00:00Z', tree]));
  ok(cairn(['summary', `--repo=${src}`, '-u']));
  server = await new TestServer(src).start({ key: pem('srv.key'), cert: pem('srv.pem') });
  mtls = await new TestServer(src).start({ key: pem('srv.key'), cert: pem('srv.pem'), ca: pem('ca.pem'), requestCert: true, rejectUnauthorized: true });
});
after(async () => {
  await server.stop();
  await mtls.stop();
});

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
    // nor does a pull from an http:// remote
    const plain = await cairnServe(src);
    try {
      const repo2 = client('extra-ca-http', [], plain.url);
      const pulled = spawnSync('strace', ['-f', '-e', 'trace=open,openat', CAIRN, 'pull', '-q', `--repo=${repo2}`, 'origin', 'os/main'], { encoding: 'utf8', env: env({ NODE_EXTRA_CA_CERTS: caPem }) });
      assert.equal(pulled.status, 0, pulled.stderr);
      assert.equal(ok(cairn(['rev-parse', `--repo=${repo2}`, 'origin:os/main'])), commit);
      assert.ok(!pulled.stderr.includes(caPem), 'the CA file is not opened');
    } finally {
      await plain.stop();
    }
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
    assert.match(m.stderr, /^error: remote "origin": tls-ca-path ".*no-such\.pem": cannot read it \(ENOENT\)\n$/);
  });

  it('a client certificate for a server that asks for one; ostree reads the same options', async () => {
    const ca = `--set=tls-ca-path=${caPem}`;
    const without = client('mtls-none', [ca], mtls.url);
    const r0 = await cairnAsync(['pull', `--repo=${without}`, 'origin', 'os/main'], { env: env() });
    assert.equal(r0.status, 1);
    // TLS 1.3: the refusal comes as an alert after the handshake; it is named, and not retried
    assert.match(r0.stderr, /^error: https:\/\/127\.0\.0\.1:\d+\/summary(\.sig)?: the server requires a TLS client certificate \(the remote's tls-client-cert-path and tls-client-key-path\)\n$/);
    assert.equal(cairn(['rev-parse', `--repo=${without}`, 'origin:os/main']).status, 1);
    // a certificate from a CA the server does not know: Node's server closes without an alert,
    // so all the client can say is that the connection closed (one line, after the retries)
    const stranger = client('mtls-stranger', [ca, `--set=tls-client-cert-path=${path.join(dir, 'stranger.pem')}`, `--set=tls-client-key-path=${path.join(dir, 'client.key')}`], mtls.url);
    const rs = await cairnAsync(['pull', `--repo=${stranger}`, 'origin', 'os/main'], { env: env() });
    assert.equal(rs.status, 1);
    assert.match(rs.stderr, /^error: https:\/\/127\.0\.0\.1:\d+\/summary(\.sig)?: connection failed or closed early \(other side closed\)\n$/);

    const certArgs = [ca, `--set=tls-client-cert-path=${path.join(dir, 'client.pem')}`, `--set=tls-client-key-path=${path.join(dir, 'client.key')}`];
    const repo = client('mtls', certArgs, mtls.url);
    const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env() });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'origin:os/main'])), commit);
    ok(ostree(['fsck', `--repo=${repo}`]));
    const o = path.join(dir, 'ostree-mtls');
    ok(ostree(['init', `--repo=${o}`, '--mode=bare-user']));
    ok(ostree(['remote', 'add', `--repo=${o}`, '--no-gpg-verify', ...certArgs, 'origin', mtls.url]));
    const or = await ostreeAsync(['pull', `--repo=${o}`, 'origin', 'os/main']);
    assert.equal(or.status, 0, or.stderr);

    const half = client('mtls-half', [ca, `--set=tls-client-cert-path=${path.join(dir, 'client.pem')}`], mtls.url);
    const h = await cairnAsync(['pull', `--repo=${half}`, 'origin', 'os/main'], { env: env() });
    assert.equal(h.status, 1);
    assert.equal(h.stderr, 'error: remote "origin": tls-client-cert-path and tls-client-key-path must be set together\n');
    // a key that is not the certificate's
    const wrong = client('mtls-wrong', [ca, `--set=tls-client-cert-path=${path.join(dir, 'client.pem')}`, `--set=tls-client-key-path=${path.join(dir, 'srv.key')}`], mtls.url);
    const w = await cairnAsync(['pull', `--repo=${wrong}`, 'origin', 'os/main'], { env: env() });
    assert.equal(w.status, 1);
    assert.match(w.stderr, /^error: remote "origin": TLS client certificate or key is unusable \(.+\)\n$/);
  });

  it('through an HTTPS_PROXY tunnel: the same trust (tls-ca-path, NODE_EXTRA_CA_CERTS, client certificate)', async () => {
    const proxy = await connectProxy();
    try {
      const via = { HTTPS_PROXY: proxy.url, NO_PROXY: '', no_proxy: '' };
      const certArgs = [`--set=tls-client-cert-path=${path.join(dir, 'client.pem')}`, `--set=tls-client-key-path=${path.join(dir, 'client.key')}`];
      const cases: [string, string[], Record<string, string>, string][] = [
        ['proxy-ca-path', [`--set=tls-ca-path=${caPem}`], {}, server.url],
        ['proxy-extra-ca', [], { NODE_EXTRA_CA_CERTS: caPem }, server.url],
        ['proxy-mtls', [`--set=tls-ca-path=${caPem}`, ...certArgs], {}, mtls.url],
      ];
      for (const [name, args, extra, url] of cases) {
        const before = proxy.connects();
        const repo = client(name, args, url);
        const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env({ ...via, ...extra }) });
        assert.equal(r.status, 0, `${name}: ${r.stderr}`);
        assert.ok(proxy.connects() > before, `${name}: the proxy was used`);
        assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'origin:os/main'])), commit);
      }
      const untrusted = client('proxy-untrusted');
      const u = await cairnAsync(['pull', `--repo=${untrusted}`, 'origin', 'os/main'], { env: env(via) });
      assert.equal(u.status, 1);
      assert.match(u.stderr, /TLS certificate is not trusted/);
    } finally {
      proxy.close();
    }
  });

  it('a server that refuses the handshake: one line naming its TLS alert, and no retries', async () => {
    // speaks only TLS 1.0-1.1, which Node's client refuses to negotiate; counts the handshakes
    let handshakes = 0;
    const old = https.createServer({ key: pem('srv.key'), cert: pem('srv.pem'), minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
    old.on('tlsClientError', () => handshakes++);
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', () => r()));
    try {
      const repo = client('old-tls', [`--set=tls-ca-path=${caPem}`], `https://127.0.0.1:${(old.address() as AddressInfo).port}/`);
      const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env() });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /^error: https:\/\/127\.0\.0\.1:\d+\/summary(\.sig)?: the server refused the TLS connection \(tlsv1 alert protocol version\)\n$/);
      // summary and summary.sig are asked for at once: one handshake each, none again
      assert.ok(handshakes >= 1 && handshakes <= 2, `${handshakes} handshakes: not retried`);
    } finally {
      await new Promise((r) => old.close(r));
    }
  });

  it('tls-permissive=true pulls from a server whose certificate is not trusted; a bad value is refused', async () => {
    const repo = client('permissive', ['--set=tls-permissive=true']);
    const r = await cairnAsync(['pull', `--repo=${repo}`, 'origin', 'os/main'], { env: env() });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(ok(cairn(['rev-parse', `--repo=${repo}`, 'origin:os/main'])), commit);
    const bad = client('permissive-bad', ['--set=tls-permissive=maybe']);
    const b = await cairnAsync(['pull', `--repo=${bad}`, 'origin', 'os/main'], { env: env() });
    assert.equal(b.status, 1);
    assert.equal(b.stderr, 'error: remote "origin": tls-permissive="maybe" is not a boolean\n');
  });
});
