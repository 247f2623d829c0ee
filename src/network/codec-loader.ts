/**
 * Loads an API's generated codec module on first use. Importing every codec (messages/index.ts)
 * costs a command-line tool about 0.4 s of start-up; a tool uses a handful of APIs, so the client
 * imports only those, from `NNN-kebab-name` files named after api-keys.ts.
 */
import { apiKeyInfo } from '../protocol/messages/api-keys.ts';
import type { Reader } from '../protocol/reader.ts';
import type { Writer } from '../protocol/writer.ts';

export interface ApiCodec {
  readonly writeRequest: (w: Writer, version: number, message: never) => void;
  readonly readResponse: (r: Reader, version: number) => unknown;
}

const loaded = new Map<number, ApiCodec>();
const loading = new Map<number, Promise<ApiCodec>>();

// Run from source the modules are .ts; in the published build (dist/) they are .js.
const EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/** `000-produce`, `002-list-offsets`: the generated file of an API, without extension. */
export function codecModuleName(apiKey: number): string | undefined {
  const info = apiKeyInfo(apiKey);
  if (info === undefined) return undefined;
  const kebab = info.name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  return `${String(apiKey).padStart(3, '0')}-${kebab}`;
}

/** The codec if already loaded (then requests can be encoded synchronously). */
export function loadedCodec(apiKey: number): ApiCodec | undefined {
  return loaded.get(apiKey);
}

export function loadCodec(apiKey: number): Promise<ApiCodec> {
  const done = loaded.get(apiKey);
  if (done !== undefined) return Promise.resolve(done);
  let pending = loading.get(apiKey);
  if (pending === undefined) {
    const name = codecModuleName(apiKey);
    const info = apiKeyInfo(apiKey);
    if (name === undefined || info === undefined) return Promise.reject(new Error(`unknown API key ${apiKey}`));
    const url = new URL(`../protocol/messages/${name}${EXTENSION}`, import.meta.url).href;
    pending = (import(url) as Promise<Record<string, unknown>>).then((mod) => {
      const writeRequest = mod[`write${info.name}Request`];
      const readResponse = mod[`read${info.name}Response`];
      if (typeof writeRequest !== 'function' || typeof readResponse !== 'function') {
        throw new Error(`${name} has no write${info.name}Request/read${info.name}Response`);
      }
      const codec = { writeRequest, readResponse } as ApiCodec;
      loaded.set(apiKey, codec);
      loading.delete(apiKey);
      return codec;
    });
    loading.set(apiKey, pending);
    pending.catch(() => loading.delete(apiKey));
  }
  return pending;
}
