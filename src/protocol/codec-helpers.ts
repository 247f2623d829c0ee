/**
 * Small runtime helpers shared by the generated codecs in ./messages: the variable-length types
 * whose wire form depends on flexibility and nullability. Fixed-width integers are inlined by
 * the generator instead.
 */
import { ProtocolError, ProtocolErrorCodes } from './errors.ts';
import type { Reader } from './reader.ts';
import type { Writer } from './writer.ts';

export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);

export function unencodable(field: string, version: number, why: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.unencodable, `${field} ${why} at version ${version}`);
}

export function unsupportedVersion(message: string, version: number): ProtocolError {
  return new ProtocolError(ProtocolErrorCodes.unsupportedVersion, `${message} has no version ${version}`);
}

export function readString(r: Reader, flex: boolean, nullable: boolean): string | null {
  if (flex) return nullable ? r.compactNullableString() : r.compactString();
  return nullable ? r.nullableString() : r.string();
}

export function writeString(
  w: Writer,
  value: string | null,
  flex: boolean,
  nullable: boolean,
  field: string,
  version: number,
): void {
  if (value === null) {
    if (!nullable) throw unencodable(field, version, 'is null but not nullable');
    if (flex) w.uvarint(0);
    else w.int16(-1);
    return;
  }
  if (flex) w.compactString(value);
  else w.string(value);
}

export function readBytes(r: Reader, flex: boolean, nullable: boolean): Buffer | null {
  if (flex) return nullable ? r.compactNullableBytes() : r.compactBytes();
  return nullable ? r.nullableBytes() : r.bytes();
}

export function writeBytes(
  w: Writer,
  value: Uint8Array | null,
  flex: boolean,
  nullable: boolean,
  field: string,
  version: number,
): void {
  if (value === null) {
    if (!nullable) throw unencodable(field, version, 'is null but not nullable');
    if (flex) w.uvarint(0);
    else w.int32(-1);
    return;
  }
  if (flex) w.compactBytes(value);
  else w.bytes(value);
}

/** Reads an array length; -1 means null (only accepted when nullable). */
export function readArrayLength(r: Reader, flex: boolean, nullable: boolean): number {
  return flex ? r.compactArrayLength(nullable) : r.arrayLength(nullable);
}

export function writeArrayLength(
  w: Writer,
  value: readonly unknown[] | null,
  flex: boolean,
  nullable: boolean,
  field: string,
  version: number,
): void {
  if (value === null) {
    if (!nullable) throw unencodable(field, version, 'is null but not nullable');
    if (flex) w.uvarint(0);
    else w.int32(-1);
    return;
  }
  if (flex) w.compactArrayLength(value.length);
  else w.arrayLength(value.length);
}

/** Reads a nullable struct's presence byte (Kafka writes -1 for null, 1 for present). */
export function readStructPresence(r: Reader): boolean {
  return r.int8() >= 0;
}

/**
 * Whether a partially specified struct input equals the default struct: every given field is
 * undefined, equal to the default, or (for nested values) recursively default.
 */
export function isDefaultInput(value: unknown, defaults: Record<string, unknown>): boolean {
  if (value === null || value === undefined) return true;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || key === '_unknownTaggedFields') {
      if (key === '_unknownTaggedFields' && Array.isArray(v) && v.length > 0) return false;
      continue;
    }
    if (!sameAsDefault(v, defaults[key])) return false;
  }
  return true;
}

function sameAsDefault(v: unknown, d: unknown): boolean {
  if (v === d) return true;
  if (v instanceof Uint8Array && d instanceof Uint8Array) return v.length === 0 && d.length === 0;
  if (Array.isArray(v) && Array.isArray(d)) return v.length === 0 && d.length === 0;
  if (typeof v === 'object' && v !== null && typeof d === 'object' && d !== null) {
    return isDefaultInput(v, d as Record<string, unknown>);
  }
  return false;
}
