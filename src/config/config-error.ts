/** A configuration that cannot work (bad value, unreadable file, unservable listener): exit code 2. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
