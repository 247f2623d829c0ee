import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '../../../../src/protocol/records/crc32c.ts';

test('crc32c matches the standard check value and RFC 3720 vectors', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(32, 0)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
});

test('crc32c continues a running checksum across pieces', () => {
  const data = Buffer.from('the quick brown fox jumps over the lazy dog');
  assert.equal(crc32c(data.subarray(10), crc32c(data.subarray(0, 10))), crc32c(data));
});
