/**
 * KIP-430 authorized operations, as Kafka answers them without an authorizer: every operation the
 * resource type supports (KafkaApis.authorizedOperations over AclEntry.supportedOperations), as a
 * bit field of AclOperation codes. When the client did not ask, Kafka sends INT32_MIN.
 */
const READ = 3;
const WRITE = 4;
const CREATE = 5;
const DELETE = 6;
const ALTER = 7;
const DESCRIBE = 8;
const CLUSTER_ACTION = 9;
const DESCRIBE_CONFIGS = 10;
const ALTER_CONFIGS = 11;
const IDEMPOTENT_WRITE = 12;

function bits(...operations: number[]): number {
  return operations.reduce((field, op) => field | (1 << op), 0);
}

export const NOT_REQUESTED = -2147483648;

export const TOPIC_OPERATIONS = bits(READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS);
export const GROUP_OPERATIONS = bits(READ, DESCRIBE, DELETE);
export const CLUSTER_OPERATIONS = bits(
  CREATE,
  CLUSTER_ACTION,
  DESCRIBE_CONFIGS,
  ALTER_CONFIGS,
  IDEMPOTENT_WRITE,
  ALTER,
  DESCRIBE,
);

/** The field for a response: all of `operations` when requested, else Kafka's "not requested". */
export function authorizedOperations(requested: boolean, operations: number): number {
  return requested ? operations : NOT_REQUESTED;
}
