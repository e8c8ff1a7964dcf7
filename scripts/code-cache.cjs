'use strict';
// Copied to dist/bundle/code-cache.js by scripts/bundle.mjs.
//
// V8 code cache for cairn's bundle files. Node 20 compiles a script's functions lazily, the
// first time each is called: a delta pull compiled a few hundred of them (parse, then bytecode),
// ~30 ms of its main thread. The build runs pulls through the CLI in one process
// (scripts/train-code-cache.cjs) and saves V8's cached data for the functions they compiled;
// `load` hands it back to V8, which then skips those compiles (dist/bundle/cairn.js does so for
// `cairn pull` only).
//
// A cache file is `<header line>\n<V8 cached data>`. The header names the Node version, the
// SHA-256 of the bundle file and the SHA-256 of the data (~1.5 ms in all for cli.js): V8 itself
// checks only its own version, its flags and the source's length, so it would run the bytecode
// of another source of the same length, and in a release build it does not check the data: a
// damaged cache stops the process in V8's deserializer. A cache that is missing, stale, damaged
// or refused by V8 costs nothing but the compiles it would have saved.
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { Module, createRequire } = require('node:module');

const MAGIC = 'cairn-code-cache 1';
/** file -> { script, identity, status: 'used' | 'rejected' (by V8) | 'damaged' | 'stale' | 'none' } */
const loaded = new Map();

const sha256 = (b) => createHash('sha256').update(b).digest('hex');

/** The header's start: what the cache must have been made for. */
function identity(source) {
  return `${MAGIC} node ${process.version} source ${sha256(source)} data `;
}

function cacheFor(file, id) {
  let buf;
  try {
    buf = fs.readFileSync(`${file}.cache`);
  } catch {
    return { data: undefined, status: 'none' };
  }
  const nl = buf.indexOf(10);
  const header = nl < 0 ? '' : buf.toString('latin1', 0, nl);
  if (!header.startsWith(id)) return { data: undefined, status: 'stale' };
  const data = buf.subarray(nl + 1);
  if (header.slice(id.length) !== sha256(data)) return { data: undefined, status: 'damaged' };
  return { data, status: 'used' };
}

/** Compiles and runs a CommonJS file as Node's loader would, with its code cache when there is a valid one. */
function load(file) {
  const source = fs.readFileSync(file);
  const id = identity(source);
  const { data, status } = cacheFor(file, id);
  // (no dynamic import() in the bundle: a vm.Script has no loader for it)
  const script = new vm.Script(Module.wrap(source.toString('utf8')), { filename: file, cachedData: data });
  loaded.set(file, { script, identity: id, status: data && script.cachedDataRejected ? 'rejected' : status });
  const m = new Module(file, null);
  m.filename = file;
  require.cache[file] = m;
  script.runInThisContext().call(m.exports, m.exports, createRequire(file), m, file, path.dirname(file));
  m.loaded = true;
  return m.exports;
}

/**
 * Makes `require(file)` (from anywhere) go through `load`, on first use: for a bundle file that
 * is loaded lazily (undici's Agent, at a pull's first request).
 */
function loadLazily(file) {
  const m = new Module(file, null);
  m.filename = file;
  m.loaded = true;
  let exports;
  Object.defineProperty(m, 'exports', {
    configurable: true,
    enumerable: true,
    get: () => {
      if (exports === undefined) {
        delete require.cache[file];
        exports = load(file);
      }
      return exports;
    },
  });
  require.cache[file] = m;
}

/** Writes the cache of every file loaded so far, with the functions compiled by now (the build's training run). */
function save() {
  for (const [file, { script, identity: id }] of loaded) {
    const tmp = `${file}.cache.${process.pid}`;
    const data = script.createCachedData();
    fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${id}${sha256(data)}\n`, 'latin1'), data]));
    fs.renameSync(tmp, `${file}.cache`);
  }
}

/** How each loaded file's cache was used: 'used', 'rejected' (by V8), 'damaged', 'stale' or 'none'. */
function status() {
  return Object.fromEntries([...loaded].map(([file, { status: s }]) => [path.basename(file), s]));
}

module.exports = { load, loadLazily, save, status };
