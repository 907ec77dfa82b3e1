import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Connection } from 'werift';
import { checkWeriftInternals } from '../src/rtp/weriftInternals.js';

const pinned = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> })
  .dependencies.werift!;

test('the pinned werift has every internal the media paths rely on', () => {
  assert.doesNotThrow(() => checkWeriftInternals());
});

test('a werift without one of those internals is refused, naming it and the version Parley is written for', () => {
  // The ICE agent's private ensureProtocol, as a werift that renamed it would lack it.
  const agent = Connection.prototype as unknown as Record<string, unknown>;
  const ensureProtocol = agent.ensureProtocol;
  delete agent.ensureProtocol;
  try {
    assert.throws(
      () => checkWeriftInternals(),
      (err: Error) =>
        err.message.includes('Connection.ensureProtocol (a function)') &&
        err.message.includes(`written for werift ${pinned}`) &&
        !err.message.includes('Connection.queryConsent'),
    );
  } finally {
    agent.ensureProtocol = ensureProtocol;
  }
  assert.doesNotThrow(() => checkWeriftInternals(), 'whole again');
});
