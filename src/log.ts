/** The one root logger; components take children (`log.child({component:'pool'})`). */
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } });
}

/** A logger that drops everything: for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
