import { format } from "node:util";
import { setLogger } from "@trainkit/core";

/** One thing written during a run: a trainkit log message, or output to stdout/stderr/console. */
export interface Written {
  /** "trainkit info", "trainkit warn", "stdout", "stderr", or "console.<method>". */
  channel: string;
  text: string;
}

const CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace"] as const;
type ConsoleMethod = (typeof CONSOLE_METHODS)[number];

/**
 * Runs `body` with process.env overlaid by `env` (an undefined value unsets the variable),
 * trainkit's logger captured (setLogger), and everything written to process.stdout,
 * process.stderr and the console captured instead of printed. All of it is put back afterwards,
 * even when `body` throws.
 */
export async function withCapture<T>(
  env: Record<string, string | undefined>,
  written: Written[],
  body: () => Promise<T>,
): Promise<T> {
  const savedEnv = new Map<string, string | undefined>();
  for (const [key, value] of Object.entries(env)) {
    savedEnv.set(key, process.env[key]);
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  const record = (channel: string) => (text: string) => void written.push({ channel, text });
  const previousLogger = setLogger({
    info: record("trainkit info"),
    warn: record("trainkit warn"),
  });

  const streams = [
    [process.stdout, "stdout"],
    [process.stderr, "stderr"],
  ] as const;
  const ownWrites = streams.map(([stream]) => Object.getOwnPropertyDescriptor(stream, "write"));
  for (const [stream, channel] of streams) {
    stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      const text =
        typeof chunk === "string"
          ? chunk
          : Buffer.from(chunk as Uint8Array).toString(
              typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8",
            );
      written.push({ channel, text });
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
  }
  const console = globalThis.console as unknown as Record<ConsoleMethod, unknown>;
  const ownConsole = CONSOLE_METHODS.map((m) => Object.getOwnPropertyDescriptor(console, m));
  for (const method of CONSOLE_METHODS) {
    console[method] = (...args: unknown[]) =>
      void written.push({ channel: `console.${method}`, text: format(...args) });
  }

  try {
    return await body();
  } finally {
    CONSOLE_METHODS.forEach((method, i) => restoreProperty(console, method, ownConsole[i]));
    streams.forEach(([stream], i) => restoreProperty(stream, "write", ownWrites[i]));
    setLogger(previousLogger);
    for (const [key, value] of savedEnv) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** Puts an own property back as it was, or removes the one we added (the prototype's shows). */
function restoreProperty(
  target: object,
  key: string,
  descriptor: PropertyDescriptor | undefined,
): void {
  if (descriptor) Object.defineProperty(target, key, descriptor);
  else delete (target as Record<string, unknown>)[key];
}
