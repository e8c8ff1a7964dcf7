// Bundles the compiled CLI (dist/, from tsc) into dist/bundle/: one CommonJS file per entry point,
// so that a command starts by compiling one module instead of resolving ~70 ESM files (measured:
// `cairn --version` 0.16 s -> 0.11 s as one ESM file -> 0.095 s as CommonJS, which loads without
// the ESM loader's asynchronous file reads). Worker entry points sit beside cli.js, where
// `new URL('./<name>.js', import.meta.url)` finds them; import.meta.url is defined as the
// bundle's own file URL. Native and lazily loaded packages stay external.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

const BANNER = 'const __cairnBundleUrl = require("node:url").pathToFileURL(__filename).href;';

await build({
  entryPoints: {
    cli: 'dist/cli/main.js',
    'writer-pool-worker': 'dist/repo/writer-pool-worker.js',
  },
  outdir: 'dist/bundle',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['@napi-rs/xattr', 'undici'],
  define: { 'import.meta.url': '__cairnBundleUrl' },
  banner: { js: BANNER },
  logLevel: 'warning',
});

// undici's Agent and connector, the part of undici a pull uses without a proxy, as one file that
// the fetcher loads on first use: resolving and compiling its ~60 modules one by one took
// ~10 ms of every pull. undici loads node:http2 as it loads, only to read constants, and with
// it node:tls (together ~20 ms); cairn never speaks HTTP/2 (undici's allowH2 is off), so here
// node:http2 is a stand-in that holds those constants and loads the real module if asked for
// anything else.
const HTTP2_CONSTANTS = {
  HTTP2_HEADER_AUTHORITY: ':authority', HTTP2_HEADER_METHOD: ':method', HTTP2_HEADER_PATH: ':path',
  HTTP2_HEADER_SCHEME: ':scheme', HTTP2_HEADER_CONTENT_LENGTH: 'content-length', HTTP2_HEADER_EXPECT: 'expect',
  HTTP2_HEADER_STATUS: ':status', HTTP2_HEADER_PROTOCOL: ':protocol', NGHTTP2_REFUSED_STREAM: 7, NGHTTP2_CANCEL: 8,
};
const realHttp2 = (await import('node:http2')).constants;
for (const [k, v] of Object.entries(HTTP2_CONSTANTS)) {
  if (realHttp2[k] !== v) throw new Error(`node:http2 stand-in: ${k} is ${JSON.stringify(realHttp2[k])} in this Node, not ${JSON.stringify(v)}`);
}
const http2StandIn = {
  name: 'http2-stand-in',
  setup(b) {
    b.onResolve({ filter: /^node:http2$/ }, () => ({ path: 'http2', namespace: 'cairn-http2' }));
    b.onLoad({ filter: /.*/, namespace: 'cairn-http2' }, () => ({
      contents:
        `const constants = ${JSON.stringify(HTTP2_CONSTANTS)};\n` +
        'let real;\n' +
        'module.exports = new Proxy({ constants }, { get: (t, k) => (k === "constants" ? constants : (real ??= require("node:http2"))[k]) });\n',
      loader: 'js',
    }));
  },
};
await build({
  stdin: {
    contents: "module.exports = { Agent: require('undici/lib/dispatcher/agent.js'), buildConnector: require('undici/lib/core/connect.js') };",
    resolveDir: '.',
    loader: 'js',
  },
  outfile: 'dist/bundle/undici-agent.js',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  plugins: [http2StandIn],
  logLevel: 'warning',
});
const agentText = readFileSync('dist/bundle/undici-agent.js', 'utf8');
if (/require\("node:http2"\)/.test(agentText.replace('(real ??= require("node:http2"))', ''))) throw new Error('dist/bundle/undici-agent.js: node:http2 is required outside the stand-in');

// the package is "type": "module"; these files are CommonJS
writeFileSync('dist/bundle/package.json', '{ "type": "commonjs" }\n');

