/**
 * A one-line progress display for long operations, redrawn in place on stderr — only when
 * stderr is a terminal, so pipes, files and scripts see nothing of it. `SAMSA_PROGRESS=0` turns
 * it off on a terminal too.
 */
export interface Progress {
  /** False when nothing is shown (stderr is not a terminal): callers may skip their timers. */
  readonly active: boolean;
  /** Redraws the line (at most every 100 ms unless `force`). */
  update(done: number, total: number, force?: boolean): void;
  /** Clears the line. */
  end(): void;
}

const NONE: Progress = { active: false, update: () => {}, end: () => {} };

/** The line drawn now, redrawn by printLine after a line of output. */
let drawnLine: { stream: NodeJS.WriteStream; text: string } | undefined;

/**
 * Prints a line on stdout; a progress line on the same terminal is cleared first and drawn again
 * below it, so the two do not run into each other.
 */
export function printLine(line: string): void {
  const shown = drawnLine;
  if (shown === undefined || process.stdout.isTTY !== true) {
    console.log(line);
    return;
  }
  shown.stream.write('\r\x1b[2K');
  console.log(line);
  shown.stream.write(shown.text);
}

export function progress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY !== true || process.env.SAMSA_PROGRESS === '0') return NONE;
  let last = 0;
  let drawn = false;
  return {
    active: true,
    update(done, total, force = false) {
      const now = Date.now();
      if (!force && now - last < 100) return;
      last = now;
      const pct = total > 0 ? Math.floor((done * 100) / total) : 100;
      const width = 20;
      const filled = total > 0 ? Math.round((done * width) / total) : width;
      const text = `\r\x1b[2K${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} (${pct}%)`;
      stream.write(text);
      drawn = true;
      drawnLine = { stream, text };
    },
    end() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
      drawnLine = undefined;
    },
  };
}
