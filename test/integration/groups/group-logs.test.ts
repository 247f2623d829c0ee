/**
 * Group rebalances in the broker's log (issue 12), read from a real broker's pino output while
 * real clients join and leave: classic groups (kafkajs) log as Kafka's GroupCoordinator does
 * ("preparing to rebalance", "stabilized", "assignment received from leader") plus one line per
 * member joining or leaving; KIP-848 groups (@platformatic/kafka) one line per member joining or
 * leaving and one when the group is reconciled at its epoch. Heartbeats log nothing at info.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Consumer, stringDeserializers } from '@platformatic/kafka';
import kafkajs from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';
import { LEVEL, LogCapture, type LogLine } from '../../helpers/log-capture.ts';
import { WireClient } from '../../helpers/wire-client.ts';

const { Kafka, logLevel } = kafkajs;

const GROUP_MESSAGES = [
  'member joined group',
  'member left group',
  'preparing to rebalance group',
  'stabilized group',
  'group is now empty',
  'assignment received from leader',
  'member joined consumer group',
  'member left consumer group',
  'stabilized consumer group',
  'bumped consumer group epoch',
];

function groupLines(logs: LogCapture, group: string): LogLine[] {
  return logs.lines.filter((l) => l.group === group && l.level >= LEVEL.info);
}

test('a classic group (kafkajs): members joining and leaving, each rebalance prepared, stabilized and assigned', async (t) => {
  const logs = new LogCapture('info');
  const broker = await startBroker({
    logger: logs.logger,
    overrides: { 'offsets.topic.num.partitions': '1', 'group.initial.rebalance.delay.ms': '0' },
  });
  t.after(() => broker.close());
  const kafka = new Kafka({ clientId: 'logs-it', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'classic-logs', numPartitions: 4 }] });
  await admin.disconnect();

  const start = async () => {
    const c = kafka.consumer({ groupId: 'classic-g', sessionTimeout: 10_000, heartbeatInterval: 500 });
    await c.connect();
    await c.subscribe({ topic: 'classic-logs', fromBeginning: true });
    await c.run({ eachMessage: async () => {} });
    return c;
  };
  const first = await start();
  t.after(() => first.disconnect());
  const gen1 = await logs.waitFor((l) => l.msg === 'assignment received from leader' && l.generation === 1);
  assert.equal(gen1.level, LEVEL.info);
  assert.equal(gen1.group, 'classic-g');
  assert.equal(gen1.members, 1);
  assert.equal(gen1.staticMembers, 0);
  assert.equal(gen1.assignedPartitions, 4);

  const second = await start();
  const gen2 = await logs.waitFor((l) => l.msg === 'assignment received from leader' && l.generation === 2);
  assert.equal(gen2.members, 2);
  assert.equal(gen2.assignedPartitions, 4, 'the four partitions are shared between the two members');
  await second.disconnect();
  const gen3 = await logs.waitFor((l) => l.msg === 'assignment received from leader' && l.generation === 3);
  assert.equal(gen3.members, 1);
  assert.equal(gen3.assignedPartitions, 4);

  const lines = groupLines(logs, 'classic-g');
  const joined = lines.filter((l) => l.msg === 'member joined group');
  assert.equal(joined.length, 2, 'one line per member joining');
  for (const [i, j] of joined.entries()) {
    assert.equal(j.level, LEVEL.info);
    assert.equal(j.clientId, 'logs-it');
    assert.match(String(j.clientHost), /127\.0\.0\.1/);
    assert.equal(j.members, i + 1);
  }
  const left = lines.filter((l) => l.msg === 'member left group');
  assert.equal(left.length, 1);
  assert.equal(left[0]!.memberId, joined[1]!.memberId);
  assert.equal(left[0]!.reason, 'LeaveGroup');
  assert.equal(left[0]!.members, 1);

  const preparing = lines.filter((l) => l.msg === 'preparing to rebalance group');
  assert.deepEqual(
    preparing.map((l) => [l.state, l.generation, l.reason]),
    [
      ['Empty', 0, `adding new member ${joined[0]!.memberId}`],
      ['Stable', 1, `adding new member ${joined[1]!.memberId}`],
      ['Stable', 2, `member ${joined[1]!.memberId} left`],
    ],
  );
  const stabilized = lines.filter((l) => l.msg === 'stabilized group');
  assert.deepEqual(
    stabilized.map((l) => [l.generation, l.members, l.protocolType, l.protocol]),
    [
      [1, 1, 'consumer', 'RoundRobinAssigner'],
      [2, 2, 'consumer', 'RoundRobinAssigner'],
      [3, 1, 'consumer', 'RoundRobinAssigner'],
    ],
  );
  assert.equal(stabilized[0]!.leader, joined[0]!.memberId);
  // In order: each rebalance's lines follow the member change that caused it.
  assert.deepEqual(
    lines.filter((l) => GROUP_MESSAGES.includes(l.msg)).map((l) => l.msg),
    [
      'member joined group',
      'preparing to rebalance group',
      'stabilized group',
      'assignment received from leader',
      'member joined group',
      'preparing to rebalance group',
      'stabilized group',
      'assignment received from leader',
      'member left group',
      'preparing to rebalance group',
      'stabilized group',
      'assignment received from leader',
    ],
  );
  // Heartbeats went on all along: none of them is a line.
  assert.equal(lines.length, 12, JSON.stringify(lines));
});

test('a KIP-848 consumer group (@platformatic/kafka): members joining and leaving with the group epoch, one line per reconciled epoch', async (t) => {
  const logs = new LogCapture('debug');
  const broker = await startBroker({
    logger: logs.logger,
    overrides: { 'offsets.topic.num.partitions': '1', 'group.consumer.heartbeat.interval.ms': '500' },
  });
  t.after(() => broker.close());
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'kip848-logs', numPartitions: 4 }] });
  await admin.disconnect();

  const start = async () => {
    const c = new Consumer({
      clientId: 'logs-848',
      groupId: 'kip848-g',
      bootstrapBrokers: [broker.bootstrap],
      groupProtocol: 'consumer',
      rebalanceTimeout: 60_000,
      deserializers: stringDeserializers,
      maxWaitTime: 200,
    });
    const stream = await c.consume({ topics: ['kip848-logs'], mode: 'earliest' });
    stream.on('data', () => {});
    return { c, stream };
  };
  const first = await start();
  t.after(async () => {
    await first.stream.close();
    await first.c.close();
  });
  const epoch1 = await logs.waitFor((l) => l.msg === 'stabilized consumer group' && l.groupEpoch === 1);
  assert.equal(epoch1.level, LEVEL.info);
  assert.equal(epoch1.group, 'kip848-g');
  assert.equal(epoch1.members, 1);
  assert.equal(epoch1.assignedPartitions, 4);
  assert.equal(epoch1.assignor, 'uniform');

  const second = await start();
  const epoch2 = await logs.waitFor((l) => l.msg === 'stabilized consumer group' && l.groupEpoch === 2);
  assert.equal(epoch2.members, 2);
  assert.equal(epoch2.assignedPartitions, 4);
  await second.stream.close();
  await second.c.close();
  const epoch3 = await logs.waitFor((l) => l.msg === 'stabilized consumer group' && l.groupEpoch === 3);
  assert.equal(epoch3.members, 1);
  assert.equal(epoch3.assignedPartitions, 4);

  const lines = groupLines(logs, 'kip848-g');
  const joined = lines.filter((l) => l.msg === 'member joined consumer group');
  assert.deepEqual(
    joined.map((l) => [l.level, l.clientId, l.groupEpoch, l.members, l.subscribedTopics]),
    [
      [LEVEL.info, 'logs-848', 1, 1, ['kip848-logs']],
      [LEVEL.info, 'logs-848', 2, 2, ['kip848-logs']],
    ],
  );
  const left = lines.filter((l) => l.msg === 'member left consumer group');
  assert.equal(left.length, 1);
  assert.equal(left[0]!.memberId, joined[1]!.memberId);
  assert.equal(left[0]!.reason, 'left the group');
  assert.equal(left[0]!.groupEpoch, 3);
  assert.equal(left[0]!.members, 1);
  assert.deepEqual(
    lines.filter((l) => GROUP_MESSAGES.includes(l.msg)).map((l) => l.msg),
    [
      'member joined consumer group',
      'stabilized consumer group',
      'member joined consumer group',
      'stabilized consumer group',
      'member left consumer group',
      'stabilized consumer group',
    ],
  );
  assert.equal(lines.length, 6, 'nothing else at info, however many heartbeats');

  // At debug: each target assignment and each member's reconciliation step.
  const targets = logs.lines.filter((l) => l.msg === 'computed a new target assignment' && l.group === 'kip848-g');
  assert.deepEqual(
    targets.map((l) => [l.level, l.groupEpoch, l.members, l.assignedPartitions]),
    [
      [LEVEL.debug, 1, 1, 4],
      [LEVEL.debug, 2, 2, 4],
      [LEVEL.debug, 3, 1, 4],
    ],
  );
  const steps = logs.lines.filter((l) => l.msg === 'member assignment state changed' && l.group === 'kip848-g');
  assert.ok(steps.length >= 3);
  assert.ok(steps.every((l) => l.level === LEVEL.debug));
  assert.ok(steps.some((l) => l.memberId === joined[0]!.memberId && l.memberEpoch === 3 && l.state === 'stable'));
});

test('a classic member whose session times out is logged as leaving, and the emptied group as such', async (t) => {
  const logs = new LogCapture('info');
  const broker = await startBroker({
    logger: logs.logger,
    overrides: {
      'offsets.topic.num.partitions': '1',
      'group.initial.rebalance.delay.ms': '0',
      'group.min.session.timeout.ms': '100',
    },
  });
  t.after(() => broker.close());
  const client = await WireClient.connect(broker.bootstrap);
  t.after(() => client.close());
  await client.request(10, 1, { key: 'silent-g', keyType: 0 });
  // JoinGroup v3 (before KIP-394: no second round trip); retried while the coordinator loads.
  let joined: { errorCode: number; memberId: string; generationId: number };
  do {
    joined = await client.request(11, 3, {
      groupId: 'silent-g',
      sessionTimeoutMs: 300,
      rebalanceTimeoutMs: 1000,
      memberId: '',
      groupInstanceId: null,
      protocolType: 'consumer',
      protocols: [{ name: 'range', metadata: Buffer.alloc(0) }],
    });
  } while (joined.errorCode === 14 || joined.errorCode === 15);
  assert.equal(joined.errorCode, 0);
  const synced = await client.request<{ errorCode: number }>(14, 2, {
    groupId: 'silent-g',
    generationId: joined.generationId,
    memberId: joined.memberId,
    groupInstanceId: null,
    assignments: [{ memberId: joined.memberId, assignment: Buffer.alloc(0) }],
  });
  assert.equal(synced.errorCode, 0);
  // No heartbeat follows.
  const left = await logs.waitFor((l) => l.msg === 'member left group' && l.group === 'silent-g');
  assert.equal(left.level, LEVEL.info);
  assert.equal(left.memberId, joined.memberId);
  assert.equal(left.reason, 'session timeout');
  assert.equal(left.clientId, 'wire-client');
  assert.equal(left.members, 0);
  const empty = await logs.waitFor((l) => l.msg === 'group is now empty' && l.group === 'silent-g');
  assert.equal(empty.generation, 2);
  const assigned = logs.withMsg('assignment received from leader').filter((l) => l.group === 'silent-g');
  assert.deepEqual(
    assigned.map((l) => [l.generation, l.members, l.assignedPartitions]),
    [[1, 1, 0]],
  );
});
