// Issue 11 item 19, swept: a request that fails with an unexpected error logged one error line
// (with a stack trace) each time, so a client repeating it flooded the log (item 13's Metadata
// for topic "" was one such request). Now at most one line per client host and API per
// samsa.client.log.interval.ms; the next one counts those held back (log-limiter.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiVersionsHandler } from '../../../src/handlers/018-api-versions.ts';
import type { BrokerServices } from '../../../src/handlers/broker-services.ts';
import { RequestDispatcher } from '../../../src/handlers/dispatcher.ts';
import type { ApiHandler } from '../../../src/handlers/handler.ts';
import type { ConnectionInfo } from '../../../src/network/connection.ts';
import { writeRequestHeader } from '../../../src/protocol/messages/request-header.ts';
import { Writer } from '../../../src/protocol/writer.ts';

test('a request failing with an unexpected error logs one line per client host and API per interval', () => {
  const errors: object[] = [];
  const log = {
    debug() {},
    info() {},
    warn() {},
    error(obj: object) {
      errors.push(obj);
    },
  };
  // The ApiVersions handler, on a broker whose supportedApis() throws: every request fails.
  const services = {
    supportedApis() {
      throw new Error('boom');
    },
  } as unknown as BrokerServices;
  const dispatcher = new RequestDispatcher([apiVersionsHandler as unknown as ApiHandler], services, log, 60_000);
  const w = new Writer(64);
  writeRequestHeader(w, 1, { requestApiKey: 18, requestApiVersion: 0, correlationId: 1, clientId: 'x' });
  const frame = w.toBuffer();
  const from = (host: string, id: number): ConnectionInfo => ({
    id,
    remoteHost: host,
    remoteAddress: `${host}:${40000 + id}`,
    listener: '127.0.0.1:9092',
  });
  for (let i = 0; i < 1000; i++) {
    const response = dispatcher.handleFrame(frame, from('10.0.0.1', i));
    assert.ok(Array.isArray(response), 'answered (UNKNOWN_SERVER_ERROR)');
  }
  assert.equal(errors.length, 1, `${errors.length} error lines for 1000 failing requests from one host`);
  assert.ok(Array.isArray(dispatcher.handleFrame(frame, from('10.0.0.2', 1000))));
  assert.equal(errors.length, 2, 'another host gets its own line');
});
