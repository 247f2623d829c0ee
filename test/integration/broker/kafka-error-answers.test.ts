// Issue 11 items 13, 14 and 16: requests Kafka answers with a specific code and message got an
// empty UNKNOWN_SERVER_ERROR (and an error-level stack trace each), were accepted where Kafka
// refuses them, or were refused where Kafka accepts them; a CreateTopics for 2^31-1 partitions ran
// the broker out of memory.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type { MetadataResponse } from '../../../src/protocol/messages/003-metadata.ts';
import type { DescribeGroupsResponse } from '../../../src/protocol/messages/015-describe-groups.ts';
import type { CreateTopicsResponse } from '../../../src/protocol/messages/019-create-topics.ts';
import type { InitProducerIdResponse } from '../../../src/protocol/messages/022-init-producer-id.ts';
import type { DescribeConfigsResponse } from '../../../src/protocol/messages/032-describe-configs.ts';
import type { CreatePartitionsResponse } from '../../../src/protocol/messages/037-create-partitions.ts';
import type { IncrementalAlterConfigsResponse } from '../../../src/protocol/messages/044-incremental-alter-configs.ts';
import type { DescribeClusterResponse } from '../../../src/protocol/messages/060-describe-cluster.ts';
import type { DescribeTopicPartitionsResponse } from '../../../src/protocol/messages/075-describe-topic-partitions.ts';
import { ZERO_UUID } from '../../../src/protocol/uuid.ts';
import { WireClient } from '../../helpers/wire-client.ts';

/** A broker whose log lines the test reads. */
async function setUp(
  t: { after(fn: () => Promise<void> | void): void },
  overrides: Record<string, string> = {},
): Promise<{ broker: RunningBroker; client: WireClient; logLines: string[] }> {
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(...String(chunk).trim().split('\n'));
      done();
    },
  });
  const broker = await startBroker({ overrides, logger: pino({ level: 'info' }, sink) });
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  return { broker, client, logLines };
}

function createTopics(client: WireClient, topics: { name: string; numPartitions: number }[], validateOnly = false) {
  return client.request<CreateTopicsResponse>(19, 7, {
    topics: topics.map((x) => ({ ...x, replicationFactor: 1, assignments: [], configs: [] })),
    timeoutMs: 5000,
    validateOnly,
  });
}

