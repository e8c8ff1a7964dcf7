'use strict';
// Copied to dist/bundle/cairn.js by scripts/bundle.mjs: the CLI's entry point (bin/cairn runs it).
// It loads the bundle (cli.js) and runs the command; for a pull, the bundle and undici's Agent
// (undici-agent.js, loaded on the first request) come with their V8 code caches (code-cache.js).
// Only for a pull: the caches hold what a pull compiles, and a short command spends more time
// deserializing them than compiling its few functions (see scripts/train-code-cache.cjs).
const path = require('node:path');

let cache = null;
if (process.argv[2] === 'pull') {
  cache = require('./code-cache.js');
  cache.loadLazily(path.join(__dirname, 'undici-agent.js'));
}
const { main } = cache ? cache.load(path.join(__dirname, 'cli.js')) : require('./cli.js');
if (cache) {
  // The first fetcher sets V8's --liftoff-only (src/transport/fetcher.ts), after which V8 refuses
  // Node's code cache for its built-in modules: what a pull loads later is compiled from source.
  // The ones cli.js loads on first use, which a pull uses, are loaded now, from the cache
  // (node:fs's streams, for a fallback object: 2.5 ms, against 7.5 ms after).
  for (const m of ['node:child_process', 'node:os', 'node:zlib']) require(m);
  void require('node:fs').ReadStream;
}
if (process.env.CAIRN_CODE_CACHE_STATUS) process.on('exit', () => process.stderr.write(`code cache: ${JSON.stringify(cache?.status() ?? {})}\n`));

process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
