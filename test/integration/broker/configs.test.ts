// Topic and broker configs through real clients: kafkajs uses the legacy AlterConfigs (replace
// semantics) and DescribeConfigs; IncrementalAlterConfigs is exercised by `samsa topic alter-config`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import { startBroker } from '../../../src/broker.ts';

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs;

test('AlterConfigs replaces a topic’s overrides; DescribeConfigs shows values, sources and broker configs', async (t) => {
  const broker = await startBroker({ overrides: { 'log.retention.hours': '48' } });
  t.after(() => broker.close());
  const admin = new Kafka({ brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  t.after(() => admin.disconnect());
  const topic = `configs-${Date.now()}`;
  await admin.createTopics({
    topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
  });

  const describe = async (names: string[]) => {
    const r = await admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }],
      includeSynonyms: false,
    });
    return new Map(r.resources[0]!.configEntries.map((e) => [e.configName, e]));
  };
  let entries = await describe(['cleanup.policy', 'retention.ms', 'max.message.bytes']);
  assert.equal(entries.get('cleanup.policy')?.configValue, 'compact');
  assert.equal(entries.get('cleanup.policy')?.isDefault, false);
  // The broker's log.retention.hours=48 is the topic default.
  assert.equal(entries.get('retention.ms')?.configValue, String(48 * 3600 * 1000));
  assert.equal(entries.get('max.message.bytes')?.configValue, '1048588');

  // Legacy AlterConfigs replaces the whole set: cleanup.policy goes back to its default.
  await admin.alterConfigs({
    validateOnly: false,
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '1000' }] },
    ],
  });
  entries = await describe(['cleanup.policy', 'retention.ms']);
  assert.equal(entries.get('retention.ms')?.configValue, '1000');
  assert.equal(entries.get('cleanup.policy')?.configValue, 'delete');

  // An invalid value is rejected per resource with INVALID_CONFIG, and nothing changes.
  await assert.rejects(
    admin.alterConfigs({
      validateOnly: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: 'soon' }] },
      ],
    }),
    /INVALID_CONFIG|invalid/i,
  );
  assert.equal((await describe(['retention.ms'])).get('retention.ms')?.configValue, '1000');

  // Broker configs: the static server property is reported.
  const brokerConfigs = await admin.describeConfigs({
    resources: [
      { type: ConfigResourceTypes.BROKER, name: String(broker.config.nodeId), configNames: ['log.retention.hours'] },
    ],
    includeSynonyms: false,
  });
  assert.equal(brokerConfigs.resources[0]?.configEntries[0]?.configValue, '48');
});
