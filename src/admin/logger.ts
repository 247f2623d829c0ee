import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

/** Structured JSON logs; human-readable lines when stderr is a terminal. */
export function createLogger(level: string): Logger {
  if (process.stderr.isTTY) {
    return pino({ level }, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l' }));
  }
  return pino({ level }, pino.destination({ dest: 2, sync: false }));
}
