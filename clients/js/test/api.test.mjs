// The package's surface against its declared types: every class member, option and code that
// index.d.ts names exists in src/, and src/ exports nothing public that index.d.ts does not name.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as sdk from '../src/index.js';
import { Emitter } from '../src/emitter.js';

const DTS = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');

/** The members a `declare class Name … { … }` block of index.d.ts lists. */
function declaredMembers(name) {
  const start = DTS.search(new RegExp(`declare class ${name}\\b`));
  assert.ok(start >= 0, `index.d.ts declares ${name}`);
  const body = DTS.slice(DTS.indexOf('{', start) + 1, DTS.indexOf('\n}', start));
  const members = new Set();
  for (const line of body.split('\n')) {
    const m = line.match(/^\s{2}(?:readonly\s+)?([a-zA-Z]+)[?<(:]/);
    if (m && m[1] !== 'constructor') members.add(m[1]);
  }
  return members;
}

/** Public members of a class at runtime (prototype methods and getters; not #private, not inherited). */
function runtimeMembers(cls) {
  return new Set(Object.getOwnPropertyNames(cls.prototype).filter((n) => n !== 'constructor'));
}

test('every export of src/index.js is declared, and every declared export exists', () => {
  const declared = new Set([...DTS.matchAll(/^export declare (?:class|const) (\w+)/gm)].map((m) => m[1]));
  assert.deepEqual(new Set(Object.keys(sdk)), declared);
});

for (const [name, cls] of [
  ['HubClient', sdk.HubClient],
  ['Room', sdk.Room],
  ['Emitter', Emitter],
]) {
  test(`${name}: the members index.d.ts declares are the ones it has`, () => {
    assert.deepEqual(runtimeMembers(cls), declaredMembers(name));
  });
}

test('HubError: code (and maybeStored) as declared', () => {
  const err = new sdk.HubError('timeout', 'x', { maybeStored: false });
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'timeout');
  assert.equal(err.maybeStored, false);
  assert.ok(declaredMembers('HubError').has('code'));
});

test('options: DEFAULTS holds exactly the declared options (but token and the constructors)', () => {
  const body = DTS.slice(DTS.indexOf('export interface HubClientOptions'), DTS.indexOf('export interface SubscribeOptions'));
  const declared = new Set([...body.matchAll(/^\s{2}(\w+)\?:/gm)].map((m) => m[1]));
  declared.delete('token');
  declared.delete('WebSocket');
  declared.delete('EventSource');
  declared.delete('fetch');
  assert.deepEqual(new Set(Object.keys(sdk.DEFAULTS)), declared);
  assert.throws(() => new sdk.HubClient('ws://x/ws', { WebSocket: class {}, reconectDelayMax: 1 }), /unknown option "reconectDelayMax"/);
});

test('codes: the same names and values', () => {
  const body = DTS.slice(DTS.indexOf('export declare const Codes'), DTS.indexOf('}>;', DTS.indexOf('export declare const Codes')));
  const declared = Object.fromEntries([...body.matchAll(/(\w+): '(\w+)'/g)].map((m) => [m[1], m[2]]));
  assert.deepEqual({ ...sdk.Codes }, declared);
});
