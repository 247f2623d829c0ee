// `samsa consume --group`: a real group member, on the KIP-848 protocol or the classic one. It
// gets partitions from the coordinator, commits what it printed (a second run resumes there),
// shares partitions with another member (no record printed twice), joins a classic group with
// members the classic way, and leaves the group on exit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningBroker, startBroker } from '../../../src/broker.ts';
import { collect, randomTopic, runCli, spawnCli } from './helpers.ts';

interface GroupsJson {
  groups: {
    group: string;
    type: string;
    state: string;
    members: { memberId: string; clientId: string; assignment: { topic: string; partitions: number[] }[] }[];
    offsets: { topic: string; partition: number; committedOffset: number | null; lag: number | null }[];
  }[];
}

describe('samsa consume --group', () => {
  let broker: RunningBroker;
  let b: string[];
  before(async () => {
    broker = await startBroker({
      logLevel: 'silent',
      overrides: {
        'group.consumer.heartbeat.interval.ms': '300',
        'group.consumer.session.timeout.ms': '6000',
        'group.initial.rebalance.delay.ms': '0',
      },
    });
    b = ['-b', broker.bootstrap];
  });
  after(() => broker.close());

  const produceTo = async (topic: string, partition: number, values: string[]) => {
    const r = await runCli(
      ['produce', ...b, '--topic', topic, '--partition', String(partition)],
      `${values.join('\n')}\n`,
    );
    assert.equal(r.code, 0, r.stderr);
  };
  const describeGroup = async (group: string) => {
    const r = await runCli(['group', 'describe', ...b, '--group', group, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as GroupsJson).groups[0]!;
  };

  for (const protocol of ['consumer', 'classic'] as const) {
    test(`${protocol} protocol: commits what it printed; a second run resumes there`, async () => {
      const topic = randomTopic('cli-cg');
      const group = randomTopic('g');
      assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '2'])).code, 0);
      await produceTo(topic, 0, ['a0', 'a1', 'a2']);
      await produceTo(topic, 1, ['b0', 'b1']);
      const first = await runCli([
        'consume',
        ...b,
        '--topic',
        topic,
        '--group',
        group,
        '--group-protocol',
        protocol,
        '--from-beginning',
        '-e',
        '--format',
        '%p:%o:%s\n',
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(first.stdout.trimEnd().split('\n').sort(), ['0:0:a0', '0:1:a1', '0:2:a2', '1:0:b0', '1:1:b1']);
      const described = await describeGroup(group);
      assert.equal(described.type, protocol);
      assert.deepEqual(described.members, [], 'the member left on exit');
      assert.deepEqual(
        described.offsets.map((o) => [o.partition, o.committedOffset, o.lag]),
        [
          [0, 3, 0],
          [1, 2, 0],
        ],
      );

      await produceTo(topic, 0, ['a3']);
      await produceTo(topic, 1, ['b2', 'b3']);
      // --from-beginning applies only to partitions without a committed offset.
      const second = await runCli([
        'consume',
        ...b,
        '--topic',
        topic,
        '--group',
        group,
        '--group-protocol',
        protocol,
        '--from-beginning',
        '-e',
        '--format',
        '%s\n',
      ]);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(second.stdout.trimEnd().split('\n').sort(), ['a3', 'b2', 'b3']);

      // --max-messages stops mid-way: the commit is the record after the last one printed.
      await produceTo(topic, 0, ['a4', 'a5', 'a6']);
      const one = await runCli([
        'consume',
        ...b,
        '--topic',
        topic,
        '--group',
        group,
        '--group-protocol',
        protocol,
        '--max-messages',
        '1',
        '--format',
        '%s\n',
      ]);
      assert.equal(one.stdout, 'a4\n');
      const rest = await runCli([
        'consume',
        ...b,
        '--topic',
        topic,
        '--group',
        group,
        '--group-protocol',
        protocol,
        '-e',
        '--format',
        '%s\n',
      ]);
      assert.deepEqual(rest.stdout.trimEnd().split('\n'), ['a5', 'a6']);
    });
  }

  for (const protocols of [
    ['consumer', undefined],
    ['classic', undefined],
  ] as const) {
    test(`two members (${protocols.map((p) => p ?? 'no --group-protocol').join(', ')}) share the partitions; every record is printed once`, async () => {
      // A member without --group-protocol joins a classic group with members the classic way.
      const type = protocols[0];
      const topic = randomTopic('cli-cg2');
      const group = randomTopic('g');
      assert.equal((await runCli(['topic', 'create', ...b, '--topic', topic, '--partitions', '2'])).code, 0);
      const start = (protocol: string | undefined) => {
        const child = spawnCli([
          'consume',
          ...b,
          '--topic',
          topic,
          '--group',
          group,
          '--from-beginning',
          '--format',
          '%p %s\n',
          ...(protocol === undefined ? [] : ['--group-protocol', protocol]),
        ]);
        let printed = '';
        child.stdout!.on('data', (d: Buffer | string) => {
          printed += d.toString();
        });
        return { child, result: collect(child, 60_000), printed: () => printed };
      };
      // The first member is in the group (with both partitions) before the second starts.
      const members = [start(protocols[0])];
      for (let i = 0; i < 150; i++) {
        const g = await describeGroup(group).catch(() => undefined);
        if (g?.members.length === 1 && g.members[0]!.assignment.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      members.push(start(protocols[1]));
      // Both members own one partition each once the coordinator has moved one over.
      let assignment: number[][] = [];
      for (let i = 0; i < 150; i++) {
        const g = await describeGroup(group).catch(() => undefined);
        assignment = (g?.members ?? []).map((m) => m.assignment.flatMap((a) => a.partitions)).sort();
        if (assignment.length === 2 && assignment.every((p) => p.length === 1)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(assignment, [[0], [1]]);
      const expected: string[] = [];
      for (const p of [0, 1]) {
        const values = Array.from({ length: 20 }, (_, i) => `v${p}-${i}`);
        await produceTo(topic, p, values);
        expected.push(...values.map((v) => `${p} ${v}`));
      }
      for (let i = 0; i < 100; i++) {
        const count = members.reduce(
          (n, m) =>
            n +
            m
              .printed()
              .split('\n')
              .filter((l) => l !== '').length,
          0,
        );
        if (count >= expected.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const m of members) m.child.kill('SIGINT');
      const results = await Promise.all(members.map((m) => m.result));
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const lines = results.map((r) =>
        r.stdout
          .trimEnd()
          .split('\n')
          .filter((l) => l !== ''),
      );
      // Each member printed one partition's records only, and together all of them, once.
      for (const l of lines) assert.equal(new Set(l.map((x) => x.split(' ')[0])).size, 1, l.join(','));
      assert.deepEqual(lines.flat().sort(), expected.sort());
      const g = await describeGroup(group);
      assert.equal(g.type, type);
      assert.deepEqual(g.members, []);
      assert.deepEqual(
        g.offsets.map((o) => [o.partition, o.committedOffset]),
        [
          [0, 20],
          [1, 20],
        ],
      );
    });
  }
});
