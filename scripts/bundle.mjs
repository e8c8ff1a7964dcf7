// Bundles the compiled CLI (dist/, from tsc) into dist/bundle/: one CommonJS file per entry point,
// so that a command starts by compiling one module instead of resolving ~70 ESM files (measured:
// `cairn --version` 0.16 s -> 0.11 s as one ESM file -> 0.095 s as CommonJS, which loads without
// the ESM loader's asynchronous file reads). Worker entry points sit beside cairn.js, where
// `new URL('./<name>.js', import.meta.url)` finds them; import.meta.url is defined as the
// bundle's own file URL. Native and lazily loaded packages stay external.
import { writeFileSync } from 'node:fs';
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
