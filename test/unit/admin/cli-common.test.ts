import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acksOption, intOption, keyValue, parseCommandArgs, UsageError } from '../../../src/admin/cli-common.ts';

const OPTIONS = { acks: { type: 'string' }, throughput: { type: 'string' }, flag: { type: 'boolean' } } as const;

test('negative numbers are accepted as option values, as Kafka tools take them', () => {
  const { values } = parseCommandArgs(['--acks', '-1', '--throughput', '-1', '--flag'], OPTIONS);
  assert.equal(values.acks, '-1');
  assert.equal(values.throughput, '-1');
  assert.equal(values.flag, true);
});

test('unknown options and malformed values are UsageError', () => {
  assert.throws(() => parseCommandArgs(['--nope'], OPTIONS), UsageError);
  assert.throws(() => parseCommandArgs(['--acks'], OPTIONS), UsageError);
  assert.throws(() => intOption('12x', 'n'), UsageError);
  assert.throws(() => intOption('5', 'n', { max: 4 }), UsageError);
  assert.equal(intOption(undefined, 'n'), undefined);
  assert.equal(intOption('-3', 'n'), -3);
  assert.throws(() => keyValue('config', 'novalue'), UsageError);
  assert.deepEqual(keyValue('config', 'a=b=c'), ['a', 'b=c']);
  assert.equal(acksOption('all', 1), -1);
  assert.equal(acksOption(undefined, 1), 1);
  assert.throws(() => acksOption('2', 1), UsageError);
});
