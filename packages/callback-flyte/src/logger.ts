import type { PluginContext } from "@trainkit/core/plugin";

/** Where notices and problems go: the Trainer's logger when the plugin creates the callback. */
export type Logger = PluginContext["logger"];

/** The default outside a Trainer: the console, prefixed as trainkit's own messages are. */
export const consoleLogger: Logger = {
  info: (message) => console.log(`[trainkit] ${message}`),
  warn: (message) => console.warn(`[trainkit] ${message}`),
};
