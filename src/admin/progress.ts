/**
 * A one-line progress display for long operations, redrawn in place on stderr — only when
 * stderr is a terminal, so pipes, files and scripts see nothing of it. `SAMSA_PROGRESS=0` turns
 * it off on a terminal too.
 */
export interface Progress {
  /** Redraws the line (at most every 100 ms unless `force`). */
  update(done: number, total: number, force?: boolean): void;
  /** Clears the line. */
  end(): void;
}

const NONE: Progress = { update: () => {}, end: () => {} };

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true || process.env.SAMSA_PROGRESS === '0') return NONE;
  let last = 0;
  let drawn = false;
  return {
    update(done, total, force = false) {
      const now = Date.now();
      if (!force && now - last < 100) return;
      last = now;
      const pct = total > 0 ? Math.floor((done * 100) / total) : 100;
      const width = 20;
      const filled = total > 0 ? Math.round((done * width) / total) : width;
      stream.write(`\r\x1b[2K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} (${pct}%)`);
      drawn = true;
    },
    end() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}
