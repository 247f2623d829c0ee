import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ERROR_CODES,
  ErrorCode,
  type ErrorCodeName,
  errorInfo,
  errorName,
  KafkaError,
} from '../../../src/protocol/error-codes.ts';

describe('ERROR_CODES', () => {
  test('codes and names are unique', () => {
    assert.equal(new Set(ERROR_CODES.map((e) => e.code)).size, ERROR_CODES.length);
    assert.equal(new Set(ERROR_CODES.map((e) => e.name)).size, ERROR_CODES.length);
  });

  test('is in code order and runs from -1 without gaps', () => {
    ERROR_CODES.forEach((e, i) => {
      assert.equal(e.code, i - 1, `${e.name} is at index ${i}`);
    });
  });

  test('every code fits in an int16 and every name is Kafka-style', () => {
    for (const e of ERROR_CODES) {
      assert.ok(Number.isInteger(e.code) && e.code >= -32768 && e.code <= 32767, e.name);
      assert.match(e.name, /^[A-Z][A-Z0-9_]*$/);
      assert.equal(typeof e.retriable, 'boolean');
      assert.equal(typeof e.message, 'string');
      if (e.code !== 0) assert.ok(e.message.length > 0, `${e.name} has a message`);
    }
  });

  test('ErrorCode is consistent with ERROR_CODES', () => {
    const names = Object.keys(ErrorCode) as ErrorCodeName[];
    assert.deepEqual(
      names,
      ERROR_CODES.map((e) => e.name),
    );
    for (const name of names) {
      assert.equal(errorInfo(ErrorCode[name])?.name, name);
    }
  });

  test('entries are frozen', () => {
    assert.ok(Object.isFrozen(ERROR_CODES));
    assert.ok(Object.isFrozen(ERROR_CODES[0]));
  });
});

describe('spot checks against Kafka', () => {
  const cases: [number, string, boolean][] = [
    [-1, 'UNKNOWN_SERVER_ERROR', false],
    [0, 'NONE', false],
    [1, 'OFFSET_OUT_OF_RANGE', false],
    [2, 'CORRUPT_MESSAGE', true],
    [3, 'UNKNOWN_TOPIC_OR_PARTITION', true],
    [6, 'NOT_LEADER_OR_FOLLOWER', true],
    [7, 'REQUEST_TIMED_OUT', true],
    [8, 'BROKER_NOT_AVAILABLE', false],
    [9, 'REPLICA_NOT_AVAILABLE', true],
    [15, 'COORDINATOR_NOT_AVAILABLE', true],
    [16, 'NOT_COORDINATOR', true],
    [22, 'ILLEGAL_GENERATION', false],
    [25, 'UNKNOWN_MEMBER_ID', false],
    [27, 'REBALANCE_IN_PROGRESS', false],
    [35, 'UNSUPPORTED_VERSION', false],
    [45, 'OUT_OF_ORDER_SEQUENCE_NUMBER', false],
    [46, 'DUPLICATE_SEQUENCE_NUMBER', false],
    [51, 'CONCURRENT_TRANSACTIONS', true],
    [56, 'KAFKA_STORAGE_ERROR', true],
    [59, 'UNKNOWN_PRODUCER_ID', false],
    [74, 'FENCED_LEADER_EPOCH', true],
    [79, 'MEMBER_ID_REQUIRED', false],
    [82, 'FENCED_INSTANCE_ID', false],
    [89, 'THROTTLING_QUOTA_EXCEEDED', true],
    [90, 'PRODUCER_FENCED', false],
    [100, 'UNKNOWN_TOPIC_ID', true],
    [110, 'FENCED_MEMBER_EPOCH', false],
    [120, 'TRANSACTION_ABORTABLE', false],
    [129, 'REBOOTSTRAP_REQUIRED', false],
    [133, 'SHARE_SESSION_LIMIT_REACHED', true],
    [136, 'CONTROLLER_ID_NOT_REGISTERED', false],
  ];
  for (const [code, name, retriable] of cases) {
    test(`${code} ${name} retriable=${retriable}`, () => {
      const info = errorInfo(code);
      assert.ok(info);
      assert.equal(info.name, name);
      assert.equal(info.retriable, retriable);
      assert.equal(ErrorCode[name as ErrorCodeName], code);
    });
  }

  test('messages are Kafka default messages', () => {
    assert.equal(
      errorInfo(ErrorCode.OFFSET_OUT_OF_RANGE)?.message,
      'The requested offset is not within the range of offsets maintained by the server.',
    );
    assert.equal(errorInfo(ErrorCode.UNSUPPORTED_VERSION)?.message, 'The version of API is not supported.');
    assert.equal(errorInfo(ErrorCode.NONE)?.message, '');
  });

  test('the highest code is 136 CONTROLLER_ID_NOT_REGISTERED', () => {
    const last = ERROR_CODES.at(-1);
    assert.equal(last?.code, 136);
    assert.equal(last?.name, 'CONTROLLER_ID_NOT_REGISTERED');
    assert.equal(Math.max(...ERROR_CODES.map((e) => e.code)), 136);
  });
});

describe('errorInfo / errorName', () => {
  test('unknown codes', () => {
    assert.equal(errorInfo(137), undefined);
    assert.equal(errorInfo(-2), undefined);
    assert.equal(errorName(137), 'UNKNOWN(137)');
    assert.equal(errorName(-2), 'UNKNOWN(-2)');
  });

  test('known codes', () => {
    assert.equal(errorName(ErrorCode.NOT_LEADER_OR_FOLLOWER), 'NOT_LEADER_OR_FOLLOWER');
    assert.equal(errorName(-1), 'UNKNOWN_SERVER_ERROR');
  });
});

describe('KafkaError', () => {
  test('carries its code, name and retriability', () => {
    const err = new KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER);
    assert.ok(err instanceof Error);
    assert.equal(err.errorCode, 6);
    assert.equal(err.errorName, 'NOT_LEADER_OR_FOLLOWER');
    assert.equal(err.retriable, true);
    assert.equal(err.name, 'KafkaError');
    assert.equal(err.message, errorInfo(6)?.message);
  });

  test('takes a message and a cause', () => {
    const cause = new Error('disk gone');
    const err = new KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, 'log dir /data offline', { cause });
    assert.equal(err.errorCode, 56);
    assert.equal(err.message, 'log dir /data offline');
    assert.equal(err.cause, cause);
  });

  test('an unknown code is not retriable and names itself', () => {
    const err = new KafkaError(999);
    assert.equal(err.errorCode, 999);
    assert.equal(err.errorName, 'UNKNOWN(999)');
    assert.equal(err.retriable, false);
    assert.equal(err.message, 'UNKNOWN(999)');
  });
});
