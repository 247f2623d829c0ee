/**
 * The broker's metrics as Prometheus text, named as Kafka's JMX metrics come out of the
 * Prometheus JMX exporter with Strimzi's example rules (packaging/examples/metrics/
 * kafka-metrics.yaml: `lowercaseOutputName`, `...PerSec><>Count` -> `_total`, `><>Value` -> a
 * gauge, `><>NNthPercentile` -> a gauge with a `quantile` label, `><>Count` -> `_count`), so
 * Strimzi's Kafka Grafana dashboard reads them unchanged; consumer-group offsets and lag as
 * kafka-exporter names them; Node's process metrics from prom-client's default collectors.
 *
 * Every value is read from the broker when scraped (`collect`), none is kept twice.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { BrokerMetricsView, TopicCounters } from '../../broker-metrics.ts';
import type { ApiTimings } from '../../network/request-metrics.ts';

/** Kafka's histogram percentiles, as Strimzi's rules label them (`0.$N` of `NNthPercentile`). */
const PERCENTILES: readonly [string, number][] = [
  ['0.50', 0.5],
  ['0.75', 0.75],
  ['0.95', 0.95],
  ['0.98', 0.98],
  ['0.99', 0.99],
  ['0.999', 0.999],
];

/** kafka.server:type=BrokerTopicMetrics,name=<X>PerSec -> kafka_server_brokertopicmetrics_<x>_total. */
const TOPIC_METERS: readonly [string, keyof TopicCounters, string][] = [
  ['messagesin', 'messagesIn', 'Records appended by produce requests'],
  ['bytesin', 'bytesIn', 'Record batch bytes appended by produce requests'],
  ['bytesout', 'bytesOut', 'Record batch bytes read by fetch requests'],
  ['failedproducerequests', 'failedProduceRequests', 'Partition appends of produce requests that failed'],
  ['failedfetchrequests', 'failedFetchRequests', 'Partition reads of fetch requests that failed'],
  ['totalproducerequests', 'totalProduceRequests', 'Partition appends of produce requests'],
  ['totalfetchrequests', 'totalFetchRequests', 'Partition reads of fetch requests'],
];

