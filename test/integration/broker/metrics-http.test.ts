// The HTTP listener as an operator uses it: real clients produce and consume, then /metrics is
// scraped and parsed, and its values are checked against what the clients did (records produced
// = messages in, bytes on disk = bytes in, committed offsets and lag); every metric Strimzi's
// Kafka Grafana dashboard queries is there with the labels it selects on; /health and /ready.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import type { ProduceResponse } from '../../../src/protocol/messages/000-produce.ts';
import type { FetchResponse } from '../../../src/protocol/messages/001-fetch.ts';
import { buildRecordBatch } from '../../../src/protocol/records/builder.ts';
import { WireClient } from '../../helpers/wire-client.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format: `name{label="value",...} number` lines (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(broker: RunningBroker): Promise<{ samples: Sample[]; text: string }> {
  const res = await fetch(`http://127.0.0.1:${broker.httpAddress!.port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { samples: parseMetrics(text), text };
}

/** The one sample of `name` whose labels are exactly `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]!.value;
}

function sum(samples: Sample[], name: string, labels: Record<string, string>): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

test('/metrics after real traffic: values match what the clients produced and consumed', async (t) => {
  const broker = await startBroker({ httpListen: '127.0.0.1:0' });
  t.after(() => broker.close());
  assert.equal(broker.httpAddress?.host, '127.0.0.1');
  assert.ok(broker.httpAddress.port > 0);
  const kafka = new Kafka({ clientId: 'metrics-test', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const topic = `metrics-${Date.now()}`;
  const group = `metrics-group-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });

  const producer = kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const produced = 25;
  await producer.send({
    topic,
    messages: Array.from({ length: produced }, (_, i) => ({ partition: i % 3, key: `k${i}`, value: `value ${i}` })),
  });

  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  t.after(() => consumer.disconnect());
  await consumer.subscribe({ topic, fromBeginning: true });
  let consumed = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async () => {
        if (++consumed === produced) resolve();
      },
    });
  });
  // kafkajs commits after eachMessage returns: wait until the broker has every offset.
  for (;;) {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    if (offsets!.partitions.reduce((a, p) => a + Number(p.offset), 0) === produced) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await consumer.disconnect();

  let { samples } = await scrape(broker);
  const byTopic = { topic };
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_messagesin_total', byTopic), produced);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_messagesin_total'), produced, 'all topics');
  // One Produce with a batch for each of the 3 partitions: Kafka counts per partition.
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_totalproducerequests_total', byTopic), 3);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_failedproducerequests_total', byTopic), 0);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_failedfetchrequests_total', byTopic), 0);
  assert.ok(value(samples, 'kafka_server_brokertopicmetrics_totalfetchrequests_total', byTopic) >= 3);
  // The batches are stored as they came: the bytes in are the bytes on disk, and the consumer read them all.
  const bytesIn = value(samples, 'kafka_server_brokertopicmetrics_bytesin_total', byTopic);
  assert.equal(sum(samples, 'kafka_log_log_size', byTopic), bytesIn);
  assert.ok(bytesIn > produced * 'value 0'.length, `bytes in ${bytesIn}`);
  assert.ok(value(samples, 'kafka_server_brokertopicmetrics_bytesout_total', byTopic) >= bytesIn);
  for (const partition of ['0', '1', '2']) {
    const p = { topic, partition };
    const end = partition === '0' ? 9 : 8; // records i % 3 of 0..24
    assert.equal(value(samples, 'kafka_log_log_logstartoffset', p), 0);
    assert.equal(value(samples, 'kafka_log_log_logendoffset', p), end);
    assert.equal(value(samples, 'kafka_consumergroup_current_offset', { consumergroup: group, ...p }), end);
    assert.equal(value(samples, 'kafka_consumergroup_lag', { consumergroup: group, ...p }), 0);
  }
  assert.equal(sum(samples, 'kafka_log_log_logendoffset', byTopic), produced);

  // Kafka's request names, and the same counts as the embedding API's request metrics.
  const apis = broker.requestMetrics.apis();
  const produce = apis.find((a) => a.name === 'Produce');
  assert.equal(produce?.apiKey, 0);
  assert.equal(value(samples, 'kafka_network_requestmetrics_requests_total', { request: 'Produce' }), produce.requests);
  assert.equal(
    value(samples, 'kafka_network_requestmetrics_totaltimems_count', { request: 'Produce' }),
    produce.requests,
  );
  assert.ok(value(samples, 'kafka_network_requestmetrics_totaltimems', { request: 'Fetch', quantile: '0.99' }) > 0);
  assert.ok(value(samples, 'kafka_network_requestmetrics_localtimems', { request: 'Produce', quantile: '0.50' }) > 0);
  assert.equal(
    value(samples, 'kafka_network_requestmetrics_requestqueuetimems', { request: 'Produce', quantile: '0.99' }),
    0,
  );
  for (const name of ['Metadata', 'JoinGroup', 'SyncGroup', 'OffsetCommit', 'ApiVersions'])
    assert.ok(value(samples, 'kafka_network_requestmetrics_requests_total', { request: name }) >= 1, name);

  // The broker holds this topic's 3 partitions and the 50 of __consumer_offsets, and leads them all.
  const partitions = 3 + 50;
  assert.equal(value(samples, 'kafka_server_replicamanager_partitioncount'), partitions);
  assert.equal(value(samples, 'kafka_server_replicamanager_leadercount'), partitions);
  assert.equal(value(samples, 'kafka_controller_kafkacontroller_globalpartitioncount'), partitions);
  assert.equal(value(samples, 'kafka_controller_kafkacontroller_globaltopiccount'), 2);
  assert.equal(value(samples, 'kafka_controller_kafkacontroller_activecontrollercount'), 1);
  assert.equal(value(samples, 'kafka_controller_kafkacontroller_offlinepartitionscount'), 0);
  assert.equal(value(samples, 'kafka_server_replicamanager_underreplicatedpartitions'), 0);
  assert.equal(value(samples, 'kafka_server_replicamanager_offlinereplicacount'), 0);
  // The admin client and the producer are still connected (under both names Strimzi uses).
  for (const name of [
    'kafka_server_socket_server_metrics_connection_count',
    'kafka_server_socketservermetrics_connection_count',
  ]) {
    assert.ok(value(samples, name, { listener: 'PLAINTEXT', networkProcessor: '0' }) >= 2, name);
  }
  // Node's process metrics (prom-client's default collectors).
  assert.ok(value(samples, 'process_open_fds') > 0);
  assert.ok(value(samples, 'nodejs_heap_size_used_bytes') > 0);
  assert.ok(value(samples, 'nodejs_eventloop_lag_p99_seconds') >= 0);
  const idle = value(samples, 'kafka_network_socketserver_networkprocessoravgidle_percent');
  assert.ok(idle >= 0 && idle <= 1, `idle ${idle}`);

  // Records the group has not consumed are its lag.
  await producer.send({ topic, messages: Array.from({ length: 4 }, () => ({ partition: 1, value: 'more' })) });
  ({ samples } = await scrape(broker));
  assert.equal(value(samples, 'kafka_consumergroup_lag', { consumergroup: group, topic, partition: '1' }), 4);
  assert.equal(value(samples, 'kafka_consumergroup_lag', { consumergroup: group, topic, partition: '0' }), 0);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_messagesin_total', byTopic), produced + 4);
});

test("every metric Strimzi's Kafka and Kafka Exporter dashboards query is served, with the labels they select on", async (t) => {
  const broker = await startBroker({ httpListen: '127.0.0.1:0' });
  t.after(() => broker.close());
  const kafka = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const topic = `dashboard-${Date.now()}`;
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  t.after(() => producer.disconnect());
  for (;;) {
    // The first send may meet the auto-created topic's leader not yet known to the client.
    const sent = await producer.send({ topic, messages: [{ value: 'x' }] }).then(
      () => true,
      () => false,
    );
    if (sent) break;
  }
  const admin = kafka.admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  await admin.setOffsets({
    groupId: `dashboard-group-${Date.now()}`,
    topic,
    partitions: [{ partition: 0, offset: '0' }],
  });
  const { samples } = await scrape(broker);
  const fixture = ['strimzi-kafka-dashboard-metrics.txt', 'strimzi-kafka-exporter-dashboard-metrics.txt']
    .map((f) => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8'))
    .join('\n');
  const wanted = fixture
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => {
      const [name, labels] = l.trim().split(/\s+/);
      return { name: name!, labels: labels === undefined ? [] : labels.split(',') };
    });
  assert.ok(wanted.length >= 35);
  const missing: string[] = [];
  for (const { name, labels } of wanted) {
    const found = samples.some((s) => s.name === name && labels.every((l) => s.labels[l] !== undefined));
    if (!found) missing.push(`${name}${labels.length > 0 ? `{${labels.join(',')}}` : ''}`);
  }
  assert.deepEqual(missing, []);
  // The topic label the dashboard's per-topic panels select (topic!="") holds the topic's name.
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_messagesin_total', { topic }), 1);
  assert.equal(value(samples, 'kafka_topic_partition_current_offset', { topic, partition: '0' }), 1);
  assert.equal(value(samples, 'kafka_broker_info', { address: broker.bootstrap, id: '1' }), 1);
});

test('/health answers 200 and /ready 200 once the broker serves; no HTTP listener unless asked', async (t) => {
  const broker = await startBroker({ httpListen: '127.0.0.1:0' });
  t.after(() => broker.close());
  const base = `http://127.0.0.1:${broker.httpAddress!.port}`;
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  // startBroker returns with the listeners bound and __consumer_offsets loading in the background.
  for (;;) {
    const ready = await fetch(`${base}/ready`);
    const body = await ready.text();
    if (ready.status === 200) {
      assert.equal(body, 'ready\n');
      break;
    }
    assert.equal(ready.status, 503);
    assert.match(body, /^not ready: the group coordinator is loading __consumer_offsets\n$/);
  }
  assert.equal((await fetch(`${base}/nothing-here`)).status, 404);

  const plain = await startBroker();
  t.after(() => plain.close());
  assert.equal(plain.httpAddress, undefined);
  const none = await startBroker({ httpListen: 'none' });
  t.after(() => none.close());
  assert.equal(none.httpAddress, undefined);
});

test('an HTTP port in use is a BrokerStartError naming it and --http-listen; a malformed httpListen a ConfigError', async (t) => {
  const first = await startBroker({ httpListen: '127.0.0.1:0' });
  t.after(() => first.close());
  const port = first.httpAddress!.port;
  await assert.rejects(startBroker({ httpListen: `127.0.0.1:${port}` }), {
    name: 'BrokerStartError',
    message: `cannot listen on 127.0.0.1:${port} (--http-listen): the port is in use (another broker or program listens there); stop it or give --http-listen another port`,
  });
  await assert.rejects(startBroker({ httpListen: 'nonsense' }), { message: "httpListen: 'nonsense' is not HOST:PORT" });
});

test('failed appends are counted as Kafka counts them, and a deleted topic leaves /metrics', async (t) => {
  const broker = await startBroker({ httpListen: '127.0.0.1:0' });
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  const topic = `failures-${Date.now()}`;
  await client.request(19, 4, { topics: [{ name: topic, numPartitions: 1, replicationFactor: 1 }], timeoutMs: 5000 });
  const produce = async (baseSequence: number) => {
    const records = await buildRecordBatch({
      records: [{ key: null, value: Buffer.from('v') }],
      producerId: 5n,
      producerEpoch: 0,
      baseSequence,
    });
    const r = await client.request<ProduceResponse>(0, 9, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
    });
    return r.responses[0]!.partitionResponses[0]!.errorCode;
  };
  assert.equal(await produce(0), 0);
  // Refused by the log (a gap in the idempotent producer's sequence): a failed produce request.
  assert.equal(await produce(5), 45); // OUT_OF_ORDER_SEQUENCE_NUMBER
  // A fetch past the log end is the client's to reset (OFFSET_OUT_OF_RANGE): not a failure, as in Kafka.
  const fetched = await client.request<FetchResponse>(1, 4, {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 100n, partitionMaxBytes: 1 << 20 }] }],
  });
  assert.equal(fetched.responses[0]!.partitions[0]!.errorCode, 1);
  let { samples } = await scrape(broker);
  const byTopic = { topic };
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_totalproducerequests_total', byTopic), 2);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_failedproducerequests_total', byTopic), 1);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_failedproducerequests_total'), 1);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_messagesin_total', byTopic), 1);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_totalfetchrequests_total', byTopic), 1);
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_failedfetchrequests_total', byTopic), 0);

  await client.request(20, 4, { topicNames: [topic], timeoutMs: 5000 });
  ({ samples } = await scrape(broker));
  assert.deepEqual(
    samples.filter((s) => s.labels.topic === topic).map((s) => s.name),
    [],
    'no series of the deleted topic',
  );
  // The all-topics counts keep what happened.
  assert.equal(value(samples, 'kafka_server_brokertopicmetrics_messagesin_total'), 1);
});
