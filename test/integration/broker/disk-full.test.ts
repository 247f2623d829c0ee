/**
 * Issue 11 item 6: a full disk under a real broker (a small tmpfs mounted for the test). Appends
 * fail with KAFKA_STORAGE_ERROR, but the data on disk stays readable, the condition is reported
 * truthfully (DescribeLogDirs, one error line, CreateTopics with a clear code and message), and
 * appends resume without a restart once space is free. Nothing acknowledged is lost.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { startBroker } from '../../../src/broker.ts';
import { ErrorCode } from '../../../src/protocol/error-codes.ts';
import type {
  CreateTopicsRequestInput,
  CreateTopicsResponse,
} from '../../../src/protocol/messages/019-create-topics.ts';
import type {
  DescribeLogDirsRequestInput,
  DescribeLogDirsResponse,
} from '../../../src/protocol/messages/035-describe-log-dirs.ts';
import { buildRecordBatchSync } from '../../../src/protocol/records/builder.ts';
import { runCli } from '../cli/helpers.ts';
import { ApiKeys, createTopic, fetchAll, metadata, produceBatch, RawConnection } from './helpers.ts';

const TMPFS_BYTES = 8 * 1024 * 1024;
const FILLER_BYTES = 2 * 1024 * 1024;

/** Mounts a tmpfs of `bytes`; null (with the reason) when this machine does not let us. */
async function mountTmpfs(bytes: number): Promise<{ dir: string; unmount: () => Promise<void> } | string> {
  const dir = await mkdtemp(join(tmpdir(), 'samsa-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    await rmdir(dir);
    return `cannot mount a tmpfs (needs root and mount(8)): ${(err as Error).message.split('\n')[0]}`;
  }
  return {
    dir,
    unmount: async () => {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      await rmdir(dir);
    },
  };
}

/** Takes what space is left (a failed append gives back the bytes it wrote, up to a batch). */
async function fillUp(path: string): Promise<void> {
  for (let size = 64 * 1024; size >= 512; ) {
    try {
      await appendFile(path, Buffer.alloc(size, 2));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      size /= 2;
    }
  }
}

function record(i: number): Buffer {
  return buildRecordBatchSync({
    records: [{ key: Buffer.from(`k${i}`), value: Buffer.alloc(32 * 1024, i % 251), timestamp: BigInt(Date.now()) }],
  });
}

function describeLogDirs(conn: RawConnection): Promise<DescribeLogDirsResponse> {
  return conn.request<DescribeLogDirsResponse>(35, 4, { topics: null } satisfies DescribeLogDirsRequestInput);
}

function createTopicRaw(conn: RawConnection, name: string): Promise<CreateTopicsResponse> {
  return conn.request<CreateTopicsResponse>(ApiKeys.CreateTopics, 7, {
    topics: [{ name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  } satisfies CreateTopicsRequestInput);
}

test('disk full: appends fail with KAFKA_STORAGE_ERROR, reads go on, the condition is reported, appends resume once space is free', async (t) => {
  const mount = await mountTmpfs(TMPFS_BYTES);
  if (typeof mount === 'string') {
    t.skip(mount);
    return;
  }
  t.after(mount.unmount);
  const dataDir = join(mount.dir, 'data');
  const lines: Array<{ level: number; msg: string; dir?: string }> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
      done();
    },
  });
  const overrides = {
    'samsa.log.reserve.ahead.bytes': '0',
    'log.segment.bytes': String(1024 * 1024),
    'auto.create.topics.enable': 'false',
  };
  let broker = await startBroker({ dataDir, overrides, logger: pino({ level: 'info' }, sink) });
  t.after(() => broker.close());
  const filler = join(mount.dir, 'filler');
  await writeFile(filler, Buffer.alloc(FILLER_BYTES, 1));

  let conn = await RawConnection.connect(broker.bootstrap);
  t.after(() => conn.close());
  await createTopic(conn, 'full', 1);

  // Fill the disk: every acknowledged offset is remembered with its record number.
  const acked = new Map<bigint, number>();
  let i = 0;
  let storageErrors = 0;
  for (; i < 1000 && storageErrors < 3; i++) {
    const p = await produceBatch(conn, 9, 'full', 0, record(i));
    if (p.errorCode === 0) {
      assert.equal(storageErrors, 0, 'no append succeeds between failures while the disk is full');
      acked.set(p.baseOffset, i);
    } else {
      assert.equal(p.errorCode, ErrorCode.KAFKA_STORAGE_ERROR, `produce error ${p.errorCode}`);
      storageErrors++;
    }
  }
  assert.equal(storageErrors, 3, 'the disk filled up');
  assert.ok(acked.size > 20, `only ${acked.size} records fitted`);

  // Reads of the data on disk go on: every acknowledged record, at its offset.
  const checkAll = async (c: RawConnection): Promise<void> => {
    const got = await fetchAll(c, 'full', 0);
    assert.equal(got.length, acked.size, `fetched ${got.length} of ${acked.size} acknowledged records`);
    for (const r of got) {
      const n = acked.get(r.offset);
      assert.ok(n !== undefined, `offset ${r.offset} was never acknowledged`);
      assert.equal(r.key?.toString(), `k${n}`);
      assert.equal(r.value?.[0], n % 251);
    }
  };
  await checkAll(conn);

  // Reported truthfully: the log dir carries KAFKA_STORAGE_ERROR, one error line says so, and
  // CreateTopics answers with a code and a message saying what is wrong.
  const dirs = await describeLogDirs(conn);
  assert.equal(dirs.results.length, 1);
  assert.equal(dirs.results[0]!.errorCode, ErrorCode.KAFKA_STORAGE_ERROR);
  const errorLines = lines.filter((l) => l.level >= 50);
  assert.equal(errorLines.length, 1, `one error line, got ${JSON.stringify(errorLines)}`);
  assert.match(errorLines[0]!.msg, /out of space/);
  const rest = join(mount.dir, 'rest');
  await fillUp(rest);
  const created = await createTopicRaw(conn, 'another');
  assert.equal(created.topics[0]!.errorCode, ErrorCode.KAFKA_STORAGE_ERROR);
  assert.match(created.topics[0]!.errorMessage ?? '', /out of space/);
  const md = await metadata(conn, ['another', 'full']);
  assert.equal(md.topics.find((x) => x.name === 'another')?.errorCode, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  assert.equal(md.topics.find((x) => x.name === 'full')?.partitions[0]?.leaderId, broker.config.nodeId);
  // `samsa topic describe` shows the leader (reads are served) and that its log directory fails.
  const described = await runCli(['topic', 'describe', '--bootstrap', broker.bootstrap, '--topic', 'full']);
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, /Partition: 0\tLeader: \d+.*\tLogDirError: KAFKA_STORAGE_ERROR/);
  assert.match(described.stderr, /log directory .*: KAFKA_STORAGE_ERROR with \d+ bytes usable/);

  // Space comes back: appends resume on the same broker, at the next offset, and the log dir is healthy.
  await rm(filler);
  await rm(rest);
  const next = BigInt(acked.size);
  for (let k = 0; k < 5; k++, i++) {
    const p = await produceBatch(conn, 9, 'full', 0, record(i));
    assert.equal(p.errorCode, 0, `produce after space was freed: error ${p.errorCode}`);
    assert.equal(p.baseOffset, next + BigInt(k));
    acked.set(p.baseOffset, i);
  }
  assert.equal((await describeLogDirs(conn)).results[0]!.errorCode, 0);
  // The log says the directory is back, once, at info.
  const back = lines.filter((l) => l.msg === 'log directory has space again; appends resume');
  assert.deepEqual(
    back.map((l) => [l.level, l.dir]),
    [[30, errorLines[0]!.dir]],
  );
  const healthy = await runCli(['topic', 'describe', '--bootstrap', broker.bootstrap, '--topic', 'full']);
  assert.doesNotMatch(healthy.stdout + healthy.stderr, /KAFKA_STORAGE_ERROR/);
  await createTopic(conn, 'another', 1);
  await checkAll(conn);

  // Nothing acknowledged is lost across a clean restart, and the restart found nothing to cut.
  conn.close();
  await broker.close();
  lines.length = 0;
  broker = await startBroker({ dataDir, overrides, logger: pino({ level: 'info' }, sink) });
  conn = await RawConnection.connect(broker.bootstrap);
  await checkAll(conn);
  assert.deepEqual(
    lines.filter((l) => l.level >= 40).map((l) => l.msg),
    [],
    'a clean restart after the disk filled up warns about nothing',
  );
});
