import { logger, type PluginContext } from "@trainkit/core/plugin";

/** Where notices and problems go: the Trainer's logger when the plugin creates the callback. */
export type Logger = PluginContext["logger"];

/** The default outside a Trainer: core's logger (the console, or whatever setLogger chose). */
export const defaultLogger: Logger = logger;
