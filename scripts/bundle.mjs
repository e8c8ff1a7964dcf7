// Bundles the compiled CLI (dist/, from tsc) into dist/bundle/: one CommonJS file per entry point,
// so that a command starts by compiling one module instead of resolving ~70 ESM files (measured:
// `cairn --version` 0.16 s -> 0.11 s as one ESM file -> 0.095 s as CommonJS, which loads without
// the ESM loader's asynchronous file reads). Worker entry points sit beside cairn.js, where
// `new URL('./<name>.js', import.meta.url)` finds them; import.meta.url is defined as the
// bundle's own file URL. Native and lazily loaded packages stay external.
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: {
    cairn: 'dist/cli/main.js',
    'writer-pool-worker': 'dist/repo/writer-pool-worker.js',
  },
  outdir: 'dist/bundle',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['@napi-rs/xattr', 'undici'],
  define: { 'import.meta.url': '__cairnBundleUrl' },
  banner: { js: 'const __cairnBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  logLevel: 'warning',
});
// the package is "type": "module"; these files are CommonJS
writeFileSync('dist/bundle/package.json', '{ "type": "commonjs" }\n');

// `import * as fs from 'node:fs'` becomes `__toESM(require("node:fs"), 1)`: a copy of the module
// with a getter per property (~100 for fs), made once per importing file (34 for fs) at start-up,
// and a getter call on every use after. The module object itself serves a namespace import; only
// a default import (`import fs from 'node:fs'`, used as `import_node_fs.default`) needs the copy,
// so the build refuses one rather than break it.
for (const name of ['cairn', 'writer-pool-worker']) {
  const file = `dist/bundle/${name}.js`;
  const text = readFileSync(file, 'utf8');
  const defaultUse = /import_node_[a-z_]+\.default\b/.exec(text);
  if (defaultUse) throw new Error(`${file}: a default import of a Node built-in (${defaultUse[0]}); use a namespace or named import`);
  writeFileSync(file, text.replace(/__toESM\(require\("(node:[a-z_/]+)"\), 1\)/g, 'require("$1")'));
}