test('Metadata for topic "" answers INVALID_TOPIC_EXCEPTION at every version, without an error log line', async (t) => {
  const { client, logLines } = await setUp(t);
  for (let v = 1; v <= 12; v++) {
    const md = await client.request<MetadataResponse>(3, v, {
      topics: [{ name: '', topicId: ZERO_UUID }],
      allowAutoTopicCreation: true,
    });
    assert.equal(md.topics[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION, `v${v}`);
    assert.equal(md.brokers.length, 1, `v${v} names the broker`);
  }
  const bad = await client.request<MetadataResponse>(3, 9, {
    topics: [{ name: 'no spaces allowed' }],
    allowAutoTopicCreation: false,
  });
  assert.equal(bad.topics[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  assert.deepEqual(
    logLines.filter((l) => /"level":(50|60)/.test(l)),
    [],
  );
});

test('CreateTopics validate-only (v7) answers success with the zero topic ID instead of UNKNOWN_SERVER_ERROR', async (t) => {
  const { client } = await setUp(t);
  const r = await createTopics(client, [{ name: 'validate-me', numPartitions: 3 }], true);
  assert.equal(r.topics[0]!.errorCode, 0, r.topics[0]!.errorMessage ?? '');
  assert.equal(r.topics[0]!.topicId, ZERO_UUID);
  assert.equal(r.topics[0]!.numPartitions, 3);
  const md = await client.request<MetadataResponse>(3, 9, {
    topics: [{ name: 'validate-me' }],
    allowAutoTopicCreation: false,
  });
  assert.equal(md.topics[0]!.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 'validate-only created nothing');
});

test('topic names colliding after ./_ normalisation are refused as Kafka refuses them', async (t) => {
  const { client } = await setUp(t);
  assert.equal((await createTopics(client, [{ name: 'metrics.cpu', numPartitions: 1 }])).topics[0]!.errorCode, 0);
  const r = await createTopics(client, [{ name: 'metrics_cpu', numPartitions: 1 }]);
  assert.equal(r.topics[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
  assert.equal(r.topics[0]!.errorMessage, "Topic 'metrics_cpu' collides with existing topic: metrics.cpu");
  const auto = await client.request<MetadataResponse>(3, 9, {
    topics: [{ name: 'metrics_cpu' }],
    allowAutoTopicCreation: true,
  });
  assert.equal(auto.topics[0]!.errorCode, ErrorCode.INVALID_TOPIC_EXCEPTION);
});

test('InitProducerId refuses a transaction.timeout.ms above transaction.max.timeout.ms', async (t) => {
  const { client } = await setUp(t, { 'transaction.max.timeout.ms': '60000' });
  const init = (transactionalId: string | null, transactionTimeoutMs: number) =>
    client.request<InitProducerIdResponse>(22, 4, {
      transactionalId,
      transactionTimeoutMs,
      producerId: -1n,
      producerEpoch: -1,
    });
  assert.equal((await init('tx', 60_001)).errorCode, ErrorCode.INVALID_TRANSACTION_TIMEOUT);
  assert.equal((await init('tx', 0)).errorCode, ErrorCode.INVALID_TRANSACTION_TIMEOUT);
  // As a client does: find the transaction coordinator first (this creates __transaction_state),
  // then retry while it loads.
  await client.request(10, 3, { key: 'tx', keyType: 1 });
  let ok = await init('tx', 60_000);
  for (let i = 0; i < 100 && ok.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS; i++) {
    await new Promise((r) => setTimeout(r, 50));
    ok = await init('tx', 60_000);
  }
  assert.equal(ok.errorCode, 0);
  // An idempotent producer (no transactional id) has no transaction timeout.
  assert.equal((await init(null, 2_000_000_000)).errorCode, 0);
});

test('include_authorized_operations returns every operation, as Kafka does without an authorizer', async (t) => {
  const { client } = await setUp(t);
  await createTopics(client, [{ name: 'ops', numPartitions: 1 }]);
  const TOPIC = 3576; // READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
  const CLUSTER = 8096; // CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE
  const asked = await client.request<MetadataResponse>(3, 10, {
    topics: [{ name: 'ops', topicId: ZERO_UUID }],
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: true,
    includeTopicAuthorizedOperations: true,
  });
  assert.equal(asked.topics[0]!.topicAuthorizedOperations, TOPIC);
  assert.equal(asked.clusterAuthorizedOperations, CLUSTER);
  const notAsked = await client.request<MetadataResponse>(3, 10, {
    topics: [{ name: 'ops', topicId: ZERO_UUID }],
    allowAutoTopicCreation: false,
  });
  assert.equal(notAsked.topics[0]!.topicAuthorizedOperations, -2147483648);
  const cluster = await client.request<DescribeClusterResponse>(60, 0, { includeClusterAuthorizedOperations: true });
  assert.equal(cluster.clusterAuthorizedOperations, CLUSTER);
  const dtp = await client.request<DescribeTopicPartitionsResponse>(75, 0, {
    topics: [{ name: 'ops' }],
    responsePartitionLimit: 100,
    cursor: null,
  });
  assert.equal(dtp.topics[0]!.topicAuthorizedOperations, TOPIC);
  assert.equal(dtp.topics[0]!.isInternal, false);
  // A group that exists is described with the group operations (READ DESCRIBE DELETE).
  const groups = await client.request<DescribeGroupsResponse>(15, 5, {
    groups: ['nobody'],
    includeAuthorizedOperations: true,
  });
  assert.equal(groups.groups.length, 1);
});

test('IncrementalAlterConfigs accepts the dynamic broker keys Kafka accepts, and hides secrets', async (t) => {
  const { client } = await setUp(t);
  const alter = (name: string, value: string) =>
    client.request<IncrementalAlterConfigsResponse>(44, 1, {
      resources: [{ resourceType: 4, resourceName: '', configs: [{ name, configOperation: 0, value }] }],
      validateOnly: false,
    });
  for (const [name, value] of [
    ['sasl.kerberos.min.time.before.relogin', '60000'],
    ['max.connections.per.ip', '1000'],
    ['log.cleaner.threads', '2'],
    ['ssl.keystore.password', 'secret'],
    ['listener.name.internal.ssl.keystore.location', '/etc/keystore.jks'],
  ] as const) {
    const r = await alter(name, value);
    assert.equal(r.responses[0]!.errorCode, 0, `${name}: ${r.responses[0]!.errorMessage}`);
  }
  assert.equal((await alter('no.such.broker.key', '1')).responses[0]!.errorCode, ErrorCode.INVALID_CONFIG);
  const described = await client.request<DescribeConfigsResponse>(32, 4, {
    resources: [
      {
        resourceType: 4,
        resourceName: '1',
        configurationKeys: ['sasl.kerberos.min.time.before.relogin', 'ssl.keystore.password'],
      },
    ],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  const byName = new Map(described.results[0]!.configs.map((c) => [c.name, c]));
  assert.equal(byName.get('sasl.kerberos.min.time.before.relogin')?.value, '60000');
  assert.equal(byName.get('ssl.keystore.password')?.value, null);
  assert.equal(byName.get('ssl.keystore.password')?.isSensitive, true);
});

test('CreateTopics with 2^31-1 partitions is refused with POLICY_VIOLATION and the broker keeps serving', async (t) => {
  const { client } = await setUp(t);
  const huge = await createTopics(client, [{ name: 'huge', numPartitions: 2 ** 31 - 1 }]);
  assert.equal(huge.topics[0]!.errorCode, ErrorCode.POLICY_VIOLATION);
  assert.equal(huge.topics[0]!.errorMessage, 'Excessively large number of partitions per request.');
  // 10,000 in one request is the limit: 6,000 + 5,000 is over it, and refuses both.
  const split = await createTopics(client, [
    { name: 'a', numPartitions: 6000 },
    { name: 'b', numPartitions: 5000 },
  ]);
  assert.deepEqual(
    split.topics.map((x) => x.errorCode),
    [ErrorCode.POLICY_VIOLATION, ErrorCode.POLICY_VIOLATION],
  );
  assert.equal((await createTopics(client, [{ name: 'small', numPartitions: 2 }])).topics[0]!.errorCode, 0);
  const more = await client.request<CreatePartitionsResponse>(37, 2, {
    topics: [{ name: 'small', count: 2 ** 31 - 1, assignments: null }],
    timeoutMs: 5000,
    validateOnly: false,
  });
  assert.equal(more.results[0]!.errorCode, ErrorCode.POLICY_VIOLATION);
  const md = await client.request<MetadataResponse>(3, 9, { topics: null, allowAutoTopicCreation: false });
  assert.deepEqual(
    md.topics.map((x) => x.name),
    ['small'],
  );
});

test('partitions per broker are bounded by samsa.max.broker.partitions', async (t) => {
  const { client } = await setUp(t, { 'samsa.max.broker.partitions': '10' });
  assert.equal((await createTopics(client, [{ name: 'six', numPartitions: 6 }])).topics[0]!.errorCode, 0);
  const over = await createTopics(client, [{ name: 'five', numPartitions: 5 }]);
  assert.equal(over.topics[0]!.errorCode, ErrorCode.POLICY_VIOLATION);
  assert.match(over.topics[0]!.errorMessage!, /samsa.max.broker.partitions/);
  const grow = await client.request<CreatePartitionsResponse>(37, 2, {
    topics: [{ name: 'six', count: 11, assignments: null }],
    timeoutMs: 5000,
    validateOnly: false,
  });
  assert.equal(grow.results[0]!.errorCode, ErrorCode.POLICY_VIOLATION);
  assert.equal((await createTopics(client, [{ name: 'four', numPartitions: 4 }])).topics[0]!.errorCode, 0);
});