/** The broker's registry: a fresh one per broker (several may run in one process). */
export function brokerRegistry(view: BrokerMetricsView): Registry {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  for (const [name, field, help] of TOPIC_METERS) {
    new Counter({
      name: `kafka_server_brokertopicmetrics_${name}_total`,
      help: `${help} (Kafka's BrokerTopicMetrics ${name}; without a topic label: all topics)`,
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset();
        const stats = view.topicStats();
        this.inc(stats.allTopics[field]);
        for (const [topic, c] of stats.topics()) this.inc({ topic }, c[field]);
      },
    });
  }

  new Counter({
    name: 'kafka_network_requestmetrics_requests_total',
    help: 'Requests answered, by Kafka request name',
    labelNames: ['request'],
    registers,
    collect() {
      this.reset();
      for (const t of view.requestMetrics()?.apis() ?? []) this.inc({ request: t.name }, t.requests);
    },
  });
  // TotalTimeMs (request read -> response written), LocalTimeMs (-> handler finished) and
  // RequestQueueTimeMs: Samsa runs a request as soon as it is read, so it waits in no queue (0).
  const histograms: [string, string, (t: ApiTimings, q: number) => number][] = [
    ['totaltimems', 'Milliseconds from the request read to its response written', (t, q) => t.total.percentileMs(q)],
    ['localtimems', 'Milliseconds from the request read to its handler finished', (t, q) => t.local.percentileMs(q)],
    ['requestqueuetimems', 'Milliseconds a request waits to be handled (none: requests run when read)', () => 0],
  ];
  for (const [name, help, percentile] of histograms) {
    new Gauge({
      name: `kafka_network_requestmetrics_${name}`,
      help: `${help}, percentiles by Kafka request name`,
      labelNames: ['request', 'quantile'],
      registers,
      collect() {
        this.reset();
        for (const t of view.requestMetrics()?.apis() ?? []) {
          for (const [quantile, q] of PERCENTILES) this.set({ request: t.name, quantile }, percentile(t, q));
        }
      },
    });
    new Counter({
      name: `kafka_network_requestmetrics_${name}_count`,
      help: `${help}: requests measured`,
      labelNames: ['request'],
      registers,
      collect() {
        this.reset();
        for (const t of view.requestMetrics()?.apis() ?? []) this.inc({ request: t.name }, t.requests);
      },
    });
  }

  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value());
      },
    });
  };
  // Read once for the metrics collected together, not once per metric (a broker may hold tens of
  // thousands of partitions); read afresh after the event loop's next check phase.
  let scraped: ReturnType<BrokerMetricsView['partitions']> | undefined;
  const partitions = () => {
    if (scraped === undefined) {
      scraped = view.partitions();
      setImmediate(() => {
        scraped = undefined;
      });
    }
    return scraped;
  };
  const offline = () => partitions().filter((p) => p.offline).length;
  // Partitions have one replica until replication: none is under-replicated.
  gauge('kafka_server_replicamanager_partitioncount', 'Partitions on this broker', () => partitions().length);
  gauge(
    'kafka_server_replicamanager_leadercount',
    'Partitions this broker leads',
    () => partitions().filter((p) => p.leader).length,
  );
  // As in Kafka, a partition's replication state is reported by its leader.
  gauge(
    'kafka_server_replicamanager_underreplicatedpartitions',
    'Partitions led here with replicas out of sync',
    () => partitions().filter((p) => p.leader && p.isr < p.replicas).length,
  );
  gauge(
    'kafka_server_replicamanager_underminisrpartitioncount',
    'Partitions led here with fewer in-sync replicas than min.insync.replicas',
    () => partitions().filter((p) => p.leader && p.isr < p.minIsr).length,
  );
  gauge(
    'kafka_server_replicamanager_atminisrpartitioncount',
    'Partitions led here with exactly min.insync.replicas in sync',
    () => partitions().filter((p) => p.leader && p.isr === p.minIsr).length,
  );
  gauge('kafka_server_replicamanager_offlinereplicacount', 'Replicas on an offline log directory', offline);
  gauge('kafka_controller_kafkacontroller_activecontrollercount', 'This broker is the active controller', () =>
    view.controller().active ? 1 : 0,
  );
  gauge(
    'kafka_controller_kafkacontroller_offlinepartitionscount',
    'Partitions without a live leader (reported by the active controller)',
    () => view.controller().offlinePartitionCount,
  );
  gauge(
    'kafka_controller_kafkacontroller_globaltopiccount',
    'Topics in the cluster (reported by the active controller)',
    () => view.controller().globalTopicCount,
  );
  gauge(
    'kafka_controller_kafkacontroller_globalpartitioncount',
    'Partitions in the cluster (reported by the active controller)',
    () => view.controller().globalPartitionCount,
  );
  new Counter({
    name: 'kafka_controller_controllerstats_uncleanleaderelections_total',
    help: 'Unclean leader elections (none: one replica per partition)',
    registers,
  });

  const perPartition = (name: string, help: string, value: (p: ReturnType<typeof partitions>[number]) => number) => {
    new Gauge({
      name,
      help,
      labelNames: ['topic', 'partition'],
      registers,
      collect() {
        this.reset();
        for (const p of partitions()) this.set({ topic: p.topic, partition: String(p.partition) }, value(p));
      },
    });
  };
  perPartition('kafka_log_log_size', 'Bytes of the partition log on disk', (p) => p.size);
  perPartition('kafka_log_log_logstartoffset', 'First offset of the partition log', (p) => Number(p.logStartOffset));
  perPartition('kafka_log_log_logendoffset', 'Offset after the last record of the partition log', (p) =>
    Number(p.logEndOffset),
  );
  perPartition('kafka_cluster_partition_replicascount', 'Replicas of the partition', () => 1);
  // min.insync.replicas is 1 with one replica: every online partition is at (not under) it.
  perPartition('kafka_cluster_partition_underminisr', 'The in-sync replicas are fewer than min.insync.replicas', (p) =>
    p.offline || (p.leader && p.isr < p.minIsr) ? 1 : 0,
  );
  perPartition('kafka_cluster_partition_atminisr', 'The in-sync replicas are exactly min.insync.replicas', (p) =>
    !p.offline && p.leader && p.isr === p.minIsr ? 1 : 0,
  );
  perPartition('kafka_cluster_partition_underreplicated', 'The leader has replicas out of sync', (p) =>
    p.leader && p.isr < p.replicas ? 1 : 0,
  );

  // Strimzi's dashboard queries the first name; Strimzi's older example rules produce the second.
  for (const name of [
    'kafka_server_socket_server_metrics_connection_count',
    'kafka_server_socketservermetrics_connection_count',
  ]) {
    new Gauge({
      name,
      help: 'Open client connections (Kafka socket-server-metrics connection-count)',
      labelNames: ['listener', 'networkProcessor'],
      registers,
      collect() {
        this.reset();
        this.set({ listener: 'PLAINTEXT', networkProcessor: '0' }, view.networkStats()?.connections ?? 0);
      },
    });
  }
  // One event loop reads sockets and runs handlers: its idle share is both Kafka's network
  // processor and request handler idle ratio, since the previous scrape.
  let last = performance.eventLoopUtilization();
  let idle = 1;
  const sampleIdle = () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    if (delta.idle + delta.active > 0) idle = 1 - delta.utilization;
    return idle;
  };
  let sampled = 0;
  new Gauge({
    name: 'kafka_network_socketserver_networkprocessoravgidle_percent',
    help: 'Share of time the event loop was idle since the previous scrape (0..1)',
    registers,
    collect() {
      sampled = sampleIdle();
      this.set(sampled);
    },
  });
  new Gauge({
    name: 'kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent',
    help: 'Share of time the event loop was idle since the previous scrape (0..1)',
    registers,
    collect() {
      this.set(sampled);
    },
  });

  // Kafka's LinuxIoMetrics: the process's storage I/O from /proc/self/io.
  const io = async (field: 'read_bytes' | 'write_bytes'): Promise<number | undefined> => {
    const text = await readFile('/proc/self/io', 'utf8').catch(() => undefined);
    const m = text === undefined ? null : new RegExp(`^${field}: (\\d+)$`, 'm').exec(text);
    return m === null ? undefined : Number(m[1]);
  };
  for (const [name, field] of [
    ['read', 'read_bytes'],
    ['write', 'write_bytes'],
  ] as const) {
    new Gauge({
      name: `kafka_server_kafkaserver_linux_disk_${name}_bytes`,
      help: `Bytes the process ${name === 'read' ? 'read from' : 'wrote to'} storage (/proc/self/io ${field})`,
      registers,
      async collect() {
        const v = await io(field);
        if (v !== undefined) this.set(v);
      },
    });
  }

  // kafka-exporter's broker and topic metrics (Strimzi's Kafka Exporter dashboard).
  new Gauge({
    name: 'kafka_brokers',
    help: 'Brokers in the cluster',
    registers,
    collect() {
      this.set(1);
    },
  });
  new Gauge({
    name: 'kafka_broker_info',
    help: 'A broker of the cluster: its advertised address and id',
    labelNames: ['address', 'id'],
    registers,
    collect() {
      this.reset();
      const address = view.advertisedAddress();
      if (address !== undefined) this.set({ address, id: String(view.nodeId) }, 1);
    },
  });
  new Gauge({
    name: 'kafka_topic_partitions',
    help: 'Partitions of a topic',
    labelNames: ['topic'],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const p of partitions()) counts.set(p.topic, (counts.get(p.topic) ?? 0) + 1);
      for (const [topic, n] of counts) this.set({ topic }, n);
    },
  });
  perPartition('kafka_topic_partition_current_offset', 'Newest offset of a partition (its high watermark)', (p) =>
    Number(p.highWatermark),
  );
  perPartition('kafka_topic_partition_oldest_offset', 'Oldest offset of a partition (its log start offset)', (p) =>
    Number(p.logStartOffset),
  );
  perPartition('kafka_topic_partition_leader', 'Leader broker id of a partition', () => view.nodeId);
  perPartition('kafka_topic_partition_replicas', 'Replicas of a partition', () => 1);
  perPartition('kafka_topic_partition_in_sync_replica', 'In-sync replicas of a partition', (p) => (p.offline ? 0 : 1));
  perPartition('kafka_topic_partition_leader_is_preferred', 'The leader is the preferred replica', () => 1);
  perPartition('kafka_topic_partition_under_replicated_partition', 'The partition is under-replicated', () => 0);

  // kafka-exporter's consumer group metrics.
  new Gauge({
    name: 'kafka_consumergroup_current_offset',
    help: 'Committed offset of a consumer group in a partition',
    labelNames: ['consumergroup', 'topic', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const o of view.groupOffsets())
        this.set({ consumergroup: o.groupId, topic: o.topic, partition: String(o.partition) }, Number(o.offset));
    },
  });
  new Gauge({
    name: 'kafka_consumergroup_lag',
    help: 'Records of a partition after the consumer group committed offset (high watermark - committed offset)',
    labelNames: ['consumergroup', 'topic', 'partition'],
    registers,
    collect() {
      this.reset();
      const hw = new Map<string, bigint>();
      for (const p of partitions()) hw.set(`${p.topic}\u0000${p.partition}`, p.highWatermark);
      for (const o of view.groupOffsets()) {
        const end = hw.get(`${o.topic}\u0000${o.partition}`);
        if (end === undefined) continue;
        const lag = end > o.offset ? end - o.offset : 0n;
        this.set({ consumergroup: o.groupId, topic: o.topic, partition: String(o.partition) }, Number(lag));
      }
    },
  });
  return registry;
}
