// Small helpers for plugin authors' own tests: a logger that records, a DeliveryContext for
// driving an outbox transport by hand, and a recursive file listing.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { DeliveryContext } from "@trainkit/core/plugin";

export interface CapturedLogger {
  logger: { info(message: string): void; warn(message: string): void };
  infos: string[];
  warnings: string[];
}

/** A logger for `setLogger` or a plugin context that keeps every message. */
export function captureLogger(): CapturedLogger {
  const infos: string[] = [];
  const warnings: string[] = [];
  return {
    logger: { info: (m) => void infos.push(m), warn: (m) => void warnings.push(m) },
    infos,
    warnings,
  };
}

/**
 * A DeliveryContext whose meta lives in memory (what the outbox does with meta.json, including
 * the JSON round trip), for calling a transport's deliver() directly.
 */
export function deliveryContext(
  meta: Record<string, unknown> = {},
  logger = captureLogger().logger,
): DeliveryContext & { current(): Record<string, unknown> } {
  let current = { ...meta };
  const controller = new AbortController();
  return {
    get meta() {
      return current;
    },
    saveMeta(patch: Record<string, unknown>) {
      current = JSON.parse(JSON.stringify({ ...current, ...patch })) as Record<string, unknown>;
    },
    signal: controller.signal,
    logger,
    current: () => current,
  };
}

/** Every file under `dir`, recursively (absolute paths, sorted); [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out.sort();
}
