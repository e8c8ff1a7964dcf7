// Bundles the compiled CLI (dist/, from tsc) into dist/bundle/: one file per entry point, so that
// a command starts by reading and compiling one module instead of resolving ~70 (measured: about
// 40 ms of every invocation). Worker entry points sit beside cairn.js, where
// `new URL('./<name>.js', import.meta.url)` finds them. Native and lazily loaded packages stay
// external and are resolved from node_modules as usual.
import { build } from 'esbuild';

await build({
  entryPoints: {
    cairn: 'dist/cli/main.js',
    'writer-pool-worker': 'dist/repo/writer-pool-worker.js',
    'content-verify-worker': 'dist/repo/content-verify-worker.js',
  },
  outdir: 'dist/bundle',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['@napi-rs/xattr', 'undici', 'commander'],
  logLevel: 'warning',
});
