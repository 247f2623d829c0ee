// Issue 13: handlers answer for the whole cluster, from BrokerServices.cluster (the metadata
// store's live brokers, controller and partition states), not for this broker alone. Each test
// runs a handler over the wire codecs (request encoded, decoded, handled, response encoded and
// decoded) on broker 1 of a 3-broker cluster.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { produceHandler } from '../../../src/handlers/000-produce.ts';
import { fetchHandler } from '../../../src/handlers/001-fetch.ts';
import { metadataHandler } from '../../../src/handlers/003-metadata.ts';
import { findCoordinatorHandler } from '../../../src/handlers/010-find-coordinator.ts';
import { createTopicsHandler } from '../../../src/handlers/019-create-topics.ts';
import { describeConfigsHandler } from '../../../src/handlers/032-describe-configs.ts';
import { createPartitionsHandler } from '../../../src/handlers/037-create-partitions.ts';
import { describeClusterHandler } from '../../../src/handlers/060-describe-cluster.ts';
import { describeTopicPartitionsHandler } from '../../../src/handlers/075-describe-topic-partitions.ts';
import type { BrokerServices, ClusterView } from '../../../src/handlers/broker-services.ts';
import { FetchSessionCache } from '../../../src/handlers/fetch-session-cache.ts';
import type { ApiHandler, RequestContext } from '../../../src/handlers/handler.ts';
import type { BrokerRegistration, PartitionState, TopicMetadata } from '../../../src/metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../../src/protocol/error-codes.ts';
import { readProduceResponse, writeProduceRequest } from '../../../src/protocol/messages/000-produce.ts';
import { readFetchResponse, writeFetchRequest } from '../../../src/protocol/messages/001-fetch.ts';
import { readMetadataResponse, writeMetadataRequest } from '../../../src/protocol/messages/003-metadata.ts';
import {
  readFindCoordinatorResponse,
  writeFindCoordinatorRequest,
} from '../../../src/protocol/messages/010-find-coordinator.ts';
import {
  readCreateTopicsResponse,
  writeCreateTopicsRequest,
} from '../../../src/protocol/messages/019-create-topics.ts';
import {
  readDescribeConfigsResponse,
  writeDescribeConfigsRequest,
} from '../../../src/protocol/messages/032-describe-configs.ts';
import {
  readCreatePartitionsResponse,
  writeCreatePartitionsRequest,
} from '../../../src/protocol/messages/037-create-partitions.ts';
import {
  readDescribeClusterResponse,
  writeDescribeClusterRequest,
} from '../../../src/protocol/messages/060-describe-cluster.ts';
import {
  readDescribeTopicPartitionsResponse,
  writeDescribeTopicPartitionsRequest,
} from '../../../src/protocol/messages/075-describe-topic-partitions.ts';
import { Reader } from '../../../src/protocol/reader.ts';
import { Writer } from '../../../src/protocol/writer.ts';

const SELF = 1;
const BROKERS: BrokerRegistration[] = [
  { nodeId: 1, host: 'b1.example', port: 9091, rack: 'r1' },
  { nodeId: 2, host: 'b2.example', port: 9092, rack: 'r2' },
  { nodeId: 3, host: 'b3.example', port: 9093, rack: null },
];

function state(leader: number, replicas: number[], leaderEpoch = 4): PartitionState {
  return { replicas, leader, leaderEpoch, isr: leader === -1 ? [] : [leader], partitionEpoch: 7 };
}

/** A ClusterView over fixed brokers and partition states, keyed `topic-partition`. */
function clusterView(live: BrokerRegistration[], states: Map<string, PartitionState>, controllerId = 2): ClusterView {
  const sorted = [...live].sort((a, b) => a.nodeId - b.nodeId);
  return {
    brokers: () => sorted,
    broker: (id) => sorted.find((b) => b.nodeId === id),
    controllerId: () => controllerId,
    partitionState: (topic, partition) => states.get(`${topic}-${partition}`),
  };
}

const ORDERS: TopicMetadata = {
  name: 'orders',
  topicId: 'ABEiM0RVZneImaq7zN3u_w',
  partitions: 3,
  replicationFactor: 1,
  configs: {},
  leaderEpochs: [0, 0, 0],
};
const OFFSETS: TopicMetadata = {
  name: '__consumer_offsets',
  topicId: '_-7dzLuqmYh3ZlVEMyIRAA',
  partitions: 3,
  replicationFactor: 1,
  configs: {},
  leaderEpochs: [0, 0, 0],
};

