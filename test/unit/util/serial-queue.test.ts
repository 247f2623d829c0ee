import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerialQueue } from '../../../src/util/serial-queue.ts';

test('SerialQueue runs tasks one at a time in submission order', async () => {
  const q = new SerialQueue();
  const events: string[] = [];
  const task = (name: string, ms: number) => async () => {
    events.push(`start ${name}`);
    await new Promise((r) => setTimeout(r, ms));
    events.push(`end ${name}`);
    return name;
  };
  const results = await Promise.all([q.run(task('a', 10)), q.run(task('b', 1)), q.run(task('c', 0))]);
  assert.deepEqual(results, ['a', 'b', 'c']);
  assert.deepEqual(events, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  assert.equal(q.pending, 0);
});

test('SerialQueue keeps going after a task fails', async () => {
  const q = new SerialQueue();
  const failed = q.run(() => {
    throw new Error('boom');
  });
  const ok = q.run(() => 42);
  await assert.rejects(failed, /boom/);
  assert.equal(await ok, 42);
  await q.idle();
});
