// Large content objects over HTTP: a small body that declares a large content (a mostly-zero
// file) is stored from a file, streamed, not inflated whole in memory (bodies over 1 MiB go to
// their partial-download file as they arrive; test/fault/pull-kill resumes them with Range).
// The real fetcher and an HTTP server on 127.0.0.1.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseChecksum } from '../../src/format/checksum.js';
import { Repo, fsck } from '../../src/repo/index.js';
import { addRemote } from '../../src/repo/remotes.js';
import { HttpFetcher } from '../../src/transport/fetcher.js';
import { HttpSource, MAX_INFLATE_IN_MEMORY, SPILL_TO_DISK } from '../../src/transport/source.js';
import { cairn, ok, ostree, tmpdir } from '../lib/helpers.js';
import { pseudoRandom } from '../lib/trees.js';
import { TestServer, cairnAsync, objectFiles } from '../lib/net.js';

const dir = tmpdir('cairn-large-bodies-');
const src = path.join(dir, 'src');
const tree = path.join(dir, 'tree');
let server: TestServer;
let sparse: string; // .filez of a mostly-zero file: a small body, a large content

/** Mostly zeros, with a few random bytes every 4 KiB: compresses ~300:1, so its body is a few hundred KiB. */
function mostlyZeros(size: number): Buffer {
  const b = Buffer.alloc(size);
  const noise = pseudoRandom(size / 512, 'sparse');
  for (let i = 0; i < noise.length; i += 8) noise.copy(b, (i / 8) * 4096, i, i + 8);
  return b;
}

before(async () => {
  fs.mkdirSync(tree, { recursive: true });
  fs.writeFileSync(path.join(tree, 'disk.img'), mostlyZeros(MAX_INFLATE_IN_MEMORY + (8 << 20)));
  ok(cairn(['init', `--repo=${src}`, '--mode=archive']));
  ok(cairn(['commit', `--repo=${src}`, '-b', 'main', tree]));
  ok(cairn(['summary', `--repo=${src}`, '-u']));
  const bySize = objectFiles(src).filter((o) => o.endsWith('.filez')).map((o) => ({ o, size: fs.statSync(path.join(src, 'objects', o)).size }));
  sparse = bySize.find((x) => x.size > 64 * 1024 && x.size < SPILL_TO_DISK)?.o ?? '';
  assert.ok(sparse, 'the object was found');
  server = await new TestServer(src).start();
});
after(() => server.stop());

const checksum = (o: string) => parseChecksum(o.replace('/', '').replace(/\.filez$/, ''));

it('a small body that declares a large content is handed over as a file, and pulls streamed', async () => {
  const fetcher = new HttpFetcher(server.url);
  try {
    const part = path.join(dir, 'sparse.part');
    const got = await new HttpSource(server.url, fetcher).content(checksum(sparse), part);
    assert.ok(got.kind === 'filez' && got.result.kind === 'file' && got.result.file === part);
    assert.deepEqual(fs.readFileSync(part), fs.readFileSync(path.join(src, 'objects', sparse)));
  } finally {
    await fetcher.close();
  }
  for (const mode of ['bare-user', 'archive'] as const) {
    const dst = path.join(dir, `pull-${mode}`);
    addRemote(Repo.init(dst, { mode, config: { fsync: 'false' } }), 'origin', server.url, { noGpgVerify: true });
    const r = await cairnAsync(['pull', `--repo=${dst}`, '-q', 'origin', 'main']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((await fsck(Repo.open(dst))).problems.map((p) => p.message), []);
    ok(ostree(['fsck', `--repo=${dst}`]), 'ostree fsck');
    assert.deepEqual(fs.readdirSync(path.join(dst, 'tmp/cairn-pull')), [], 'partial downloads cleaned up');
    const out = path.join(dir, `co-${mode}`);
    ok(ostree(['checkout', `--repo=${dst}`, '-U', 'main', out]));
    assert.ok(fs.readFileSync(path.join(out, 'disk.img')).equals(fs.readFileSync(path.join(tree, 'disk.img'))), 'disk.img identical');
  }
});
