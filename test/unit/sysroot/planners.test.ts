// Pure sysroot planners: systemd-boot ordering and counting, entry names, the /etc merge plan,
// deployment lists (retention, rollback), bootserials and kernel arguments.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  badFileName, blessedFileName, chooseBootEntry, formatEntryFileName, parseEntryFileName, sortMenuEntries,
} from '../../../src/sysroot/boot-counting.js';
import { planEtcMerge, type EtcNode } from '../../../src/sysroot/etc-merge-plan.js';
import {
  type Deployment, assignBootserials, planDeployList, planRollbackList, requiresNewBootversion, rollbackTarget,
} from '../../../src/sysroot/deployments-plan.js';
import { deleteKarg, replaceKarg, userKargs } from '../../../src/sysroot/kargs.js';
import { compareVersions } from '../../../src/sysroot/bls.js';

describe('boot counting', () => {
  it('parses and formats counter suffixes', () => {
    const table: [string, ReturnType<typeof parseEntryFileName>][] = [
      ['ostree-1-testos.conf', { id: 'ostree-1-testos' }],
      ['ostree-2-testos+3.conf', { id: 'ostree-2-testos', triesLeft: 3, triesDone: 0 }],
      ['ostree-2+1-2.conf', { id: 'ostree-2', triesLeft: 1, triesDone: 2 }],
      ['ostree-2+0-3.conf', { id: 'ostree-2', triesLeft: 0, triesDone: 3 }],
      ['README', null],
    ];
    for (const [name, want] of table) assert.deepEqual(parseEntryFileName(name), want, name);
    assert.equal(formatEntryFileName({ id: 'a', triesLeft: 3 }), 'a+3.conf');
    assert.equal(formatEntryFileName({ id: 'a', triesLeft: 2, triesDone: 1 }), 'a+2-1.conf');
    assert.equal(blessedFileName('a+2-1.conf'), 'a.conf');
    assert.equal(badFileName('a+2-1.conf'), 'a+0-1.conf');
    assert.equal(badFileName('a.conf'), 'a.conf');
  });

  it('orders like systemd-boot: bad last, id descending (version-aware), more tries first', () => {
    const e = (fileName: string) => ({ fileName });
    assert.deepEqual(sortMenuEntries([e('ostree-9-os.conf'), e('ostree-10-os+0-3.conf'), e('ostree-2-os.conf')]).map((x) => x.fileName),
      ['ostree-9-os.conf', 'ostree-2-os.conf', 'ostree-10-os+0-3.conf']);
    assert.deepEqual(sortMenuEntries([e('ostree-9-os.conf'), e('ostree-10-os+1-2.conf')]).map((x) => x.fileName), ['ostree-10-os+1-2.conf', 'ostree-9-os.conf']);
    assert.deepEqual(sortMenuEntries([e('a+1-2.conf'), e('a+2-1.conf')]).map((x) => x.fileName), ['a+2-1.conf', 'a+1-2.conf']);
    assert.deepEqual(sortMenuEntries([{ fileName: 'z.conf' }, { fileName: 'a.conf', sortKey: 'os', version: '1' }]).map((x) => x.fileName), ['a.conf', 'z.conf']);
  });

  it('chooses the first entry and counts it down; bad-only menus still boot, uncounted', () => {
    assert.deepEqual(chooseBootEntry([{ fileName: 'b+3.conf' }, { fileName: 'a.conf' }])?.rename, { from: 'b+3.conf', to: 'b+2-1.conf' });
    assert.equal(chooseBootEntry([{ fileName: 'b+0-3.conf' }, { fileName: 'a.conf' }])?.entry.fileName, 'a.conf');
    const only = chooseBootEntry([{ fileName: 'b+0-3.conf' }]);
    assert.equal(only?.entry.fileName, 'b+0-3.conf');
    assert.equal(only?.rename, undefined);
    assert.equal(chooseBootEntry([]), null);
  });

  it('compares versions numerically', () => {
    assert.ok(compareVersions('10', '9') > 0);
    assert.ok(compareVersions('ostree-2', 'ostree-10') < 0);
    assert.equal(compareVersions('1.0', '1.0'), 0);
  });
});

