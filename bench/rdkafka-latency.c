/*
 * A C load generator for the broker benchmark: librdkafka's producer sending fixed-size records at
 * a fixed rate, measuring each record's latency from when it was due (its place in the schedule)
 * to its delivery report, so a stall delays every record behind it (no coordinated omission), as
 * `samsa perf produce --throughput` does.
 *
 *   rdkafka-latency BOOTSTRAP TOPIC RATE SECONDS WARMUP_SECONDS [RECORD_SIZE] [key=value ...]
 *
 * Extra key=value pairs are librdkafka settings (acks, linger.ms, batch.size, ...). Prints one line
 * of JSON: {"records", "recordsPerSec", "p50", "p99", "p999", "max"} (ms, after the warm-up).
 * Built by bench/broker.bench.ts with `cc -O2 ... -lrdkafka` (Debian: librdkafka-dev).
 */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double *latencies_ms;
static int64_t recorded, delivered, failed, warmup_before_ns;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  (void)opaque;
  int64_t due = (int64_t)(intptr_t)m->_private;
  delivered++;
  if (m->err) {
    if (failed++ < 5) fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    return;
  }
  if (due >= warmup_before_ns) latencies_ms[recorded++] = (double)(now_ns() - due) / 1e6;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(double q) {
  if (recorded == 0) return 0;
  int64_t i = (int64_t)(q * (double)recorded + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= recorded) i = recorded - 1;
  return latencies_ms[i];
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s BOOTSTRAP TOPIC RATE SECONDS WARMUP_SECONDS [RECORD_SIZE] [key=value ...]\n", argv[0]);
    return 2;
  }
  const char *topic = argv[2];
  double rate = atof(argv[3]);
  double seconds = atof(argv[4]), warmup = atof(argv[5]);
  int size = argc > 6 ? atoi(argv[6]) : 1024;
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof err) != RD_KAFKA_CONF_OK) {
    fprintf(stderr, "%s\n", err);
    return 2;
  }
  for (int i = 7; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (eq == NULL) continue;
    *eq = 0;
    if (rd_kafka_conf_set(conf, argv[i], eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
      fprintf(stderr, "%s\n", err);
      return 2;
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == NULL) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  int64_t total = (int64_t)(rate * seconds);
  latencies_ms = malloc(sizeof(double) * (size_t)total);
  char *payload = malloc((size_t)size);
  for (int i = 0; i < size; i++) payload[i] = (char)('A' + rand() % 26);

  /* Connect and fetch metadata before the clock starts. */
  const struct rd_kafka_metadata *md;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fprintf(stderr, "no metadata for %s\n", topic);
    return 1;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);

  int64_t start = now_ns();
  double ns_per_record = 1e9 / rate;
  warmup_before_ns = start + (int64_t)(warmup * 1e9);
  for (int64_t i = 0; i < total; i++) {
    int64_t due = start + (int64_t)((double)i * ns_per_record);
    while (now_ns() < due) rd_kafka_poll(rk, (int)((due - now_ns()) / 1000000));
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(payload, (size_t)size),
                                  RD_KAFKA_V_OPAQUE((void *)(intptr_t)due), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 1);
    }
    if (e) {
      fprintf(stderr, "produce failed: %s\n", rd_kafka_err2str(e));
      return 1;
    }
    if ((i & 63) == 0) rd_kafka_poll(rk, 0);
  }
  rd_kafka_flush(rk, 60000);
  int64_t end = now_ns();
  qsort(latencies_ms, (size_t)recorded, sizeof(double), compare);
  printf("{\"records\":%lld,\"failed\":%lld,\"recordsPerSec\":%.1f,\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}\n",
         (long long)delivered, (long long)failed, (double)delivered / ((double)(end - start) / 1e9), percentile(0.5),
         percentile(0.99), percentile(0.999), recorded ? latencies_ms[recorded - 1] : 0.0);
  rd_kafka_destroy(rk);
  return failed > 0 ? 1 : 0;
}
