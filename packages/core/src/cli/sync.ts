import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadFromEnv } from "../plugin/discovery.js";
import type { TrainkitPlugin } from "../plugin/define-plugin.js";
import { FIRST_PARTY } from "../plugin/first-party.js";
import { Outbox } from "../plugin/outbox/outbox.js";
import { listOutboxes, type FoundOutbox } from "../plugin/outbox/paths.js";
import { installedCandidates } from "../plugin/select.js";
import type { Logger } from "../util/logger.js";
import { redactText } from "../util/redact.js";

export interface SyncOptions {
  outputDir: string;
  /** Per outbox; default: no deadline. */
  deadlineMs?: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
  logger: Logger;
  /** Plugins to use before looking at what is installed (tests, programmatic use). */
  plugins?: readonly TrainkitPlugin[];
}

export interface SyncResult {
  outbox: FoundOutbox;
  delivered: number;
  pending: number;
  rejected: number;
  error?: string;
}

/**
 * `trainkit sync <outputDir>`: delivers what runs left in `<outputDir>/.trainkit/outbox`,
 * each spool through its own plugin's transport (rebuilt from the spool's meta.json and the
 * secrets in env), oldest first. Spools in use by a live process are left alone.
 */
export async function syncOutputDir(options: SyncOptions): Promise<SyncResult[]> {
  const outputDir = resolve(options.outputDir);
  if (!existsSync(outputDir))
    throw new Error(`${outputDir} does not exist: give the outputDir of a training run.`);
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const results: SyncResult[] = [];
  const plugins = await pluginFinder(options.plugins ?? [], cwd, env, options.logger);
  for (const found of listOutboxes(outputDir)) {
    if (found.pending === 0) continue;
    const result: SyncResult = { outbox: found, delivered: 0, pending: found.pending, rejected: 0 };
    results.push(result);
    try {
      const plugin = await plugins(found.integration);
      if (!plugin.transport)
        throw new Error(
          `the installed "${found.integration}" plugin cannot deliver a spool (it has no transport hook)`,
        );
      const transport = await plugin.transport(found.meta, { env, logger: options.logger });
      const outbox = Outbox.open({
        dir: found.dir,
        integration: found.integration,
        transport,
        logger: options.logger,
        flushIntervalMs: 0,
      });
      try {
        const report = await outbox.drain({ deadlineMs: options.deadlineMs ?? NO_DEADLINE_MS });
        Object.assign(result, {
          delivered: report.delivered,
          pending: report.pending,
          rejected: report.rejected,
        });
        if (report.pending > 0) result.error = report.reason;
      } finally {
        await outbox.close();
      }
    } catch (error) {
      result.error = redactText(error instanceof Error ? error.message : String(error));
    }
  }
  return results;
}

type PluginFinder = (integration: string) => Promise<TrainkitPlugin>;

async function pluginFinder(
  given: readonly TrainkitPlugin[],
  cwd: string,
  env: Record<string, string | undefined>,
  logger: Logger,
): Promise<PluginFinder> {
  const fromEnv = await loadFromEnv(env.TRAINKIT_PLUGINS, cwd);
  const candidates = installedCandidates({ cwd, plugins: [...given, ...fromEnv] }, (m) =>
    logger.warn(m),
  );
  return async (integration) => {
    const candidate = candidates.find((c) => c.name === integration);
    if (candidate) return candidate.load();
    const install = FIRST_PARTY[integration];
    throw new Error(
      `no "${integration}" plugin is installed in ${cwd}` +
        (install
          ? `: run \`npm install ${install}\` there, or run trainkit sync from your application's folder`
          : ""),
    );
  };
}

/** The command: prints one line per spool; exit code 1 when anything is left. */
export async function syncCommand(argv: readonly string[]): Promise<number> {
  let outputDir: string | undefined;
  // A tracker that stays down must not keep the command running forever.
  let deadlineMs = DEFAULT_DEADLINE_S * 1000;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--deadline") {
      const seconds = Number(argv[++i]);
      if (!Number.isFinite(seconds) || seconds < 0) {
        console.error(
          "trainkit sync: --deadline needs a number of seconds (0 for no deadline), e.g. --deadline 60.",
        );
        return 2;
      }
      deadlineMs = seconds === 0 ? NO_DEADLINE_MS : seconds * 1000;
    } else if (outputDir === undefined && !arg.startsWith("-")) outputDir = arg;
    else {
      console.error(`trainkit sync: unexpected argument "${arg}".\n\n${SYNC_USAGE}`);
      return 2;
    }
  }
  if (outputDir === undefined) {
    console.error(`trainkit sync: which outputDir?\n\n${SYNC_USAGE}`);
    return 2;
  }
  const logger: Logger = {
    info: (m) => console.log(`[trainkit] ${redactText(m)}`),
    warn: (m) => console.error(`[trainkit] ${redactText(m)}`),
  };
  let results: SyncResult[];
  try {
    results = await syncOutputDir({ outputDir, deadlineMs, logger });
  } catch (error) {
    console.error(`trainkit sync: ${redactText((error as Error).message)}`);
    return 1;
  }
  if (results.length === 0) {
    console.log(`Nothing to deliver: no records are waiting under ${resolve(outputDir)}.`);
    return 0;
  }
  for (const r of results) {
    const what = `${r.outbox.integration} ${r.outbox.stream}: delivered ${r.delivered}, rejected ${r.rejected}, left ${r.pending}`;
    console.log(r.error ? `${what} (${r.error})` : what);
  }
  return results.some((r) => r.pending > 0) ? 1 : 0;
}

const DEFAULT_DEADLINE_S = 300;
/** setTimeout's largest delay (~24.8 days). */
const NO_DEADLINE_MS = 2 ** 31 - 1;

export const SYNC_USAGE = `Usage: trainkit sync <outputDir> [--deadline <seconds>]

Delivers the records that training runs left undelivered in <outputDir>/.trainkit/outbox
(a tracker was down or slow at the end of training). Secrets (tokens, passwords) come from the
same environment variables the run used. Run it from your application's folder, so the
integrations' packages are found. Each spool gets --deadline seconds (default ${DEFAULT_DEADLINE_S}; 0 for
none); what is left stays for the next sync. Exit code 0 when everything was delivered.`;