/**
 * orders-0 on this broker, orders-1 on broker 2, orders-2 on broker 3; broker 3 is down, so
 * orders-2 has no leader. __consumer_offsets-p is led by broker p+1, -2 has none either.
 */
function threeBrokers(): ClusterView {
  return clusterView(
    BROKERS.filter((b) => b.nodeId !== 3),
    new Map([
      ['orders-0', state(1, [1], 2)],
      ['orders-1', state(2, [2], 5)],
      ['orders-2', state(-1, [3], 9)],
      ['__consumer_offsets-0', state(1, [1])],
      ['__consumer_offsets-1', state(2, [2])],
      ['__consumer_offsets-2', state(-1, [3])],
    ]),
  );
}

interface Fakes {
  created: { name: string; partitions: number; replicationFactor: number }[];
  grown: { name: string; count: number }[];
}

function services(cluster: ClusterView, fakes: Fakes = { created: [], grown: [] }): BrokerServices {
  const topics = [ORDERS, OFFSETS];
  const notLeader = (topic: TopicMetadata, partition: number) => {
    if (cluster.partitionState(topic.name, partition)?.leader !== SELF) {
      throw new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, `${topic.name}-${partition} is not led here`);
    }
  };
  const fake = {
    nodeId: SELF,
    clusterId: 'cluster-x',
    rack: 'r1',
    advertisedListener: () => ({ host: 'b1.example', port: 9091 }),
    cluster,
    autoCreateTopicsEnable: false,
    defaultPartitions: 1,
    defaultReplicationFactor: 1,
    fetchSessions: new FetchSessionCache(10),
    topics: {
      list: () => topics,
      get: (name: string) => topics.find((t) => t.name === name),
      getById: (id: string) => topics.find((t) => t.topicId === id),
      create: async (name: string, partitions: number, replicationFactor: number) => {
        fakes.created.push({ name, partitions, replicationFactor });
        return { ...ORDERS, name, partitions, replicationFactor };
      },
      createPartitions: async (name: string, count: number) => {
        fakes.grown.push({ name, count });
        return { ...ORDERS, partitions: count };
      },
    },
    logs: {
      // Only orders-0 is led here: everything else is NOT_LEADER_OR_FOLLOWER, its offsets too
      // (this broker holds no log of it).
      append: async (topic: TopicMetadata, partition: number) => {
        notLeader(topic, partition);
        return { baseOffset: 0n, logAppendTimeMs: -1n, logStartOffset: 0n };
      },
      read: async (topic: TopicMetadata, partition: number) => {
        notLeader(topic, partition);
        return { records: [], bytes: 0, highWatermark: 0n, lastStableOffset: 0n, logStartOffset: 0n };
      },
      offsets: (topic: TopicMetadata, partition: number) => {
        notLeader(topic, partition);
        return { highWatermark: 0n, lastStableOffset: 0n, logStartOffset: 0n, leaderEpoch: 2 };
      },
      fetch: <T>(_partitions: unknown, _minBytes: number, _maxWaitMs: number, read: () => Promise<T>) => read(),
      // No replica.selector.class: consumers read leaders only.
      preferredReadReplica: () => -1,
    },
    groups: {
      ensureTopic: async () => OFFSETS,
      // Groups named after the __consumer_offsets partition they hash to.
      partitionFor: (groupId: string) => Number(groupId.slice(-1)),
    },
  };
  return fake as unknown as BrokerServices;
}

/** Encodes `request`, runs the handler on what decodes, and decodes its encoded response. */
async function call<Req, Res, In, Out>(
  handler: ApiHandler<Req, Res>,
  writeRequest: (w: Writer, v: number, m: In) => void,
  readResponse: (r: Reader, v: number) => Out,
  version: number,
  request: In,
  svc: BrokerServices,
): Promise<Out> {
  const w = new Writer(256);
  writeRequest(w, version, request);
  const decoded = handler.readRequest(new Reader(w.toBuffer()), version);
  const ctx: RequestContext = {
    apiKey: handler.apiKey,
    apiVersion: version,
    correlationId: 1,
    clientId: 'test',
    connection: { id: 1, remoteHost: '127.0.0.1', remoteAddress: '127.0.0.1:50000', listener: '127.0.0.1:9091' },
    services: svc,
  };
  const response = await handler.handle(ctx, decoded);
  assert.ok(response !== null);
  const out = new Writer(256);
  handler.writeResponse(out, version, response);
  return readResponse(new Reader(out.toBuffer()), version);
}

