import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiKey, type RequestOf, type ResponseOf } from '../../../src/network/api-message-types.ts';
import type { ProduceRequestInput, ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import { API_SPECS } from '../../../src/protocol/messages/index.ts';

test('ApiKey names every API of the generated codecs, with the same key', () => {
  const named = new Map<string, number>(Object.entries(ApiKey));
  for (const spec of API_SPECS) assert.equal(named.get(spec.name), spec.apiKey, `ApiKey.${spec.name}`);
  assert.equal(named.size, API_SPECS.length);
});

test('the request and response types are those of the API key (checked by the type checker)', () => {
  const request: RequestOf<typeof ApiKey.Produce> = { acks: -1 } satisfies ProduceRequestInput;
  const response = undefined as ResponseOf<typeof ApiKey.Produce> | undefined;
  const same: ProduceResponse | undefined = response;
  assert.equal(request.acks, -1);
  assert.equal(same, undefined);
});
