/**
 * Operational log lines (issue 12), read from a real broker's pino output: topics created,
 * deleted, altered and given partitions, the configuration in effect at start (secrets masked),
 * recovery at start.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Admin } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';
import { CLEAN_SHUTDOWN_FILE, RECOVERY_PROGRESS_MIN_LOGS } from '../../../src/storage/log-manager.ts';
import { LEVEL, LogCapture } from '../../helpers/log-capture.ts';
import { WireClient } from '../../helpers/wire-client.ts';

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs;

test('topics created, altered, given partitions and deleted are logged at info with what changed', async (t) => {
  const logs = new LogCapture('info');
  const broker = await startBroker({ logger: logs.logger });
  t.after(() => broker.close());
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  t.after(() => admin.disconnect());

  await admin.createTopics({
    topics: [{ topic: 'orders', numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
  });
  const created = await logs.waitFor((l) => l.msg === 'topic created' && l.topic === 'orders');
  assert.equal(created.level, LEVEL.info);
  assert.equal(created.partitions, 2);
  assert.equal(created.replicationFactor, 1);
  assert.deepEqual(created.configs, { 'retention.ms': '3600000' });
  assert.match(String(created.topicId), /\S{10,}/);
  assert.equal(created.autoCreated, undefined);

  // AlterConfigs replaces the overrides: retention.ms goes, cleanup.policy and segment.ms come.
  await admin.alterConfigs({
    validateOnly: false,
    resources: [
      {
        type: ConfigResourceTypes.TOPIC,
        name: 'orders',
        configEntries: [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'segment.ms', value: '60000' },
        ],
      },
    ],
  });
  const altered = await logs.waitFor((l) => l.msg === 'topic configs altered' && l.topic === 'orders');
  assert.equal(altered.level, LEVEL.info);
  assert.deepEqual(altered.keys, ['cleanup.policy', 'retention.ms', 'segment.ms']);
  assert.deepEqual(altered.set, { 'cleanup.policy': 'compact', 'segment.ms': '60000' });
  assert.deepEqual(altered.removed, ['retention.ms']);

  // Validate-only changes nothing and logs nothing.
  await admin.createPartitions({ validateOnly: true, topicPartitions: [{ topic: 'orders', count: 8 }] });
  await admin.createPartitions({ topicPartitions: [{ topic: 'orders', count: 5 }] });
  const added = await logs.waitFor((l) => l.msg === 'partitions added');
  assert.equal(added.level, LEVEL.info);
  assert.equal(added.topic, 'orders');
  assert.equal(added.previousPartitions, 2);
  assert.equal(added.partitions, 5);

  await admin.deleteTopics({ topics: ['orders'] });
  const deleted = await logs.waitFor((l) => l.msg === 'topic deleted');
  assert.equal(deleted.level, LEVEL.info);
  assert.equal(deleted.topic, 'orders');
  assert.equal(deleted.partitions, 5);
  assert.equal(deleted.topicId, created.topicId);

  // A topic created by a producer's Metadata request says so.
  const producer = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  await producer.send({ topic: 'auto-made', messages: [{ value: 'x' }] });
  const auto = await logs.waitFor((l) => l.msg === 'topic created' && l.topic === 'auto-made');
  assert.equal(auto.autoCreated, true);
  assert.equal(auto.partitions, 1);

  assert.equal(logs.withMsg('topic created').filter((l) => l.topic === 'orders').length, 1);
  assert.equal(logs.withMsg('partitions added').length, 1, 'the validate-only request logged nothing');
  assert.equal(logs.withMsg('topic configs altered').length, 1);
});

test('the configuration in effect is logged at start: non-default keys, dynamic ones too, secrets masked', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-oplogs-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const overrides = {
    'log.retention.ms': '3600000',
    'log.segment.bytes': '1073741824', // Kafka's default: not listed
    'num.partitions': '3',
    'no.such.key': 'x', // unknown: warned about, not in effect
  };
  let logs = new LogCapture('info');
  let broker = await startBroker({ dataDir, overrides, logger: logs.logger });
  let line = await logs.waitFor((l) => l.msg.startsWith('configuration in effect'));
  assert.equal(line.level, LEVEL.info);
  assert.equal(line.msg, 'configuration in effect (keys not listed are at their defaults)');
  assert.deepEqual(line.config, { 'log.retention.ms': '3600000', 'num.partitions': '3' });
  assert.deepEqual(line.dynamicConfig, {});
  assert.equal(line.dataDir, dataDir);
  assert.deepEqual(line.listeners, ['127.0.0.1:0']);
  assert.equal(line.nodeId, 1);
  assert.deepEqual(
    logs.withMsg('unknown configuration keys ignored: no.such.key').map((l) => l.keys),
    [['no.such.key']],
  );

  // Dynamic broker configs (IncrementalAlterConfigs): the change is logged, the secret masked.
  const client = await WireClient.connect(broker.bootstrap);
  const res = await client.request<{ responses: { errorCode: number }[] }>(44, 1, {
    resources: [
      {
        resourceType: 4,
        resourceName: '',
        configs: [
          { name: 'ssl.keystore.password', configOperation: 0, value: 's3cret' },
          { name: 'log.retention.ms', configOperation: 0, value: '7200000' },
        ],
      },
    ],
    validateOnly: false,
  });
  client.close();
  assert.equal(res.responses[0]!.errorCode, 0);
  const altered = await logs.waitFor((l) => l.msg === 'broker configs altered');
  assert.equal(altered.level, LEVEL.info);
  assert.deepEqual(altered.keys, ['log.retention.ms', 'ssl.keystore.password']);
  assert.deepEqual(altered.set, { 'log.retention.ms': '7200000', 'ssl.keystore.password': '[hidden]' });
  assert.deepEqual(altered.removed, []);
  await broker.close();

  logs = new LogCapture('info');
  broker = await startBroker({ dataDir, overrides, logger: logs.logger });
  t.after(() => broker.close());
  line = await logs.waitFor((l) => l.msg.startsWith('configuration in effect'));
  assert.deepEqual(line.dynamicConfig, { 'log.retention.ms': '7200000', 'ssl.keystore.password': '[hidden]' });
  assert.ok(!logs.lines.some((l) => JSON.stringify(l).includes('s3cret')), 'the secret is in no line');
});

test('recovery at start is logged: logs recovered, bytes truncated, time taken; a clean restart recovers nothing', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-oplogs-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  let broker = await startBroker({ dataDir, logger: new LogCapture('info').logger });
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'crashy', numPartitions: 2 }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < 20; i++)
    await producer.send({ topic: 'crashy', messages: [{ partition: i % 2, value: `v${i}` }] });
  await producer.disconnect();
  await broker.close();

  // As after a crash mid-write: no clean-shutdown marker, and a torn batch at one log's tail.
  await rm(join(dataDir, CLEAN_SHUTDOWN_FILE));
  const torn = Buffer.alloc(37, 0xab);
  await appendFile(join(dataDir, 'crashy-1', '00000000000000000000.log'), torn);

  let logs = new LogCapture('info');
  broker = await startBroker({ dataDir, logger: logs.logger });
  const recovering = logs.withMsg('recovering logs after an unclean shutdown (no clean-shutdown marker)');
  assert.equal(recovering.length, 1);
  assert.equal(recovering[0]!.level, LEVEL.info);
  assert.equal(recovering[0]!.logs, 2);
  const [loaded] = logs.withMsg('loaded log directory');
  assert.ok(loaded !== undefined);
  assert.equal(loaded.level, LEVEL.info);
  assert.equal(loaded.logs, 2);
  assert.equal(loaded.cleanShutdown, false);
  assert.equal(loaded.recoveredLogs, 2);
  assert.equal(loaded.truncatedBytes, torn.length);
  assert.equal(typeof loaded.ms, 'number');
  const [cut] = logs.withMsg('truncated invalid bytes during log recovery');
  assert.equal(cut?.level, LEVEL.warn);
  assert.equal(cut?.topic, 'crashy');
  assert.equal(cut?.partition, 1);
  assert.equal(cut?.truncatedBytes, torn.length);
  await broker.close();

  logs = new LogCapture('info');
  broker = await startBroker({ dataDir, logger: logs.logger });
  t.after(() => broker.close());
  assert.equal(logs.withMsg('recovering logs after an unclean shutdown (no clean-shutdown marker)').length, 0);
  const [clean] = logs.withMsg('loaded log directory');
  assert.deepEqual(
    {
      logs: clean?.logs,
      cleanShutdown: clean?.cleanShutdown,
      recoveredLogs: clean?.recoveredLogs,
      truncatedBytes: clean?.truncatedBytes,
    },
    { logs: 2, cleanShutdown: true, recoveredLogs: 0, truncatedBytes: 0 },
  );
});

test('connections opened and closed are logged at debug with the remote address, client id and client software', async (t) => {
  const logs = new LogCapture('debug');
  const broker = await startBroker({ logger: logs.logger });
  t.after(() => broker.close());

  // @platformatic/kafka names itself in ApiVersions v3+ (KIP-511).
  const admin = new Admin({ clientId: 'ops-admin', bootstrapBrokers: [broker.bootstrap] });
  await admin.metadata({ topics: [] });
  const identified = await logs.waitFor((l) => l.msg === 'client identified' && l.clientId === 'ops-admin');
  assert.equal(identified.level, LEVEL.debug);
  assert.equal(identified.clientSoftwareName, 'platformatic-kafka');
  assert.match(String(identified.clientSoftwareVersion), /^\d+\.\d+\.\d+/);
  assert.match(String(identified.remote), /^127\.0\.0\.1:\d+$/);
  const opened = logs.lines.find((l) => l.msg === 'connection opened' && l.connection === identified.connection);
  assert.equal(opened?.level, LEVEL.debug);
  assert.equal(opened?.remote, identified.remote);
  assert.equal(opened?.listener, `127.0.0.1:${broker.listeners[0]!.port}`);
  await admin.close();
  const closed = await logs.waitFor((l) => l.msg === 'connection closed' && l.connection === identified.connection);
  assert.equal(closed.level, LEVEL.debug);
  assert.equal(closed.remote, identified.remote);
  assert.equal(closed.clientId, 'ops-admin');
  assert.equal(closed.clientSoftwareName, 'platformatic-kafka');
  assert.equal(closed.clientSoftwareVersion, identified.clientSoftwareVersion);
  assert.equal(typeof closed.durationMs, 'number');

  // kafkajs sends ApiVersions v2, without software fields: its client id alone.
  const kafka = new Kafka({ clientId: 'ops-kafkajs', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const kAdmin = kafka.admin();
  await kAdmin.connect();
  await kAdmin.listTopics();
  await kAdmin.disconnect();
  const kClosed = await logs.waitFor((l) => l.msg === 'connection closed' && l.clientId === 'ops-kafkajs');
  assert.equal(kClosed.clientSoftwareName, undefined);
  assert.match(String(kClosed.remote), /^127\.0\.0\.1:\d+$/);

  // A connection that sends nothing is opened and closed without a client.
  const silent = await WireClient.connect(broker.bootstrap);
  const silentOpened = await logs.waitFor(
    (l) =>
      l.msg === 'connection opened' &&
      !logs.lines.some((c) => c.msg === 'client identified' && c.connection === l.connection) &&
      l.connection !== identified.connection &&
      !logs.lines.some((c) => c.msg === 'connection closed' && c.connection === l.connection),
  );
  silent.close();
  const silentClosed = await logs.waitFor(
    (l) => l.msg === 'connection closed' && l.connection === silentOpened.connection,
  );
  assert.equal(silentClosed.clientId, undefined);

  // None of these lines at info.
  assert.ok(
    logs.lines
      .filter((l) => /^connection (opened|closed)$|^client identified$/.test(l.msg))
      .every((l) => l.level === LEVEL.debug),
  );
});

test('a large recovery logs its progress every tenth of the logs', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-oplogs-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  let broker = await startBroker({ dataDir });
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'wide', numPartitions: RECOVERY_PROGRESS_MIN_LOGS + 20 }] });
  await admin.disconnect();
  await broker.close();
  await rm(join(dataDir, CLEAN_SHUTDOWN_FILE));

  const logs = new LogCapture('info');
  broker = await startBroker({ dataDir, logger: logs.logger });
  t.after(() => broker.close());
  const total = RECOVERY_PROGRESS_MIN_LOGS + 20;
  const progress = logs.withMsg('recovering logs: progress');
  assert.deepEqual(
    progress.map((l) => [l.level, l.recovered, l.logs]),
    Array.from({ length: 9 }, (_, i) => [LEVEL.info, (i + 1) * (total / 10), total]),
  );
  assert.ok(progress.every((l) => typeof l.ms === 'number' && l.dir === dataDir));
  const [loaded] = logs.withMsg('loaded log directory');
  assert.equal(loaded?.recoveredLogs, total);
  // A clean start of the same directory has nothing to report on the way.
  await broker.close();
  const clean = new LogCapture('info');
  broker = await startBroker({ dataDir, logger: clean.logger });
  assert.equal(clean.withMsg('recovering logs: progress').length, 0);
});
