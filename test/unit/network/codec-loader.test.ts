import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codecModuleName, loadCodec, loadedCodec } from '../../../src/network/codec-loader.ts';
import { API_SPECS } from '../../../src/protocol/messages/index.ts';

test('every API codec loads from its file, and is the generated one', async () => {
  for (const spec of API_SPECS) {
    const codec = await loadCodec(spec.apiKey);
    assert.equal(codec.writeRequest, spec.writeRequest, spec.name);
    assert.equal(codec.readResponse, spec.readResponse, spec.name);
    assert.equal(loadedCodec(spec.apiKey), codec);
  }
  assert.equal(codecModuleName(2), '002-list-offsets');
  assert.equal(codecModuleName(75), '075-describe-topic-partitions');
  assert.equal(codecModuleName(999), undefined);
  await assert.rejects(loadCodec(999));
});
