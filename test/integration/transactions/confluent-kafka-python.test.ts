// confluent-kafka-python 1.7.0 (librdkafka 2.0.2, run by /usr/bin/python3) transactions (issue
// 15) against an in-process broker: a Producer with transactional.id runs init_transactions,
// commits one transaction and aborts another, then a consume-transform-produce transaction
// (subscribe, poll, produce, send_offsets_to_transaction with the consumer's positions and group
// metadata, commit). As in Kafka: a read_committed Consumer sees exactly the committed records at
// their offsets (every marker takes one), a read_uncommitted one the aborted records too, and the
// group's committed offset is the position sent in the transaction.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { run } from '../broker/helpers.ts';
import { kafkajsClient, PYTHON, randomTopic, startTxnBroker, waitFor } from './helpers.ts';

const SCRIPT = `
import json, sys, time
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

bootstrap, topic, source, group, txn_id = sys.argv[1:6]
T = 30

def log(*a):
    print(*a, file=sys.stderr, flush=True)

p = Producer({'bootstrap.servers': bootstrap, 'transactional.id': txn_id, 'transaction.timeout.ms': 60000})
p.init_transactions(T)

# 1. Committed: offsets 0, 1 (marker 2).
p.begin_transaction()
p.produce(topic, b'c1-0', partition=0)
p.produce(topic, b'c1-1', partition=0)
p.commit_transaction(T)
log('committed 1')

# 2. Aborted: offsets 3, 4 (marker 5).
p.begin_transaction()
p.produce(topic, b'a2-0', partition=0)
p.produce(topic, b'a2-1', partition=0)
p.flush(T)
p.abort_transaction(T)
log('aborted 2')

# 3. Consume-transform-produce: five input records become offsets 6-10 (marker 11).
plain = Producer({'bootstrap.servers': bootstrap})
for i in range(5):
    plain.produce(source, ('in-%d' % i).encode(), partition=0)
plain.flush(T)

c = Consumer({'bootstrap.servers': bootstrap, 'group.id': group, 'enable.auto.commit': False,
              'auto.offset.reset': 'earliest', 'isolation.level': 'read_committed'})
c.subscribe([source])
got = []
deadline = time.time() + T
while len(got) < 5 and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        raise KafkaException(m.error())
    got.append(m)
if len(got) < 5:
    raise RuntimeError('consumed %d input records of 5' % len(got))
p.begin_transaction()
for m in got:
    p.produce(topic, m.value().upper(), partition=0)
p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), T)
p.commit_transaction(T)
log('committed 3')
committed = c.committed([TopicPartition(source, 0)], T)[0].offset
c.close()

def read_all(isolation, want):
    r = Consumer({'bootstrap.servers': bootstrap, 'group.id': 'reader-' + isolation + '-' + txn_id,
                  'enable.auto.commit': False, 'enable.partition.eof': True, 'isolation.level': isolation})
    r.assign([TopicPartition(topic, 0, 0)])
    out = []
    eof = False
    deadline = time.time() + T
    while time.time() < deadline and not (eof and len(out) >= want):
        m = r.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof = True
                continue
            raise KafkaException(m.error())
        eof = False
        out.append([m.offset(), m.value().decode()])
    r.close()
    return out

print(json.dumps({
    'committedOffset': committed,
    'readCommitted': read_all('read_committed', 7),
    'readUncommitted': read_all('read_uncommitted', 9),
}))
`;

interface Result {
  committedOffset: number;
  readCommitted: [number, string][];
  readUncommitted: [number, string][];
}

test('confluent-kafka-python: commit, abort, send_offsets_to_transaction; read_committed sees committed records only', async (t) => {
  const { broker, defer } = await startTxnBroker(t);
  const kafka = kafkajsClient(broker.bootstrap, 'ckp-txn-admin');
  const admin = kafka.admin();
  await admin.connect();
  defer(() => admin.disconnect());
  const topic = randomTopic('ckp-txn');
  const source = randomTopic('ckp-txn-in');
  const group = randomTopic('ckp-txn-g');
  await admin.createTopics({
    topics: [
      { topic, numPartitions: 1 },
      { topic: source, numPartitions: 1 },
    ],
  });

  const res = await run(PYTHON, ['-c', SCRIPT, broker.bootstrap, topic, source, group, randomTopic('ckp-txn-id')], {
    timeoutMs: 150_000,
  });
  assert.equal(res.code, 0, `python exited with ${res.code ?? res.signal}:\n${res.stderr}\n${res.stdout}`);
  const out = JSON.parse(res.stdout) as Result;

  assert.equal(out.committedOffset, 5, "the group's offset is the position sent in the transaction");
  assert.deepEqual(out.readCommitted, [
    [0, 'c1-0'],
    [1, 'c1-1'],
    [6, 'IN-0'],
    [7, 'IN-1'],
    [8, 'IN-2'],
    [9, 'IN-3'],
    [10, 'IN-4'],
  ]);
  assert.deepEqual(out.readUncommitted, [
    [0, 'c1-0'],
    [1, 'c1-1'],
    [3, 'a2-0'],
    [4, 'a2-1'],
    [6, 'IN-0'],
    [7, 'IN-1'],
    [8, 'IN-2'],
    [9, 'IN-3'],
    [10, 'IN-4'],
  ]);

  // Another client reads the same committed group offset.
  await waitFor(
    async () => {
      const offsets = await admin.fetchOffsets({ groupId: group, topics: [source] });
      return offsets[0]?.partitions[0]?.offset === '5';
    },
    15_000,
    "kafkajs to read the group's offset 5",
  );
  const ends = await admin.fetchTopicOffsets(topic);
  assert.equal(ends[0]?.high, '12', 'nine records and three markers');
});
