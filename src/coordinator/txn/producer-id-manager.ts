/**
 * InitProducerId: hands out producer ids and epochs (KIP-98, KIP-360).
 * Ids come from blocks persisted in the metadata store before use, so a restart never reuses
 * one. A transactional id keeps its producer id; each InitProducerId bumps its epoch, which
 * fences the previous instance (its batches then fail with INVALID_PRODUCER_EPOCH).
 * An idempotent producer may ask to bump its own epoch (KIP-360, v3+) by sending its id/epoch.
 * Not implemented here: transaction state (ongoing transactions are the transaction
 * coordinator's, a later issue).
 */
import type { MetadataStore } from '../../metadata/metadata-store.ts';
import { ErrorCode, KafkaError } from '../../protocol/error-codes.ts';
import { SerialQueue } from '../../util/serial-queue.ts';

const BLOCK_SIZE = 1000;
const MAX_EPOCH = 32767;

export class ProducerIdManager {
  private readonly store: MetadataStore;
  private next = 0n;
  private end = 0n;
  private readonly queue = new SerialQueue();

  constructor(store: MetadataStore) {
    this.store = store;
  }

  private async nextId(): Promise<bigint> {
    if (this.next >= this.end) {
      const block = await this.store.allocateProducerIdBlock(BLOCK_SIZE);
      this.next = block.first;
      this.end = block.end;
    }
    return this.next++;
  }

  /** A fresh producer id (the transaction coordinator's new ids and id rotations). */
  allocateProducerId(): Promise<bigint> {
    return this.queue.run(() => this.nextId());
  }

  initProducerId(
    transactionalId: string | null,
    producerId: bigint,
    producerEpoch: number,
  ): Promise<{ producerId: bigint; producerEpoch: number }> {
    return this.queue.run(async () => {
      if (transactionalId === null || transactionalId === '') {
        if (producerId >= 0n && producerEpoch >= 0) {
          // KIP-360: an idempotent producer bumps its epoch after a fatal sequence error.
          if (producerEpoch + 1 > MAX_EPOCH) return { producerId: await this.nextId(), producerEpoch: 0 };
          return { producerId, producerEpoch: producerEpoch + 1 };
        }
        return { producerId: await this.nextId(), producerEpoch: 0 };
      }
      const existing = this.store.transactionalId(transactionalId);
      if (existing === undefined) {
        const id = await this.nextId();
        await this.store.setTransactionalId(transactionalId, id, 0);
        return { producerId: id, producerEpoch: 0 };
      }
      if (producerId >= 0n && (producerId !== existing.producerId || producerEpoch !== existing.producerEpoch)) {
        throw new KafkaError(ErrorCode.PRODUCER_FENCED, `producer ${producerId} epoch ${producerEpoch} was fenced`);
      }
      let next = { producerId: existing.producerId, producerEpoch: existing.producerEpoch + 1 };
      if (next.producerEpoch > MAX_EPOCH) next = { producerId: await this.nextId(), producerEpoch: 0 };
      await this.store.setTransactionalId(transactionalId, next.producerId, next.producerEpoch);
      return next;
    });
  }
}