describe('/etc merge plan', () => {
  const f = (hash: string, mode = 0o644): EtcNode => ({ type: 'file', mode, uid: 0, gid: 0, hash });
  const d = (mode = 0o755): EtcNode => ({ type: 'dir', mode, uid: 0, gid: 0 });
  it('classifies removed, added (whole dirs once), modified (dirs by metadata)', () => {
    const orig = new Map<string, EtcNode>([['a', f('1')], ['b', f('1')], ['gone.d', d()], ['gone.d/x', f('1')], ['m.d', d()], ['same', f('s')]]);
    const cur = new Map<string, EtcNode>([['a', f('2')], ['new.d', d()], ['new.d/y', f('1')], ['m.d', d(0o700)], ['same', f('s')], ['b', f('1', 0o600)]]);
    assert.deepEqual(planEtcMerge(orig, cur), { removed: ['gone.d'], added: ['new.d'], modified: ['a', 'b', 'm.d'], modifiedDirs: ['m.d'] });
  });
});

describe('deployment lists', () => {
  const dep = (csum: string, o: Partial<Deployment> = {}): Deployment => ({
    stateroot: 'os', csum, deployserial: 0, bootcsum: 'k', bootserial: 0, originText: null, pinned: false, kargs: [],
    entry: null, entryFile: null, staged: false, ...o,
  });
  const names = (l: Deployment[]) => l.map((x) => x.csum);
  const [a, b, c, n] = [dep('a'), dep('b'), dep('c'), dep('n')];
  it('not booted: new + merge (the previous default), pinned and other stateroots kept', () => {
    assert.deepEqual(names(planDeployList({ current: [a, b], newDeployment: n, stateroot: 'os', booted: null, merge: a })), ['n', 'a']);
    const pb = dep('b', { pinned: true });
    const other = dep('x', { stateroot: 'other' });
    assert.deepEqual(names(planDeployList({ current: [a, pb, other], newDeployment: n, stateroot: 'os', booted: null, merge: a })), ['n', 'a', 'b', 'x']);
    assert.deepEqual(names(planDeployList({ current: [], newDeployment: n, stateroot: 'os', booted: null, merge: null })), ['n']);
  });
  it('booted: new (pending), booted and one rollback; an old pending one goes', () => {
    assert.deepEqual(names(planDeployList({ current: [a, b, c], newDeployment: n, stateroot: 'os', booted: b, merge: b })), ['n', 'b', 'c']);
    assert.deepEqual(names(planDeployList({ current: [a, b], newDeployment: n, stateroot: 'os', booted: a, merge: a })), ['n', 'a', 'b']);
    assert.deepEqual(names(planDeployList({ current: [a, b], newDeployment: n, stateroot: 'os', booted: a, merge: a, notAsDefault: true })), ['a', 'n', 'b']);
    assert.deepEqual(names(planDeployList({ current: [a, b, c], newDeployment: n, stateroot: 'os', booted: b, merge: b, retain: true })), ['n', 'a', 'b', 'c']);
  });
  it('rollback target and order', () => {
    assert.equal(rollbackTarget([a, b], null, 'os')?.csum, 'b');
    assert.equal(rollbackTarget([a, b], a, 'os')?.csum, 'b');
    assert.equal(rollbackTarget([a, b], b, 'os')?.csum, 'b');
    assert.equal(rollbackTarget([a], a, 'os'), null);
    assert.deepEqual(names(planRollbackList([a, b, c], c)), ['c', 'a', 'b']);
  });
  it('bootserials per bootcsum; new bootversion only when the bootloader view changes', () => {
    const l = assignBootserials([dep('a'), dep('b'), dep('c', { bootcsum: 'j' })]);
    assert.deepEqual(l.map((x) => x.bootserial), [0, 1, 0]);
    assert.equal(requiresNewBootversion(l, l), false);
    assert.equal(requiresNewBootversion(l, [l[1]!, l[0]!, l[2]!]), false);
    assert.equal(requiresNewBootversion(l, l.slice(0, 2)), true);
    assert.equal(requiresNewBootversion(l, [{ ...l[0]!, kargs: ['quiet'] }, l[1]!, l[2]!]), true);
  });
  it('kernel arguments: replace by key, delete, ostree-managed ones dropped', () => {
    assert.deepEqual(replaceKarg(['root=a', 'quiet', 'root=b'], 'root=c'), ['root=c', 'quiet']);
    assert.deepEqual(replaceKarg(['quiet'], 'root=c'), ['quiet', 'root=c']);
    assert.deepEqual(deleteKarg(['a=1', 'a=2', 'b'], 'a=2'), ['a=1', 'b']);
    assert.deepEqual(deleteKarg(['a=1', 'a=2', 'b'], 'a'), ['b']);
    assert.deepEqual(userKargs(['quiet', 'ostree=/ostree/boot.1/os/k/0', 'init=/ostree/boot.1/os/k/0/usr/lib/ostree/ostree-prepare-root']), ['quiet']);
  });
});
