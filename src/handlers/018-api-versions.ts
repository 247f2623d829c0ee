/**
 * ApiVersions (key 18), versions 0-4.
 * v1-v2: throttle time. v3 (KIP-511): client software name/version, flexible; the response
 * header stays v0 in every version so clients can parse it before knowing our versions.
 * v4: same as v3. An unsupported request version is answered by the dispatcher in v0 format
 * with UNSUPPORTED_VERSION and our ApiVersions range (KIP-511), so clients retry lower.
 * Not implemented: supported/finalized features (there are none to negotiate yet).
 */
import {
  type ApiVersionsRequest,
  type ApiVersionsResponseInput,
  readApiVersionsRequest,
  writeApiVersionsResponse,
} from '../protocol/messages/018-api-versions.ts';
import { defineHandler } from './handler.ts';

export const apiVersionsHandler = defineHandler<ApiVersionsRequest, ApiVersionsResponseInput>({
  apiKey: 18,
  readRequest: readApiVersionsRequest,
  writeResponse: writeApiVersionsResponse,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx) {
    return { errorCode: 0, apiKeys: ctx.services.supportedApis(), throttleTimeMs: 0 };
  },
  errorResponse(_ctx, _request, errorCode) {
    return { errorCode, apiKeys: [] };
  },
});
