import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKey } from '../../../src/network/api-message-types.ts';
import { API_SPECS } from '../../../src/protocol/messages/index.ts';

test('ApiKey names every API of the generated codecs, with the same key', () => {
  const named = new Map<string, number>(Object.entries(ApiKey));
  for (const spec of API_SPECS) assert.equal(named.get(spec.name), spec.apiKey, `ApiKey.${spec.name}`);
  assert.equal(named.size, API_SPECS.length);
});
