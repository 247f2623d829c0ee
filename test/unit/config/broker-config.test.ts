import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadBrokerConfig } from '../../../src/config/broker-config.ts';
import { ALL_SETTINGS, TYPED_SETTINGS, type TypedSetting } from '../../../src/config/settings.ts';

const load = (overrides: Record<string, string> = {}, flags: { nodeId?: number; dataDir?: string } = {}) =>
  loadBrokerConfig({ overrides, ...flags });

test('defaults, from the table', () => {
  const { config, unknownKeys } = load();
  assert.deepEqual(unknownKeys, []);
  assert.equal(config.nodeId, 1);
  assert.equal(config.dataDir, './data');
  assert.deepEqual(config.listeners, [{ host: '127.0.0.1', port: 9092 }]);
  assert.equal(config.advertised, undefined);
  assert.equal(config.autoCreateTopicsEnable, true);
  assert.equal(config.numPartitions, 1);
  assert.equal(config.defaultReplicationFactor, 1);
  assert.equal(config.socketRequestMaxBytes, 104857600);
  assert.equal(config.connectionsMaxIdleMs, 600000);
  assert.equal(config.clientLogIntervalMs, 10000);
  assert.equal(config.queuedMaxRequestBytes, 268435456);
  assert.equal(config.queuedMaxResponseBytes, 268435456);
  assert.equal(config.rack, null);
  assert.equal(config.transactionMaxTimeoutMs, 900_000);
  assert.equal(config.maxBrokerPartitions, 100_000);
  assert.equal(config.maxIncrementalFetchSessionCacheSlots, 1000);
  assert.equal(config.internalTopicChangesEnable, false);
});

test('every typed setting has a doc, and its default text parses to its default value', () => {
  for (const s of Object.values(TYPED_SETTINGS) as TypedSetting<unknown>[]) {
    assert.ok(s.doc.length > 10, s.key);
    if (s.defaultText !== null) assert.deepEqual(s.parse(s.defaultText, s.key), s.defaultValue, s.key);
  }
  const keys = ALL_SETTINGS.map((s) => s.key);
  assert.equal(new Set(keys).size, keys.length, 'a key is listed twice');
});

test('aliases: node.id over broker.id, log.dirs over log.dir; flags over both', () => {
  assert.equal(load({ 'broker.id': '7' }).config.nodeId, 7);
  assert.equal(load({ 'broker.id': '7', 'node.id': '3' }).config.nodeId, 3);
  assert.equal(load({ 'node.id': '3' }, { nodeId: 9 }).config.nodeId, 9);
  assert.equal(load({ 'log.dir': '/a' }).config.dataDir, '/a');
  assert.equal(load({ 'log.dirs': ' /b , /c', 'log.dir': '/a' }).config.dataDir, '/b');
  assert.equal(load({ 'log.dirs': '/b' }, { dataDir: '/d' }).config.dataDir, '/d');
  assert.throws(() => load({ 'broker.id': 'x', 'node.id': '3' }), /broker\.id: 'x' is not an integer/);
});

test('values: Kafka syntax, validation messages, no bound at 0', () => {
  const { config } = load({
    'auto.create.topics.enable': 'FALSE',
    'num.partitions': ' 4 ',
    'broker.rack': 'r1',
    'queued.max.request.bytes': '0',
    'samsa.queued.max.response.bytes': '-1',
  });
  assert.equal(config.autoCreateTopicsEnable, false);
  assert.equal(config.numPartitions, 4);
  assert.equal(config.rack, 'r1');
  assert.equal(config.queuedMaxRequestBytes, -1);
  assert.equal(config.queuedMaxResponseBytes, -1);
  const fails = (overrides: Record<string, string>, message: string) =>
    assert.throws(
      () => load(overrides),
      (err: unknown) => err instanceof ConfigError && err.message === message,
    );
  fails({ 'num.partitions': 'abc' }, "num.partitions: 'abc' is not an integer");
  fails({ 'num.partitions': '0' }, 'num.partitions: 0 must be at least 1');
  fails({ 'queued.max.request.bytes': '-2' }, 'queued.max.request.bytes: -2 must be at least -1');
  fails({ 'auto.create.topics.enable': 'yes' }, "auto.create.topics.enable: 'yes' is not true or false");
  fails({ listeners: 'nonsense' }, "listeners: 'nonsense' is not HOST:PORT");
  assert.throws(() => load({ 'log.retention.ms': 'x' }), ConfigError);
});

test('unknown keys are named; known ones, log.* topic defaults and topic names are not', () => {
  const { unknownKeys, config } = load({
    'some.unknown.key': '1',
    'group.max.size': '10',
    'process.roles': 'broker',
    'log.segment.bytes': '1048576',
    'log.retention.hours': '1',
    'retention.ms': '1000',
  });
  assert.deepEqual(unknownKeys, ['some.unknown.key']);
  assert.equal(config.properties['group.max.size'], '10');
});
