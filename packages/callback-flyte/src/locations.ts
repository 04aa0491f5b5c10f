/**
 * Where this Flyte task's checkpoints and deck go, from options, the process arguments Flyte
 * renders ({{.checkpointOutputPrefix}}, {{.prevCheckpointPrefix}}, {{.rawOutputDataPrefix}}) or
 * trainkit's env fallbacks. Flyte renders "no previous checkpoint" as the literal two characters
 * `""`, so that (and an empty value) means "none" everywhere.
 *
 * This process's own arguments are read only inside a Flyte task: `--checkpoint-path` is a
 * common flag name, and `node train.js --checkpoint-path ./ckpt` on a laptop must not make
 * trainkit copy (and replace) anything there.
 */
import { isTruthyEnv } from "@trainkit/core/plugin";

/** The process arguments flytekit passes to a task, by what they hold. */
export const FLYTE_ARGS = {
  checkpointPath: "--checkpoint-path",
  prevCheckpoint: "--prev-checkpoint",
  rawOutputPrefix: "--raw-output-data-prefix",
} as const;

/** trainkit's env fallbacks (HF reads none; Flyte sets no variable with these paths). */
export const FLYTE_ENV = {
  checkpointPath: "TRAINKIT_FLYTE_CHECKPOINT_PATH",
  prevCheckpoint: "TRAINKIT_FLYTE_PREV_CHECKPOINT",
  deckDir: "TRAINKIT_FLYTE_DECK_DIR",
  saveLogHistory: "TRAINKIT_FLYTE_SAVE_LOG_HISTORY",
  syncCheckpoints: "TRAINKIT_FLYTE_SYNC_CHECKPOINTS",
} as const;

/** Set by Flyte in every task pod: how isAvailable tells a Flyte task from a laptop. */
export const FLYTE_EXECUTION_ID = "FLYTE_INTERNAL_EXECUTION_ID";

/**
 * A location as given, or undefined for "none": undefined, empty, blank, or the literal `""`
 * (and `''`) that Flyte renders for a missing previous checkpoint.
 */
export function locationOrNone(value: string | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed === "" || trimmed === '""' || trimmed === "''") return undefined;
  return trimmed;
}

/**
 * The value of `--name <value>` or `--name=<value>` in `argv` (the last one wins, as with
 * argparse). A flag followed by nothing or by another `--flag` has no value: a wrapper script
 * that dropped an empty argument must not make the next flag a path. Returns undefined when
 * the flag is absent, "" when it has no value.
 */
export function argValue(argv: readonly string[], name: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === name) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) found = "";
      else {
        found = next;
        i++;
      }
    } else if (token.startsWith(`${name}=`)) found = token.slice(name.length + 1);
  }
  return found;
}

/** What the arguments of a Flyte task say about checkpoints and outputs. */
export interface FlyteArgs {
  checkpointPath?: string;
  prevCheckpoint?: string;
  rawOutputPrefix?: string;
}

/** Reads flytekit's `--checkpoint-path`, `--prev-checkpoint` and `--raw-output-data-prefix`. */
export function parseFlyteArgs(argv: readonly string[] = process.argv.slice(2)): FlyteArgs {
  const out: FlyteArgs = {};
  for (const key of Object.keys(FLYTE_ARGS) as (keyof FlyteArgs)[]) {
    const value = locationOrNone(argValue(argv, FLYTE_ARGS[key]));
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** The options that say where things go; each wins over the process arguments and the env. */
export interface LocationOptions {
  /** This attempt's checkpoint prefix (Flyte's {{.checkpointOutputPrefix}}); "" means none. */
  checkpointPath?: string;
  /** The previous attempt's checkpoint prefix (Flyte's {{.prevCheckpointPrefix}}); "" means none. */
  prevCheckpoint?: string;
  /** Where log_history.html and log_history.json go; "" means the default. */
  deckDir?: string;
  /**
   * The process arguments to read. Default: process.argv.slice(2) inside a Flyte task
   * (FLYTE_INTERNAL_EXECUTION_ID set), none elsewhere.
   */
  argv?: readonly string[];
  /** The environment to read (default: process.env). */
  env?: Record<string, string | undefined>;
}

export type LocationSource = "option" | "argument" | "env" | "default";

export interface Located {
  value: string | undefined;
  /** Where the value came from, for messages: `option checkpointPath`, `--checkpoint-path`, ... */
  from: string;
  source: LocationSource;
}

export interface FlyteLocations {
  checkpointPath: Located;
  prevCheckpoint: Located;
  /** undefined value: the Trainer's outputDir (known only once training starts). */
  deckDir: Located;
}

/**
 * Option, else process argument, else env. A value that means "none" at a higher level is
 * still "none" (an explicit `checkpointPath: ""` turns off a path the env would give).
 */
export function resolveLocations(options: LocationOptions = {}): FlyteLocations {
  const env = options.env ?? process.env;
  const argv = options.argv ?? (insideFlyteTask(env) ? process.argv.slice(2) : []);
  const pick = (
    option: keyof LocationOptions & ("checkpointPath" | "prevCheckpoint" | "deckDir"),
    flag: string | undefined,
    variable: string,
  ): Located => {
    if (options[option] !== undefined)
      return { value: locationOrNone(options[option]), from: `option ${option}`, source: "option" };
    const fromArgs = flag === undefined ? undefined : argValue(argv, flag);
    if (fromArgs !== undefined)
      return { value: locationOrNone(fromArgs), from: flag!, source: "argument" };
    if (env[variable] !== undefined)
      return { value: locationOrNone(env[variable]), from: variable, source: "env" };
    return { value: undefined, from: "default", source: "default" };
  };
  const deckDir = pick("deckDir", undefined, FLYTE_ENV.deckDir);
  // The deck's default is the task's raw output prefix when flytekit-style arguments give one.
  if (deckDir.source === "default") {
    const raw = locationOrNone(argValue(argv, FLYTE_ARGS.rawOutputPrefix));
    if (raw !== undefined)
      Object.assign(deckDir, { value: raw, from: FLYTE_ARGS.rawOutputPrefix, source: "argument" });
  }
  return {
    checkpointPath: pick("checkpointPath", FLYTE_ARGS.checkpointPath, FLYTE_ENV.checkpointPath),
    prevCheckpoint: pick("prevCheckpoint", FLYTE_ARGS.prevCheckpoint, FLYTE_ENV.prevCheckpoint),
    deckDir,
  };
}

/** HF's truthy env test (core's isTruthyEnv) on the trimmed value; unset or blank is undefined. */
export function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  return isTruthyEnv(value.trim());
}

/** Whether this process runs as a Flyte task (Flyte sets the execution id in every task pod). */
export function insideFlyteTask(env: Record<string, string | undefined> = process.env): boolean {
  return (env[FLYTE_EXECUTION_ID] ?? "").trim() !== "";
}
