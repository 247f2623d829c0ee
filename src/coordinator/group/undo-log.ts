/**
 * The undo log of one group coordinator operation: how to put back every piece of in-memory
 * state the operation changed, so that when its records cannot be appended to
 * `__consumer_offsets` the coordinator holds exactly what its log holds (Kafka reverts its
 * timeline snapshot registry to the last written offset; this is the same idea, kept per
 * operation, since the runtime serialises the operations of each `__consumer_offsets` partition).
 *
 * Three kinds of entries, undone newest first:
 * - steps recorded at a change (a map entry set or deleted, a committed offset, a timer);
 * - object snapshots, taken once per operation before an existing group is first changed in
 *   place (`capture`), restored in place so closures holding the object stay valid;
 * - objects the operation created: nothing to restore, they leave with their map entry.
 */
export class UndoLog {
  readonly #steps: (() => void)[] = [];
  readonly #captured = new Set<object>();
  readonly #created = new Set<object>();

  /** Records how to undo one change (call it before the change is made). */
  add(step: () => void): void {
    this.#steps.push(step);
  }

  /** Snapshots `obj` before its first change in this operation; `snapshot` returns the restore. */
  capture(obj: object, snapshot: () => () => void): void {
    if (this.#captured.has(obj) || this.#created.has(obj)) return;
    this.#captured.add(obj);
    this.#steps.push(snapshot());
  }

  /** Marks an object as created by this operation (it needs no snapshot). */
  created(obj: object): void {
    if (!this.#captured.has(obj)) this.#created.add(obj);
  }

  /** Whether in-place changes to `obj` would be undone. */
  covers(obj: object): boolean {
    return this.#captured.has(obj) || this.#created.has(obj);
  }

  get empty(): boolean {
    return this.#steps.length === 0;
  }

  /** Undoes everything, newest first. The log is empty afterwards. */
  revert(): void {
    for (let i = this.#steps.length - 1; i >= 0; i--) this.#steps[i]!();
    this.#steps.length = 0;
    this.#captured.clear();
    this.#created.clear();
  }
}

/**
 * Snapshots an object's own properties, and the contents of its Map and Set properties (one
 * level deep): the restore puts the same values, and the same collections with the same
 * contents, back in place. Values must be replaced, not changed in place, below that level.
 */
export function snapshotObject(obj: object): () => void {
  const target = obj as Record<string, unknown>;
  const props = Object.entries(target);
  const contents = props.map(([, v]) => (v instanceof Map || v instanceof Set ? [...v] : undefined));
  return () => {
    for (const key of Object.keys(target)) if (!props.some(([k]) => k === key)) delete target[key];
    for (let i = 0; i < props.length; i++) {
      const [key, value] = props[i]!;
      target[key] = value;
      const saved = contents[i];
      if (value instanceof Map) {
        value.clear();
        for (const [k, v] of saved as [unknown, unknown][]) value.set(k, v);
      } else if (value instanceof Set) {
        value.clear();
        for (const v of saved as unknown[]) value.add(v);
      }
    }
  };
}
