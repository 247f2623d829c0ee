/**
 * Broker keys Kafka 3.9 accepts as dynamic broker configs besides the log.* topic defaults
 * (DynamicBrokerConfig.AllDynamicConfigs): security, listener, thread-pool, cleaner, connection
 * quota, producer-state and remote-log keys. Tools such as Strimzi and Cruise Control set them
 * through IncrementalAlterConfigs, so Samsa accepts and stores them (DescribeConfigs shows them);
 * those whose feature Samsa does not have yet (TLS, SASL, quotas, tiered storage) take effect
 * when it does.
 */
const SSL_KEYS = [
  'ssl.keystore.type',
  'ssl.keystore.location',
  'ssl.keystore.password',
  'ssl.key.password',
  'ssl.keystore.key',
  'ssl.keystore.certificate.chain',
  'ssl.truststore.type',
  'ssl.truststore.location',
  'ssl.truststore.password',
  'ssl.truststore.certificates',
  'ssl.protocol',
  'ssl.provider',
  'ssl.cipher.suites',
  'ssl.enabled.protocols',
  'ssl.keymanager.algorithm',
  'ssl.trustmanager.algorithm',
  'ssl.endpoint.identification.algorithm',
  'ssl.secure.random.implementation',
  'ssl.client.auth',
  'ssl.engine.factory.class',
];

const SASL_KEYS = [
  'sasl.enabled.mechanisms',
  'sasl.jaas.config',
  'sasl.kerberos.service.name',
  'sasl.kerberos.kinit.cmd',
  'sasl.kerberos.ticket.renew.window.factor',
  'sasl.kerberos.ticket.renew.jitter',
  'sasl.kerberos.min.time.before.relogin',
  'sasl.kerberos.principal.to.local.rules',
  'sasl.login.refresh.window.factor',
  'sasl.login.refresh.window.jitter',
  'sasl.login.refresh.min.period.seconds',
  'sasl.login.refresh.buffer.seconds',
];

const OTHER_KEYS = [
  // DynamicListenerConfig
  'listeners',
  'advertised.listeners',
  'listener.security.protocol.map',
  // DynamicThreadPool
  'num.io.threads',
  'num.network.threads',
  'num.replica.fetchers',
  'num.recovery.threads.per.data.dir',
  'background.threads',
  // LogCleaner
  'log.cleaner.threads',
  'log.cleaner.dedupe.buffer.size',
  'log.cleaner.io.buffer.load.factor',
  'log.cleaner.io.buffer.size',
  'log.cleaner.io.max.bytes.per.second',
  'log.cleaner.backoff.ms',
  // SocketServer (connection quotas)
  'max.connections',
  'max.connections.per.ip',
  'max.connections.per.ip.overrides',
  'max.connection.creation.rate',
  // ProducerStateManager
  'producer.id.expiration.ms',
  'transaction.partition.verification.enable',
  // DynamicConfig.Broker (replication throttles)
  'leader.replication.throttled.rate',
  'follower.replication.throttled.rate',
  'replica.alter.log.dirs.io.max.bytes.per.second',
  // DynamicRemoteLogConfig
  'remote.log.index.file.cache.total.size.bytes',
  'remote.log.manager.copy.max.bytes.per.second',
  'remote.log.manager.fetch.max.bytes.per.second',
  'remote.log.reader.threads',
  'remote.log.manager.copier.thread.pool.size',
  'remote.log.manager.expiration.thread.pool.size',
  'remote.fetch.max.wait.ms',
  // Metrics
  'metric.reporters',
  'config.providers',
];

const DYNAMIC_BROKER_KEYS = new Set([...SSL_KEYS, ...SASL_KEYS, ...OTHER_KEYS]);

/** Whether Kafka accepts `name` as a dynamic broker config (log.* defaults aside). */
export function isDynamicBrokerKey(name: string): boolean {
  return DYNAMIC_BROKER_KEYS.has(name) || /^listener\.name\.[^.]+\.(ssl|sasl)\./.test(name);
}

/** Secrets Kafka never shows in DescribeConfigs (value null, isSensitive). */
export function isSensitiveBrokerKey(name: string): boolean {
  return /password|\.jaas\.config$|ssl\.keystore\.key$/.test(name);
}
