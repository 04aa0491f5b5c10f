import type { TrainingArguments } from "../args/training-arguments.js";
import type { TrainerCallback } from "../callbacks/trainer-callback.js";
import type { Logger } from "../util/logger.js";
import type { OutboxTransport } from "./outbox/types.js";

/** What a plugin gets when it is checked and when its callback is created. */
export interface PluginContext {
  args: TrainingArguments;
  /** The environment to read configuration from (process.env unless a test gives another). */
  env: Record<string, string | undefined>;
  logger: Logger;
}

/** Whether a plugin can run now, and if not, what to set. */
export type Availability = { available: true } | { available: false; reason: string };

export interface PluginDefinition {
  /** The report_to name, e.g. "tensorboard"; lowercase letters, digits, _ and -. */
  name: string;
  /** Installed and configured? Plugins without this hook are always available. */
  isAvailable?(context: PluginContext): Availability | boolean;
  /** The callback that reports this run. */
  create(context: PluginContext): TrainerCallback | Promise<TrainerCallback>;
  /**
   * Whether reportTo "all" may pick this plugin (default true). HF leaves some integrations
   * (Flyte) out of "all": they act only when named in reportTo.
   */
  autoSelect?: boolean;
  /**
   * For plugins that send through an outbox: rebuilds the delivery side from a spool's
   * meta.json (secret-free) and secrets from `env`, so `trainkit sync <outputDir>` can deliver
   * what a run left behind.
   */
  transport?(
    meta: Record<string, unknown>,
    context: TransportContext,
  ): OutboxTransport | Promise<OutboxTransport>;
}

/** What `transport` gets: where to read secrets and where to say things. */
export interface TransportContext {
  env: Record<string, string | undefined>;
  logger: Logger;
}

/** A plugin, as a plugin package's default export. */
export interface TrainkitPlugin
  extends
    Required<Pick<PluginDefinition, "name" | "create">>,
    Pick<PluginDefinition, "transport" | "autoSelect"> {
  readonly kind: "trainkit-plugin";
  isAvailable(context: PluginContext): Availability;
}

const NAME = /^[a-z][a-z0-9_-]*$/;

/** Declares a plugin: the value a plugin package exports as default. */
export function definePlugin(definition: PluginDefinition): TrainkitPlugin {
  if (typeof definition !== "object" || definition === null)
    throw new TypeError("definePlugin expects { name, isAvailable?, create }.");
  const { name, isAvailable, create, transport, autoSelect } = definition;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(
      `definePlugin: name must be lowercase letters, digits, "_" or "-", starting with a letter (got ${JSON.stringify(name)}).`,
    );
  }
  if (typeof create !== "function")
    throw new TypeError(
      `definePlugin "${name}": create must be a function returning a TrainerCallback.`,
    );
  if (isAvailable !== undefined && typeof isAvailable !== "function")
    throw new TypeError(`definePlugin "${name}": isAvailable must be a function if given.`);
  if (transport !== undefined && typeof transport !== "function")
    throw new TypeError(`definePlugin "${name}": transport must be a function if given.`);
  return Object.freeze({
    kind: "trainkit-plugin" as const,
    name,
    create,
    ...(transport === undefined ? {} : { transport }),
    ...(autoSelect === undefined ? {} : { autoSelect: autoSelect === true }),
    isAvailable(context: PluginContext): Availability {
      if (!isAvailable) return { available: true };
      const result = isAvailable(context);
      if (typeof result === "boolean")
        return result ? { available: true } : { available: false, reason: "not configured" };
      return result;
    },
  });
}

export function isTrainkitPlugin(value: unknown): value is TrainkitPlugin {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { kind?: unknown }).kind === "trainkit-plugin" &&
    typeof (value as { create?: unknown }).create === "function"
  );
}
