/**
 * `samsa.metadata.url` / `--metadata`: where a cluster member finds the cluster's metadata,
 * `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`. The prefix (default `/samsa`) lets one etcd hold
 * several clusters, as a ZooKeeper chroot did for Kafka.
 */
import { ConfigError } from './config-error.ts';

export interface MetadataLocation {
  /** `http://HOST:PORT` of each etcd member, as the etcd client takes them. */
  readonly endpoints: readonly string[];
  /** The key prefix of this cluster, without a trailing slash. */
  readonly prefix: string;
}

export const DEFAULT_METADATA_PREFIX = '/samsa';

export function parseMetadataUrl(url: string, name = 'samsa.metadata.url'): MetadataLocation {
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url.trim());
  if (m === null)
    throw new ConfigError(
      `${name}: '${url}' is not etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (e.g. etcd://127.0.0.1:2379)`,
    );
  const endpoints = m[1]!.split(',').map((hostPort) => {
    const hp = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(hostPort.trim());
    if (hp === null || Number(hp[2]) < 1 || Number(hp[2]) > 65535)
      throw new ConfigError(`${name}: '${hostPort}' in '${url}' is not HOST:PORT (e.g. 127.0.0.1:2379)`);
    return `http://${hp[1]}:${hp[2]}`;
  });
  const prefix = (m[2] ?? DEFAULT_METADATA_PREFIX).replace(/\/+$/, '');
  if (prefix === '') throw new ConfigError(`${name}: the prefix of '${url}' is empty; give /NAME or leave it out`);
  return { endpoints, prefix };
}
