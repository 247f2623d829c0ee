/**
 * Kafka's PartitionMetadataFile (KIP-516): `partition.metadata` in each partition directory records
 * the id of the topic the log belongs to,
 *
 *   version: 0
 *   topic_id: <22-character URL-safe base64 UUID, no padding>
 *
 * so that a log left behind by a deleted topic is not taken for the log of a later topic of the same
 * name (directories are named `<topic>-<partition>`, which says nothing about which topic it was).
 * Written atomically (tmp + fdatasync + rename + directory fsync) like the checkpoint files.
 * The storage layer only stores the id; comparing it with the metadata is the caller's business.
 */
import { join } from 'node:path';
import type { FileLayer } from './file-layer.ts';
import { isMissingFileError, writeFileAtomic } from './file-layer.ts';

export const PARTITION_METADATA_FILE = 'partition.metadata';

const CURRENT_VERSION = 0;
/** Kafka's Uuid.toString(): 16 bytes as base64url without padding. */
const TOPIC_ID = /^[A-Za-z0-9_-]{22}$/;

export class PartitionMetadataCorruptError extends Error {
  constructor(path: string, detail: string) {
    super(`malformed partition metadata file ${path}: ${detail}`);
    this.name = 'PartitionMetadataCorruptError';
  }
}

export function isTopicId(s: string): boolean {
  return TOPIC_ID.test(s);
}

export function partitionMetadataPath(partitionDir: string): string {
  return join(partitionDir, PARTITION_METADATA_FILE);
}

/** The recorded topic id; null when the file does not exist (a log written before the file existed). */
export async function readPartitionMetadata(files: FileLayer, partitionDir: string): Promise<string | null> {
  const path = partitionMetadataPath(partitionDir);
  let text: string;
  try {
    text = (await files.readFile(path)).toString('utf8');
  } catch (err) {
    if (isMissingFileError(err)) return null;
    throw err;
  }
  // Parsed as Kafka's PartitionMetadataReadBuffer does: "<key>: <value>" lines, version first.
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const field = (i: number, name: string): string => {
    const m = /^([a-z_]+): (.*)$/.exec(lines[i]?.trim() ?? '');
    if (m === null || m[1] !== name)
      throw new PartitionMetadataCorruptError(path, `line ${i + 1} is not '${name}: ...'`);
    return m[2]!.trim();
  };
  const version = field(0, 'version');
  if (version !== String(CURRENT_VERSION)) {
    throw new PartitionMetadataCorruptError(path, `unsupported version '${version}'`);
  }
  const topicId = field(1, 'topic_id');
  if (!isTopicId(topicId)) throw new PartitionMetadataCorruptError(path, `bad topic id '${topicId}'`);
  return topicId;
}

export async function writePartitionMetadata(files: FileLayer, partitionDir: string, topicId: string): Promise<void> {
  if (!isTopicId(topicId)) throw new Error(`not a topic id: ${JSON.stringify(topicId)}`);
  await writeFileAtomic(
    files,
    partitionMetadataPath(partitionDir),
    Buffer.from(`version: ${CURRENT_VERSION}\ntopic_id: ${topicId}\n`, 'utf8'),
  );
}
