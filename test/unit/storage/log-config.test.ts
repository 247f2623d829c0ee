import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KafkaError } from '../../../src/protocol/error-codes.ts';
import { LogConfig, logConfigDefaultsFromBroker } from '../../../src/storage/log-config.ts';

test('LogConfig has Kafka defaults', () => {
  const c = new LogConfig();
  assert.equal(c.segmentBytes, 1073741824);
  assert.equal(c.segmentMs, 604800000);
  assert.equal(c.segmentIndexBytes, 10485760);
  assert.equal(c.indexIntervalBytes, 4096);
  assert.equal(c.retentionMs, 604800000);
  assert.equal(c.retentionBytes, -1);
  assert.equal(c.delete, true);
  assert.equal(c.compact, false);
  assert.equal(c.deleteRetentionMs, 86400000);
  assert.equal(c.minCleanableDirtyRatio, 0.5);
  assert.equal(c.flushMessages, Number.MAX_SAFE_INTEGER);
  assert.equal(c.values['flush.messages'], '9223372036854775807');
  assert.equal(c.messageTimestampType, 'CreateTime');
  assert.equal(c.maxMessageBytes, 1048588);
  assert.equal(c.fileDeleteDelayMs, 60000);
});

test('LogConfig validates names and values with INVALID_CONFIG', () => {
  assert.throws(() => new LogConfig({ 'segment.bytes': 'lots' }), KafkaError);
  assert.throws(() => new LogConfig({ 'segment.bytes': '3' }), /at least 14/);
  assert.throws(() => new LogConfig({ 'no.such.config': '1' }), /unknown topic config/);
  assert.throws(() => new LogConfig({ 'cleanup.policy': 'compact,shred' }), /shred/);
  assert.throws(() => new LogConfig({ 'min.cleanable.dirty.ratio': '1.5' }), /at most 1/);
  const c = new LogConfig({ 'cleanup.policy': 'compact,delete', 'flush.messages': '1' });
  assert.equal(c.compact && c.delete, true);
  assert.equal(c.flushMessages, 1);
  const d = c.with({ 'flush.messages': null, 'retention.ms': '-1' });
  assert.equal(d.flushMessages, Number.MAX_SAFE_INTEGER);
  assert.equal(d.retentionMs, -1);
  assert.equal(d.compact, true);
});

test('broker log.* settings become topic defaults with Kafka precedence', () => {
  const defaults = logConfigDefaultsFromBroker({
    'log.retention.hours': '1',
    'log.roll.hours': '2',
    'log.segment.bytes': '1000000',
    'log.flush.interval.messages': '10',
    'message.max.bytes': '2000000',
  });
  const c = new LogConfig({}, defaults);
  assert.equal(c.retentionMs, 3_600_000);
  assert.equal(c.segmentMs, 7_200_000);
  assert.equal(c.segmentBytes, 1_000_000);
  assert.equal(c.flushMessages, 10);
  assert.equal(c.maxMessageBytes, 2_000_000);
  const d = logConfigDefaultsFromBroker({ 'log.retention.ms': '5', 'log.retention.hours': '1' });
  assert.equal(d['retention.ms'], '5');
  assert.equal(new LogConfig({ 'retention.ms': '9' }, d).retentionMs, 9, 'topic override wins');
});
