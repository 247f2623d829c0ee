/**
 * A pino logger whose lines a test reads: every line is parsed as the JSON object pino wrote, and
 * a test can wait for a line matching a predicate (no timers: it resolves when the line is written).
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50 } as const;

export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;
  readonly #waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();

  constructor(level = 'info') {
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        for (const text of String(chunk).split('\n')) {
          if (text.trim() === '') continue;
          const line = JSON.parse(text) as LogLine;
          this.lines.push(line);
          for (const w of this.#waiters) {
            if (w.match(line)) {
              this.#waiters.delete(w);
              w.resolve(line);
            }
          }
        }
        done();
      },
    });
    this.logger = pino({ level }, sink);
  }

  /** Lines with this message (in order). */
  withMsg(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg === msg);
  }

  /** The first line (already written or still to come) that matches. */
  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const found = this.lines.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => this.#waiters.add({ match, resolve }));
  }
}