// `import * as fs from 'node:fs'` becomes `__toESM(require("node:fs"), 1)`: a copy of the module
// with a getter per property (~100 for fs), made once per importing file (34 for fs) at start-up,
// and a getter call on every use after. The module object itself serves a namespace import; only
// a default import (`import fs from 'node:fs'`, used as `import_node_fs.default`) needs the copy,
// so the build refuses one rather than break it.
for (const name of ['cli', 'writer-pool-worker']) {
  const file = `dist/bundle/${name}.js`;
  const text = readFileSync(file, 'utf8');
  const defaultUse = /import_node_[a-z_]+\.default\b/.exec(text);
  if (defaultUse) throw new Error(`${file}: a default import of a Node built-in (${defaultUse[0]}); use a namespace or named import`);
  let out = text.replace(/__toESM\(require\("(node:[a-z_/]+)"\), 1\)/g, 'require("$1")');
  // esbuild puts the banner above "use strict", which is then no directive: the sources are ES
  // modules, strict, and so is the bundle
  const STRICT = '"use strict";\n';
  const bannerFirst = `${BANNER}\n${STRICT}`;
  if (out.startsWith(bannerFirst)) out = `${STRICT}${BANNER}\n${out.slice(bannerFirst.length)}`;
  if (!out.startsWith(STRICT)) throw new Error(`${file}: "use strict" is not the first line`);
  if (name === 'cli') out = lazyBuiltins(out);
  writeFileSync(file, out);
}

// The CLI's modules are all evaluated at start-up, and with them every built-in any command
// imports. These are loaded on first use instead, through a proxy that requires the module when
// a property is first read: `cairn checkout` or `--version` never loads zlib, crypto, http,
// child_process or worker_threads (`cairn --version`: 18 ms less, median of 21). The bundle
// refers to a built-in only as `name.property` (namespace imports) or `(0, name.property)(...)`
// (named imports), which the proxy serves; a property read costs ~0.1 µs more.
function lazyBuiltins(text) {
  const LAZY = ['child_process', 'crypto', 'http', 'os', 'stream', 'stream/promises', 'worker_threads', 'zlib'];
  let n = 0;
  const out = text.replace(/^(\s*(?:var|let|const) [A-Za-z0-9_$]+ = )require\("node:([a-z_/]+)"\);$/gm, (line, decl, mod) => {
    if (!LAZY.includes(mod)) return line;
    n++;
    return `${decl}__cairnLazy("node:${mod}");`;
  });
  const left = LAZY.filter((m) => out.includes(`require("node:${m}")`));
  if (left.length > 0) throw new Error(`dist/bundle/cli.js: built-ins required in a form the lazy loader does not rewrite: ${left.join(', ')}`);
  if (n === 0) throw new Error('dist/bundle/cli.js: no built-in require found to make lazy');
  const helper =
    'const __cairnLazy = (id) => { let m; const load = () => (m ??= require(id)); ' +
    'return new Proxy({}, { get: (_, k) => load()[k], has: (_, k) => k in load() }); };\n';
  const firstLine = out.indexOf('\n') + 1;
  return out.slice(0, firstLine) + helper + out.slice(firstLine);
}

// The entry point bin/cairn runs, dist/bundle/cairn.js, loads cli.js (and undici-agent.js) with
// V8 code caches that a training run makes here (scripts/code-cache.cjs,
// scripts/train-code-cache.cjs): a delta pull then compiles ~30 ms less on its main thread. A
// failed training leaves no cache, and cairn works as before without one.
copyFileSync('scripts/start.cjs', 'dist/bundle/cairn.js');
copyFileSync('scripts/code-cache.cjs', 'dist/bundle/code-cache.js');
for (const f of ['cli.js', 'undici-agent.js']) rmSync(`dist/bundle/${f}.cache`, { force: true });
if (!process.env.CAIRN_NO_CODE_CACHE) {
  // with the flags bin/cairn gives node (none): V8 refuses a cache made under others
  const t = spawnSync(process.execPath, ['scripts/train-code-cache.cjs'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  if (t.status !== 0) {
    for (const f of ['cli.js', 'undici-agent.js']) rmSync(`dist/bundle/${f}.cache`, { force: true });
    console.error(`warning: no code cache (training ${t.error ? t.error.message : `exited ${t.status ?? t.signal}`}); cairn runs without one`);
  }
}
