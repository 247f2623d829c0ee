import { randomBytes } from 'node:crypto';
import { ProtocolError, ProtocolErrorCodes } from './errors.ts';

/**
 * Kafka UUIDs are 16 bytes on the wire; like Kafka's `Uuid.toString()` they are represented
 * as URL-safe base64 without padding (22 characters), which keeps them usable as map keys.
 */
export const ZERO_UUID = 'AAAAAAAAAAAAAAAAAAAAAA';

export function uuidFromBytes(buf: Buffer, offset: number): string {
  return buf.toString('base64url', offset, offset + 16);
}

export function uuidToBytes(uuid: string): Buffer {
  const b = Buffer.from(uuid, 'base64url');
  if (b.length !== 16 || uuid.length !== 22) {
    throw new ProtocolError(ProtocolErrorCodes.unencodable, `not a Kafka UUID: ${JSON.stringify(uuid)}`);
  }
  return b;
}

/** A random (type 4) UUID; like Kafka, never the zero UUID nor one whose string starts with '-'. */
export function randomUuid(): string {
  for (;;) {
    const b = randomBytes(16);
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const s = uuidFromBytes(b, 0);
    if (s !== ZERO_UUID && !s.startsWith('-')) return s;
  }
}
