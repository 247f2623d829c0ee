import assert from 'node:assert/strict';
import { test } from 'node:test';
import { murmur2, partitionForKey } from '../../../src/admin/partitioner.ts';

test("murmur2 matches Kafka's Utils.murmur2 (values from Kafka's UtilsTest)", () => {
  const cases: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];
  for (const [input, expected] of cases) assert.equal(murmur2(Buffer.from(input)), expected, input);
});

test('partitionForKey is toPositive(murmur2) % partitions', () => {
  assert.equal(partitionForKey(Buffer.from('21'), 7), (-973932308 & 0x7fffffff) % 7);
  for (let i = 0; i < 100; i++) {
    const p = partitionForKey(Buffer.from(`key-${i}`), 3);
    assert.ok(p >= 0 && p < 3);
  }
});
