/** Shared helpers for the record-batch tests (not a test file itself). */
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../../src/protocol/errors.ts';
import {
  ATTRIBUTES_OFFSET,
  BATCH_LENGTH_OFFSET,
  CRC_OFFSET,
  computeBatchCrc,
  LOG_OVERHEAD,
  RECORD_BATCH_HEADER_SIZE,
} from '../../../../src/protocol/records/batch-header.ts';

/** Recomputes the CRC of the batch at `offset` in place (after a deliberate edit). */
export function fixCrc(buf: Buffer, offset = 0): Buffer {
  const size = LOG_OVERHEAD + buf.readInt32BE(offset + BATCH_LENGTH_OFFSET);
  buf.writeUInt32BE(computeBatchCrc(buf, offset, size), offset + CRC_OFFSET);
  return buf;
}

/** A copy of `template`'s header around a different records payload, with batchLength and CRC fixed. */
export function withPayload(template: Buffer, payload: Buffer, attributes?: number): Buffer {
  const out = Buffer.alloc(RECORD_BATCH_HEADER_SIZE + payload.length);
  template.copy(out, 0, 0, RECORD_BATCH_HEADER_SIZE);
  payload.copy(out, RECORD_BATCH_HEADER_SIZE);
  out.writeInt32BE(out.length - LOG_OVERHEAD, BATCH_LENGTH_OFFSET);
  if (attributes !== undefined) out.writeInt16BE(attributes, ATTRIBUTES_OFFSET);
  return fixCrc(out);
}

/** Asserts `fn` throws a ProtocolError (and only that), optionally with a given code / message. */
export function assertProtocolError(fn: () => unknown, code?: string, message?: RegExp): ProtocolError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String((err as Error)?.stack ?? err)}`);
    if (code !== undefined) assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a ProtocolError, nothing was thrown');
}

export async function assertRejectsProtocolError(
  fn: () => Promise<unknown>,
  code?: string,
  message?: RegExp,
): Promise<ProtocolError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String((err as Error)?.stack ?? err)}`);
    if (code !== undefined) assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail('expected a ProtocolError, nothing was thrown');
}

/** A legacy v0/v1 message (offset, size, crc, magic, attributes, [timestamp], key, value); CRC left 0. */
export function legacyMessage(magic: 0 | 1, value: Buffer): Buffer {
  const bodySize = 4 + 1 + 1 + (magic === 1 ? 8 : 0) + 4 + 4 + value.length;
  const buf = Buffer.alloc(12 + bodySize);
  buf.writeBigInt64BE(0n, 0);
  buf.writeInt32BE(bodySize, 8);
  let pos = 16;
  buf.writeInt8(magic, pos++);
  buf.writeInt8(0, pos++);
  if (magic === 1) {
    buf.writeBigInt64BE(1000n, pos);
    pos += 8;
  }
  buf.writeInt32BE(-1, pos);
  pos += 4;
  buf.writeInt32BE(value.length, pos);
  value.copy(buf, pos + 4);
  return buf;
}

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce from the printed seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
