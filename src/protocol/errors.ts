/**
 * The single error type the protocol layer raises for malformed, truncated or unencodable input.
 * Decoders never let a RangeError or a giant allocation escape: every length is checked against
 * the bytes that remain before anything is allocated.
 */
export class ProtocolError extends Error {
  readonly code: string;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

export const ProtocolErrorCodes = {
  /** The input ended before the value being read. */
  truncated: 'ERR_PROTOCOL_TRUNCATED',
  /** A length, count or value is impossible (negative where not allowed, larger than the frame...). */
  invalid: 'ERR_PROTOCOL_INVALID',
  /** A value cannot be written at the requested version (non-ignorable field, null where not nullable). */
  unencodable: 'ERR_PROTOCOL_UNENCODABLE',
  /** An API key or version the protocol layer does not know. */
  unsupportedVersion: 'ERR_PROTOCOL_UNSUPPORTED_VERSION',
  /** A record batch whose CRC does not match its contents. */
  corruptRecord: 'ERR_PROTOCOL_CORRUPT_RECORD',
  /** A compression codec that is unknown or failed. */
  compression: 'ERR_PROTOCOL_COMPRESSION',
} as const;

export type ProtocolErrorCode = (typeof ProtocolErrorCodes)[keyof typeof ProtocolErrorCodes];
