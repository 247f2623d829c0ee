// Issue 11 item 9, the sweep: nullable response fields that Kafka fills with a value but Samsa
// answered with null (the Fetch record set, the defect that broke librdkafka, has its own tests:
// fetch-error-records.test.ts). Each case names the Kafka code that fills the field. Raw frames,
// decoded from the bytes on the wire, where null and "" are different things.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { ErrorCode, errorInfo } from '../../../src/protocol/error-codes.ts';
import type { FindCoordinatorResponse } from '../../../src/protocol/messages/010-find-coordinator.ts';
import type { DeleteTopicsResponse } from '../../../src/protocol/messages/020-delete-topics.ts';
import type { DescribeConfigsResponse } from '../../../src/protocol/messages/032-describe-configs.ts';
import { createTopic, RawConnection, randomTopic } from './helpers.ts';

let broker: RunningBroker;
let conn: RawConnection;
const topic = randomTopic('null-fields');

before(async () => {
  broker = await startBroker({ logLevel: 'error' });
  conn = await RawConnection.connect(broker.bootstrap);
  await createTopic(conn, topic, 1);
});

after(async () => {
  conn.close();
  await broker.close();
});

test('FindCoordinator success: error_message "NONE" below v4 and "" from v4, never null (issue 11 item 9 sweep)', async () => {
  // v1-3: KafkaApis.handleFindCoordinatorRequestLessThanV4 sets error.message(), and
  // Errors.NONE.message() is "NONE". v4+: handleFindCoordinatorRequestV4AndAbove leaves the
  // field at its schema default, "".
  for (const version of [1, 2, 3]) {
    const res = await conn.request<FindCoordinatorResponse>(10, version, { key: 'null-fields-group', keyType: 0 });
    assert.equal(res.errorCode, 0, `v${version}`);
    assert.equal(res.errorMessage, 'NONE', `FindCoordinator v${version} error_message`);
  }
  for (const version of [4, 5, 6]) {
    const res = await conn.request<FindCoordinatorResponse>(10, version, {
      keyType: 0,
      coordinatorKeys: ['null-fields-group'],
    });
    const c = res.coordinators[0];
    assert.equal(c?.errorCode, 0, `v${version}`);
    assert.equal(c.errorMessage, '', `FindCoordinator v${version} coordinator error_message`);
  }
});

test("DeleteTopics of an unknown topic carries Kafka's error message, not null (issue 11 item 9 sweep)", async () => {
  // ControllerApis.deleteTopics answers an unknown name or id with new ApiError(code), whose
  // message is the code's default message.
  for (const version of [0, 4, 5]) {
    const byName = await conn.request<DeleteTopicsResponse>(20, version, {
      topicNames: ['no-such-topic'],
      timeoutMs: 5000,
    });
    assert.equal(byName.responses[0]?.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `v${version}`);
    // The message field exists from v5 on.
    const expected = version >= 5 ? errorInfo(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)?.message : null;
    assert.equal(byName.responses[0].errorMessage, expected, `DeleteTopics v${version} error_message`);
  }
  const byId = await conn.request<DeleteTopicsResponse>(20, 6, {
    topics: [{ name: null, topicId: 'AQIDBAUGBwgJCgsMDQ4PEA' }],
    timeoutMs: 5000,
  });
  assert.equal(byId.responses[0]?.errorCode, ErrorCode.UNKNOWN_TOPIC_ID);
  assert.equal(byId.responses[0].errorMessage, errorInfo(ErrorCode.UNKNOWN_TOPIC_ID)?.message);
  assert.equal(byId.responses[0].name, null);
});

test('DescribeConfigs success: error_message "", not null (issue 11 item 9 sweep)', async () => {
  // ConfigHelper.describeConfigs builds a successful result without setting the message: the
  // schema default, "".
  for (const version of [0, 1, 2, 3, 4]) {
    const res = await conn.request<DescribeConfigsResponse>(32, version, {
      resources: [
        { resourceType: 2, resourceName: topic, configurationKeys: ['cleanup.policy'] },
        { resourceType: 4, resourceName: String(broker.config.nodeId), configurationKeys: ['log.retention.ms'] },
      ],
      includeSynonyms: false,
      includeDocumentation: false,
    });
    for (const r of res.results) {
      assert.equal(r.errorCode, 0, `v${version} ${r.resourceName}`);
      assert.equal(r.errorMessage, '', `DescribeConfigs v${version} ${r.resourceName} error_message`);
    }
  }
});
