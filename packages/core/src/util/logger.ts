/** Where trainkit's warnings and notices go. Replace it with `setLogger` to capture them. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

const consoleLogger: Logger = {
  info: (message) => console.log(`[trainkit] ${message}`),
  warn: (message) => console.warn(`[trainkit] ${message}`),
};

let current: Logger = consoleLogger;

export const logger: Logger = {
  info: (message) => current.info(message),
  warn: (message) => current.warn(message),
};

/** Sends trainkit's messages to `next` (or back to the console with no argument). */
export function setLogger(next: Logger = consoleLogger): Logger {
  const previous = current;
  current = next;
  return previous;
}
