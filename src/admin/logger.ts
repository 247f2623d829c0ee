import pino, { type Logger } from 'pino';

/** Structured JSON logs; human-readable lines when stderr is a terminal. */
export async function createLogger(level: string): Promise<Logger> {
  if (process.stderr.isTTY) {
    // Loaded only for terminals: it costs startup time a service does not need to pay.
    const { default: pretty } = await import('pino-pretty');
    return pino({ level }, pretty({ destination: 2, sync: true, colorize: true, translateTime: 'HH:MM:ss.l' }));
  }
  return pino({ level }, pino.destination({ dest: 2, sync: false }));
}
