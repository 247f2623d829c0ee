// Issue 11 item 7: disk reserved ahead of active segments leaked. 10,000 partitions with one
// record each held 10 GiB (a fixed 1 MiB reserved per active segment), and blocks reserved
// before a kill -9 stayed held through the restart and a clean stop (only a roll freed them).
// Allocated blocks are read as the kernel reports them: st_blocks * 512 against the file size.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { type BrokerProcess, createTopic, produceBatch, RawConnection, randomTopic, spawnBroker } from './helpers.ts';

const PARTITIONS = 40;

/** Bytes allocated past the ends of the topic's .log files (sizes rounded up to 4 KiB blocks). */
async function reservedPastEnds(dataDir: string, topic: string): Promise<number[]> {
  const out: number[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const dir = join(dataDir, `${topic}-${p}`);
    let past = 0;
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.log')) continue;
      const s = await stat(join(dir, name));
      past += Math.max(0, s.blocks * 512 - Math.ceil(s.size / 4096) * 4096);
    }
    out.push(past);
  }
  return out;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

function recordBatch(valueBytes: number, count: number): Buffer {
  return buildRecordBatchSync({
    records: Array.from({ length: count }, () => ({ key: null, value: Buffer.alloc(valueBytes, 0x61) })),
  });
}

async function startedBroker(t: TestContext, overrides: Record<string, string>) {
  const dataDir = await mkdtemp(join(tmpdir(), 'samsa-reserved-'));
  const brokers: BrokerProcess[] = [];
  t.after(async () => {
    for (const b of brokers) await b.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const start = async (): Promise<{ broker: BrokerProcess; conn: RawConnection }> => {
    const broker = await spawnBroker(dataDir, overrides);
    brokers.push(broker);
    return { broker, conn: await RawConnection.connect(broker.bootstrap) };
  };
  return { dataDir, start };
}

// The floor of free space must not be what stops reservations here.
const OVERRIDES = { 'samsa.log.reserve.ahead.bytes': String(8 * 1024 * 1024) };

test('reserved disk: partitions that received one record each hold no reserved blocks', async (t) => {
  const { dataDir, start } = await startedBroker(t, OVERRIDES);
  const { broker, conn } = await start();
  const topic = randomTopic('reserved');
  await createTopic(conn, topic, PARTITIONS);
  for (let p = 0; p < PARTITIONS; p++) {
    assert.equal((await produceBatch(conn, 9, topic, p, recordBatch(100, 1))).errorCode, 0);
  }
  // Reservations are made in the background; give them time to land.
  await new Promise((r) => setTimeout(r, 500));
  const held = sum(await reservedPastEnds(dataDir, topic));
  assert.ok(held < PARTITIONS * 64 * 1024, `one record each holds ${held} reserved bytes`);
  conn.close();
  assert.equal((await broker.stop('SIGTERM')).code, 0);
});

test('reserved disk: blocks a killed broker reserved are given back at restart and stay given back after a clean stop', async (t) => {
  const { dataDir, start } = await startedBroker(t, OVERRIDES);
  let { broker, conn } = await start();
  const topic = randomTopic('reserved');
  await createTopic(conn, topic, PARTITIONS);
  // A busy partition reserves ahead; then the broker is killed before it can give anything back.
  for (let i = 0; i < 16; i++) {
    assert.equal((await produceBatch(conn, 9, topic, 0, recordBatch(1000, 64))).errorCode, 0);
  }
  await new Promise((r) => setTimeout(r, 500));
  const beforeKill = await reservedPastEnds(dataDir, topic);
  assert.ok(beforeKill[0]! >= 256 * 1024, `the busy partition reserved ahead (${beforeKill[0]})`);
  conn.close();
  await broker.stop('SIGKILL');

  ({ broker, conn } = await start());
  const afterRestart = await reservedPastEnds(dataDir, topic);
  assert.ok(afterRestart[0]! < 64 * 1024, `given back at restart (${afterRestart[0]} bytes still reserved)`);
  conn.close();
  assert.equal((await broker.stop('SIGTERM')).code, 0);
  const afterCleanStop = sum(await reservedPastEnds(dataDir, topic));
  assert.ok(afterCleanStop < PARTITIONS * 64 * 1024, `${afterCleanStop} bytes still reserved after the clean stop`);
});