const node = (b: BrokerRegistration) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack });

test('Metadata lists every live broker, the controller, and each partition at its own leader', async () => {
  const svc = services(
    clusterView(
      BROKERS,
      new Map([...['0', '1', '2'].map((p, i) => [`orders-${p}`, state(i + 1, [i + 1], i)] as const)]),
    ),
  );
  const res = await call(metadataHandler, writeMetadataRequest, readMetadataResponse, 12, { topics: null }, svc);
  assert.deepEqual(
    res.brokers.map((b) => ({ nodeId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
    BROKERS.map(node),
  );
  assert.equal(res.controllerId, 2);
  const orders = res.topics.find((t) => t.name === 'orders');
  assert.ok(orders);
  assert.deepEqual(
    orders.partitions.map((p) => [
      p.errorCode,
      p.leaderId,
      p.leaderEpoch,
      p.replicaNodes,
      p.isrNodes,
      p.offlineReplicas,
    ]),
    [
      [0, 1, 0, [1], [1], []],
      [0, 2, 1, [2], [2], []],
      [0, 3, 2, [3], [3], []],
    ],
  );
});

test('Metadata: a partition without a live leader is LEADER_NOT_AVAILABLE, leader -1, its dead replicas offline', async () => {
  const res = await call(
    metadataHandler,
    writeMetadataRequest,
    readMetadataResponse,
    12,
    { topics: [{ name: 'orders' }], allowAutoTopicCreation: false },
    services(threeBrokers()),
  );
  assert.deepEqual(
    res.brokers.map((b) => b.nodeId),
    [1, 2],
    'a broker that is down is not listed',
  );
  const [orders] = res.topics;
  assert.ok(orders);
  const p2 = orders.partitions[2];
  assert.ok(p2);
  assert.equal(p2.errorCode, ErrorCode.LEADER_NOT_AVAILABLE);
  assert.equal(p2.leaderId, -1);
  assert.equal(p2.leaderEpoch, 9, 'the epoch is kept');
  assert.deepEqual(p2.replicaNodes, [3]);
  assert.deepEqual(p2.offlineReplicas, [3]);
  // A leader still recorded but whose broker is gone (before the controller moves it) too.
  const stale = clusterView(BROKERS.slice(0, 2), new Map([['orders-0', state(3, [3, 1])]]));
  const again = await call(
    metadataHandler,
    writeMetadataRequest,
    readMetadataResponse,
    5,
    { topics: [{ name: 'orders' }], allowAutoTopicCreation: false },
    services(stale),
  );
  const p0 = again.topics[0]?.partitions[0];
  assert.equal(p0?.errorCode, ErrorCode.LEADER_NOT_AVAILABLE);
  assert.equal(p0?.leaderId, -1);
  assert.deepEqual(p0?.offlineReplicas, [3]);
});

test('Metadata v0 lists only live replicas and says REPLICA_NOT_AVAILABLE when some are not', async () => {
  const cluster = clusterView(BROKERS.slice(0, 2), new Map([['orders-0', state(1, [1, 3])]]));
  const res = await call(
    metadataHandler,
    writeMetadataRequest,
    readMetadataResponse,
    0,
    { topics: [{ name: 'orders' }] },
    services(cluster),
  );
  const p0 = res.topics[0]?.partitions[0];
  assert.equal(p0?.errorCode, ErrorCode.REPLICA_NOT_AVAILABLE);
  assert.equal(p0?.leaderId, 1);
  assert.deepEqual(p0?.replicaNodes, [1]);
});

test('DescribeCluster lists the live brokers and the active controller', async () => {
  const res = await call(
    describeClusterHandler,
    writeDescribeClusterRequest,
    readDescribeClusterResponse,
    1,
    { endpointType: 1 },
    services(threeBrokers()),
  );
  assert.equal(res.controllerId, 2);
  assert.deepEqual(
    res.brokers.map((b) => ({ nodeId: b.brokerId, host: b.host, port: b.port, rack: b.rack })),
    BROKERS.slice(0, 2).map(node),
  );
  const none = clusterView(BROKERS, new Map(), -1);
  const noController = await call(
    describeClusterHandler,
    writeDescribeClusterRequest,
    readDescribeClusterResponse,
    0,
    {},
    services(none),
  );
  assert.equal(noController.controllerId, -1);
});

test('DescribeTopicPartitions answers each partition as Metadata does, with empty ELR', async () => {
  const res = await call(
    describeTopicPartitionsHandler,
    writeDescribeTopicPartitionsRequest,
    readDescribeTopicPartitionsResponse,
    0,
    { topics: [{ name: 'orders' }], responsePartitionLimit: 100 },
    services(threeBrokers()),
  );
  const orders = res.topics[0];
  assert.ok(orders);
  assert.deepEqual(
    orders.partitions.map((p) => [p.errorCode, p.leaderId, p.leaderEpoch, p.replicaNodes, p.offlineReplicas]),
    [
      [0, 1, 2, [1], []],
      [0, 2, 5, [2], []],
      [ErrorCode.LEADER_NOT_AVAILABLE, -1, 9, [3], [3]],
    ],
  );
  for (const p of orders.partitions) {
    assert.deepEqual(p.eligibleLeaderReplicas, []);
    assert.deepEqual(p.lastKnownElr, []);
  }
});

test("FindCoordinator answers with the live leader of the group's __consumer_offsets partition", async () => {
  const svc = services(threeBrokers());
  const one = await call(
    findCoordinatorHandler,
    writeFindCoordinatorRequest,
    readFindCoordinatorResponse,
    3,
    { key: 'group-1', keyType: 0 },
    svc,
  );
  assert.deepEqual([one.errorCode, one.nodeId, one.host, one.port], [0, 2, 'b2.example', 9092]);
  const batch = await call(
    findCoordinatorHandler,
    writeFindCoordinatorRequest,
    readFindCoordinatorResponse,
    4,
    { keyType: 0, coordinatorKeys: ['group-0', 'group-1', 'group-2'] },
    svc,
  );
  assert.deepEqual(
    batch.coordinators.map((c) => [c.key, c.errorCode, c.nodeId, c.host, c.port]),
    [
      ['group-0', 0, 1, 'b1.example', 9091],
      ['group-1', 0, 2, 'b2.example', 9092],
      ['group-2', ErrorCode.COORDINATOR_NOT_AVAILABLE, -1, '', -1],
    ],
  );
  const v0 = await call(
    findCoordinatorHandler,
    writeFindCoordinatorRequest,
    readFindCoordinatorResponse,
    0,
    { key: 'group-2' },
    svc,
  );
  assert.deepEqual([v0.errorCode, v0.nodeId], [ErrorCode.COORDINATOR_NOT_AVAILABLE, -1]);
});

test('Produce v10: NOT_LEADER_OR_FOLLOWER carries the current leader and its endpoint (KIP-951)', async () => {
  const records = Buffer.from([1, 2, 3]);
  const request = {
    acks: -1,
    timeoutMs: 1000,
    topicData: [{ name: 'orders', partitionData: [0, 1, 2].map((index) => ({ index, records })) }],
  };
  const res = await call(
    produceHandler,
    writeProduceRequest,
    readProduceResponse,
    10,
    request,
    services(threeBrokers()),
  );
  const parts = res.responses[0]?.partitionResponses ?? [];
  assert.deepEqual(
    parts.map((p) => [p.index, p.errorCode, p.currentLeader.leaderId, p.currentLeader.leaderEpoch]),
    [
      [0, 0, -1, -1],
      [1, ErrorCode.NOT_LEADER_OR_FOLLOWER, 2, 5],
      // No live leader: its id and epoch as known, no endpoint.
      [2, ErrorCode.NOT_LEADER_OR_FOLLOWER, -1, 9],
    ],
  );
  assert.deepEqual(
    res.nodeEndpoints.map((e) => ({ nodeId: e.nodeId, host: e.host, port: e.port, rack: e.rack })),
    [node(BROKERS[1]!)],
  );
  // v9 cannot carry the hints: none are sent.
  const v9 = await call(produceHandler, writeProduceRequest, readProduceResponse, 9, request, services(threeBrokers()));
  assert.equal(v9.responses[0]?.partitionResponses[1]?.currentLeader.leaderId, -1);
  assert.deepEqual(v9.nodeEndpoints, []);
});

test('Fetch v16: NOT_LEADER_OR_FOLLOWER carries the current leader and its endpoint (KIP-951)', async () => {
  const request = {
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 1 << 20,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topicId: ORDERS.topicId,
        partitions: [0, 1].map((partition) => ({ partition, fetchOffset: 0n, partitionMaxBytes: 1 << 20 })),
      },
    ],
  };
  const res = await call(fetchHandler, writeFetchRequest, readFetchResponse, 16, request, services(threeBrokers()));
  const parts = res.responses[0]?.partitions ?? [];
  assert.deepEqual(
    parts.map((p) => [p.partitionIndex, p.errorCode, p.currentLeader.leaderId, p.currentLeader.leaderEpoch]),
    [
      [0, 0, -1, -1],
      [1, ErrorCode.NOT_LEADER_OR_FOLLOWER, 2, 5],
    ],
  );
  // A partition this broker holds no log of has no offsets to report.
  assert.equal(parts[1]?.highWatermark, -1n);
  assert.deepEqual(
    res.nodeEndpoints.map((e) => ({ nodeId: e.nodeId, host: e.host, port: e.port, rack: e.rack })),
    [node(BROKERS[1]!)],
  );
  const v15 = await call(fetchHandler, writeFetchRequest, readFetchResponse, 15, request, services(threeBrokers()));
  assert.equal(v15.responses[0]?.partitions[1]?.currentLeader.leaderId, -1);
  assert.deepEqual(v15.nodeEndpoints, []);
});

test('CreateTopics accepts assignments to any live broker; an unknown one is INVALID_REPLICA_ASSIGNMENT', async () => {
  const fakes: Fakes = { created: [], grown: [] };
  const topic = (name: string, brokerIds: number[][]) => ({
    name,
    numPartitions: -1,
    replicationFactor: -1,
    assignments: brokerIds.map((ids, partitionIndex) => ({ partitionIndex, brokerIds: ids })),
    configs: [],
  });
  const res = await call(
    createTopicsHandler,
    writeCreateTopicsRequest,
    readCreateTopicsResponse,
    5,
    {
      topics: [
        topic('spread', [[2], [1], [2]]),
        topic('to-dead', [[3]]),
        topic('to-unknown', [[7]]),
        topic('twice', [[2, 2]]),
        topic('uneven', [[1], [1, 2]]),
      ],
      timeoutMs: 1000,
    },
    services(threeBrokers(), fakes),
  );
  assert.deepEqual(
    res.topics.map((t) => [t.name, t.errorCode]),
    [
      ['spread', 0],
      ['to-dead', ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      ['to-unknown', ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      ['twice', ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      ['uneven', ErrorCode.INVALID_REPLICA_ASSIGNMENT],
    ],
  );
  assert.match(res.topics[2]?.errorMessage ?? '', /includes broker 7, but no such broker is registered/);
  assert.deepEqual(fakes.created, [{ name: 'spread', partitions: 3, replicationFactor: 1 }]);
});

test('CreatePartitions accepts assignments to any live broker; an unknown one is INVALID_REPLICA_ASSIGNMENT', async () => {
  const fakes: Fakes = { created: [], grown: [] };
  const grow = (brokerIds: number[][]) => ({
    name: 'orders',
    count: 3 + brokerIds.length,
    assignments: brokerIds.map((ids) => ({ brokerIds: ids })),
  });
  const svc = services(threeBrokers(), fakes);
  const send = (t: ReturnType<typeof grow>) =>
    call(createPartitionsHandler, writeCreatePartitionsRequest, readCreatePartitionsResponse, 3, { topics: [t] }, svc);
  assert.equal((await send(grow([[2], [1]]))).results[0]?.errorCode, 0);
  assert.equal((await send(grow([[9]]))).results[0]?.errorCode, ErrorCode.INVALID_REPLICA_ASSIGNMENT);
  assert.equal((await send(grow([[2, 1]]))).results[0]?.errorCode, ErrorCode.INVALID_REPLICA_ASSIGNMENT);
  const short = await send({ ...grow([[2]]), count: 5 });
  assert.equal(short.results[0]?.errorCode, ErrorCode.INVALID_REPLICA_ASSIGNMENT);
  assert.deepEqual(fakes.grown, [{ name: 'orders', count: 5 }]);
});

test("DescribeConfigs of another live broker's configs is INVALID_REQUEST: only a broker describes its own", async () => {
  const res = await call(
    describeConfigsHandler,
    writeDescribeConfigsRequest,
    readDescribeConfigsResponse,
    4,
    {
      resources: [
        { resourceType: 4, resourceName: '2', configurationKeys: null },
        { resourceType: 4, resourceName: 'two', configurationKeys: null },
      ],
    },
    services(threeBrokers()),
  );
  assert.deepEqual(
    res.results.map((r) => [r.errorCode, r.errorMessage]),
    [
      [ErrorCode.INVALID_REQUEST, 'Unexpected broker id, expected 1 or empty string, but received 2'],
      [ErrorCode.INVALID_REQUEST, 'Broker id must be an integer, but it is: two'],
    ],
  );
});
