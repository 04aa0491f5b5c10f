// What the tracker says, through the plugin context's logger: one line per fact, each problem
// once, filtered by codecarbon's log_level.
import { logger as coreLogger } from "@trainkit/core/plugin";
import type { LogLevel } from "./config/config.js";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

/** trainkit's own logger (the console, or what `setLogger` installed). */
export const defaultLogger: Logger = coreLogger;

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3, critical: 4 };

export class Reporter {
  private readonly said = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly level: LogLevel,
  ) {}

  /** How the estimate is made (shown at log levels debug and info). */
  info(message: string): void {
    if (RANK[this.level] <= RANK.info) this.logger.info(`CodeCarbon: ${message}`);
  }

  /** Something did not work as configured; said once per `key` (hidden above "warning"). */
  warnOnce(key: string, message: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    if (RANK[this.level] <= RANK.warning) this.logger.warn(`CodeCarbon: ${message}`);
  }

  /** A result was lost (e.g. the CSV could not be written); said once per `key` unless "critical". */
  errorOnce(key: string, message: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    if (RANK[this.level] <= RANK.error) this.logger.warn(`CodeCarbon: ${message}`);
  }
}
