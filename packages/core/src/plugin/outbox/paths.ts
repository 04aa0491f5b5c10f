import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Spool } from "./spool.js";

const OUTBOX_ROOT = join(".trainkit", "outbox");

/** `<outputDir>/.trainkit/outbox/<integration>/<stream>`: one spool per tracker run. */
export function outboxDir(outputDir: string, integration: string, stream: string): string {
  if (!/^[A-Za-z0-9][\w.-]*$/.test(stream))
    throw new Error(
      `Outbox stream id ${JSON.stringify(stream)} must be letters, digits, "_", "-" or ".".`,
    );
  return join(resolve(outputDir), OUTBOX_ROOT, integration, stream);
}

/** A fresh, sortable stream id: UTC time plus randomness, e.g. 20261128-203011-ab12cd. */
export function newStreamId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}

/** The outputDir of a spool folder laid out by outboxDir, else undefined. */
export function outputDirOf(dir: string): string | undefined {
  const outbox = dirname(dirname(resolve(dir)));
  if (basename(outbox) !== "outbox" || basename(dirname(outbox)) !== ".trainkit") return undefined;
  return dirname(dirname(outbox));
}

/** A spool folder found under an outputDir. */
export interface FoundOutbox {
  integration: string;
  stream: string;
  dir: string;
  meta: Record<string, unknown>;
  pending: number;
}

/** Every spool under `<outputDir>/.trainkit/outbox`, oldest stream first. */
export function listOutboxes(outputDir: string): FoundOutbox[] {
  const root = join(resolve(outputDir), OUTBOX_ROOT);
  if (!existsSync(root)) return [];
  const found: FoundOutbox[] = [];
  for (const integration of readdirSync(root).sort()) {
    const integrationDir = join(root, integration);
    let streams: string[];
    try {
      streams = readdirSync(integrationDir).sort();
    } catch {
      continue;
    }
    for (const stream of streams) {
      const dir = join(integrationDir, stream);
      const metaPath = join(dir, "meta.json");
      if (!existsSync(metaPath)) continue;
      let meta: Record<string, unknown> = {};
      try {
        meta = JSON.parse(readFileSync(metaPath, "utf8")) as Record<string, unknown>;
      } catch {
        // unreadable meta: still listed, so sync can say so
      }
      try {
        const spool = new Spool(dir, { readOnly: true });
        found.push({ integration, stream, dir, meta, pending: spool.pending });
        spool.close();
      } catch {
        // An unreadable stream folder must not hide the others; sync reports what it can open.
      }
    }
  }
  return found;
}
