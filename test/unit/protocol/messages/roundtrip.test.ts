// Round trip of every API key x version x request/response (and every header and data type):
// encode the generated sample, decode it, compare, and re-encode to the same bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_SPECS, DATA_SPECS } from '../../../../src/protocol/messages/index.ts';
import { Reader } from '../../../../src/protocol/reader.ts';
import { Writer } from '../../../../src/protocol/writer.ts';
import { type MessageSample, SAMPLES } from './samples.generated.ts';

type Codec = { read: (r: Reader, v: number) => unknown; write: (w: Writer, v: number, m: never) => void };

function codecFor(sample: MessageSample): Codec {
  if (typeof sample.id === 'number') {
    const spec = API_SPECS.find((s) => s.apiKey === sample.id);
    assert.ok(spec, `no API ${sample.id}`);
    return sample.kind === 'request'
      ? { read: spec.readRequest, write: spec.writeRequest }
      : { read: spec.readResponse, write: spec.writeResponse };
  }
  const spec = DATA_SPECS[sample.id];
  assert.ok(spec, `no data type ${sample.id}`);
  return spec;
}

function encode(codec: Codec, version: number, value: unknown): Buffer {
  const w = new Writer(16);
  codec.write(w, version, value as never);
  return w.toBuffer();
}

test('every API key has samples for every version of its request and response', () => {
  assert.equal(API_SPECS.length, 88);
  for (const spec of API_SPECS) {
    for (const kind of ['request', 'response']) {
      for (let v = spec.minVersion; v <= spec.maxVersion; v++) {
        const n = SAMPLES.filter((s) => s.id === spec.apiKey && s.kind === kind && s.version === v).length;
        assert.equal(n, 2, `${spec.name} ${kind} v${v}`);
      }
    }
  }
});

test('generated round trips', () => {
  let count = 0;
  for (const sample of SAMPLES) {
    const codec = codecFor(sample);
    const label = `${sample.name} v${sample.version} (${sample.variant})`;
    const bytes = encode(codec, sample.version, sample.value);
    const r = new Reader(bytes);
    const decoded = codec.read(r, sample.version);
    assert.equal(r.remaining, 0, `${label}: ${r.remaining} bytes left over`);
    assert.deepStrictEqual(decoded, sample.value, label);
    assert.deepStrictEqual(encode(codec, sample.version, decoded), bytes, `${label}: re-encoding differs`);
    count++;
  }
  assert.ok(count > 1400, `only ${count} samples`);
});

test('encoding with an empty input writes every default and decodes to the defaults', () => {
  for (const spec of API_SPECS) {
    for (let v = spec.minVersion; v <= spec.maxVersion; v++) {
      const bytes = encode({ read: spec.readRequest, write: spec.writeRequest }, v, {});
      const decoded = spec.readRequest(new Reader(bytes), v);
      assert.deepStrictEqual(encode({ read: spec.readRequest, write: spec.writeRequest }, v, decoded), bytes);
    }
  }
});
