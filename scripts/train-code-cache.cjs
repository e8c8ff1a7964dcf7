'use strict';
// Run by scripts/bundle.mjs, with the V8 flags bin/cairn uses (none: a cache made under other
// flags is refused): runs pulls through the CLI in this one process, so that V8 compiles the functions a
// pull calls, then saves the code caches of dist/bundle/cli.js and undici-agent.js (see
// scripts/code-cache.cjs). Only `cairn pull` uses them: deserializing a cache costs in proportion
// to its size, and a short command (`refs`, `--version`) was ~6 ms slower with one than compiling
// the few functions it calls. So the source repository is made and served by other processes:
// two versions of a small tree committed into an archive repo, a static delta between them. This
// one pulls it object by object, through the delta, and updates by objects. A step that fails (no
// xz, say) leaves its functions out of the cache, nothing else.
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

// The caches are loaded under node's default flags (bin/cairn passes none), and V8 refuses one
// made under others: the first fetcher would set --liftoff-only (src/transport/fetcher.ts) in this
// process, before the caches are saved. Not here.
require('node:v8').setFlagsFromString = () => {};

const bundle = path.join(__dirname, '..', 'dist', 'bundle');
const cache = require(path.join(bundle, 'code-cache.js'));
cache.loadLazily(path.join(bundle, 'undici-agent.js'));
const { main } = cache.load(path.join(bundle, 'cli.js'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-train-'));
const failed = [];
async function cairn(...args) {
  const code = await main(args);
  if (code !== 0) failed.push(args.slice(0, 2).join(' '));
}

function tree(root, version) {
  fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  const text = (n) => Array.from({ length: n }, (_, i) => `line ${i} of version ${version}\n`).join('');
  fs.writeFileSync(path.join(root, 'etc', 'os-release'), `VERSION=${version}\n`);
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(root, 'usr', `file-${i}.txt`), text(50 + i));
  // an x86-64 ELF header, so that the generator's executables part is made and applied too
  const elf = Buffer.alloc(64 * 1024 + version * 512);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf);
  elf.writeUInt16LE(62, 18);
  for (let i = 64; i < elf.length; i++) elf[i] = (i * 31 + (i >> 9) * version) & 0xff;
  fs.writeFileSync(path.join(root, 'usr', 'bin', 'tool'), elf, { mode: 0o755 });
  fs.symlinkSync('tool', path.join(root, 'usr', 'bin', 'tool-link'));
  if (version === 2) {
    fs.writeFileSync(path.join(root, 'usr', 'new-in-2'), text(500));
    // a new file over --min-fallback-size: a fallback object, fetched loose beside the delta
    const blob = Buffer.alloc(1100 * 1024);
    for (let i = 0, x = 1; i < blob.length; i++) blob[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
    fs.writeFileSync(path.join(root, 'usr', 'blob.dat'), blob);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitForServer(port) {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.end(() => resolve(true)));
      c.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the training server did not start');
}

/** A command in another process (the source side of the workload). */
function other(...args) {
  try {
    execFileSync(process.execPath, [path.join(bundle, 'cairn.js'), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    failed.push(args.slice(0, 2).join(' '));
  }
}

let server = null;
// the server and the files must not outlive this process, however it ends (the build kills it after 120 s)
process.on('exit', () => {
  server?.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(1));

async function workload() {
  const src = path.join(dir, 'src');
  tree(path.join(dir, 't1'), 1);
  tree(path.join(dir, 't2'), 2);
  other('init', `--repo=${src}`, '--mode=archive');
  other('commit', `--repo=${src}`, '-b', 'v1', '-s', 'one', `--tree=dir=${path.join(dir, 't1')}`);
  other('commit', `--repo=${src}`, '-b', 'main', '-s', 'two', `--tree=dir=${path.join(dir, 't2')}`);
  other('static-delta', 'generate', `--repo=${src}`, '--from=v1', '--to=main', '--min-fallback-size=1');
  other('summary', `--repo=${src}`, '-u');
  const port = await freePort();
  server = spawn(process.execPath, [path.join(bundle, 'cairn.js'), 'serve', `--repo=${src}`, `--port=${port}`], { stdio: 'ignore' });
  await waitForServer(port);
  for (const [name, flag] of [['delta', '--require-static-deltas'], ['objects', '--disable-static-deltas']]) {
    const dst = path.join(dir, name);
    await cairn('init', `--repo=${dst}`, '--mode=bare-user');
    await cairn('remote', 'add', `--repo=${dst}`, '--no-gpg-verify', 'origin', `http://127.0.0.1:${port}`);
    await cairn('pull', `--repo=${dst}`, '-q', '--disable-static-deltas', 'origin', 'v1');
    await cairn('pull', `--repo=${dst}`, '-q', flag, 'origin', 'main');
  }
}

// the workload's own output is not the build's
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = () => true;
workload()
  .then(() => {
    cache.save();
    process.stdout.write = write;
    if (failed.length > 0) console.error(`code cache: trained without ${failed.join(', ')} (they failed)`);
  })
  .catch((e) => {
    console.error(`code cache: training failed, no cache saved (${e.message})`);
    process.exitCode = 1;
  })
  .finally(() => process.exit());
