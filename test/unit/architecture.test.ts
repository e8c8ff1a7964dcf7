// Layering rules (shared/DESIGN.md, STYLE.md §3), checked on every import in src/:
// format is pure; imports point down the layer table only; other subsystems are reached only
// through their public index.ts.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../lib/helpers.js';

const SRC = path.join(ROOT, 'src');
const LAYER: Record<string, number> = { 'errors.ts': 0, util: 0, format: 1, repo: 2, delta: 3, transport: 3, sysroot: 4, trust: 5, cli: 9 };
const IMPURE = /^(node:)?(fs|fs\/promises|child_process|net|http|https|http2|dgram|worker_threads|cluster)$|^undici$|^@napi-rs\/xattr$/;

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function subsystem(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? rel[0]! : rel[0]!;
}

it('every import in src/ respects the layering rules', () => {
  const problems: string[] = [];
  for (const file of files(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const from = subsystem(file);
    const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2]!);
    for (const spec of specs) {
      const where = `${path.relative(ROOT, file)} imports ${spec}`;
      if (!spec.startsWith('.')) {
        if (from === 'format' && IMPURE.test(spec)) problems.push(`${where}: format code must stay pure`);
        continue;
      }
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      const to = subsystem(target);
      if (to === from) continue;
      if ((LAYER[to] ?? 99) > (LAYER[from] ?? 99)) problems.push(`${where}: ${from} may not import the higher layer ${to}`);
      const rel = path.relative(path.join(SRC, to), target);
      if (to !== 'errors.ts' && rel !== 'index.ts') problems.push(`${where}: use ${to}/index.ts, not its internals`);
    }
  }
  assert.deepEqual(problems, []);
});
