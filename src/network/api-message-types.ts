/**
 * The request and response types of every Kafka API, by API key, so that
 * `client.request(ApiKey.Produce, body)` is typed end to end. Generated from the message schemas
 * with the codecs (src/protocol/messages/api-message-types.ts, by scripts/codegen/generate.ts), so
 * `npm run codegen:check` catches drift; this module is the network layer's public name for it.
 */
export {
  ApiKey,
  type ApiKeyNumber,
  type ApiMessageTypes,
  type RequestOf,
  type ResponseOf,
} from '../protocol/messages/api-message-types.ts';
