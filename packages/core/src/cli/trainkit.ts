#!/usr/bin/env node
/**
 * The `trainkit` command. `trainkit env`: Node, the TensorFlow.js backend, trainkit and plugin
 * versions, every discovered plugin with its availability and the reason, and what
 * `reportTo: "all"` would select now.
 */
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { TrainingArguments } from "../args/training-arguments.js";
import { selectPlugins, installedCandidates } from "../plugin/select.js";
import { findApplicationManifest } from "../plugin/discovery.js";
import { backendReason, selectBackend } from "../trainer/backend.js";
import { setLogger, type Logger } from "../util/logger.js";
import { redactText } from "../util/redact.js";
import { SYNC_USAGE, syncCommand } from "./sync.js";

const USAGE = `Usage: trainkit <command>

Commands:
  env                  what this machine and application give trainkit: versions, backend, plugins
  sync <outputDir>     deliver what trackers left undelivered in <outputDir>/.trainkit/outbox`;

async function env(): Promise<void> {
  // Info lines are shown as data below; warnings (a clash, an unreadable manifest) are listed.
  const warnings: string[] = [];
  const quiet: Logger = { info: () => {}, warn: (m) => warnings.push(redactText(m)) };
  setLogger(quiet);
  const own = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  const lines: string[] = [];
  lines.push(`Node.js          ${process.version} (${process.platform}-${process.arch})`);
  lines.push(`@trainkit/core   ${own.version}`);
  lines.push(`TensorFlow.js    ${tf.version.tfjs}`);
  try {
    lines.push(`backend          ${await selectBackend()} (${backendReason() ?? ""})`);
  } catch (error) {
    lines.push(`backend          unavailable: ${(error as Error).message}`);
  }
  const cwd = process.cwd();
  lines.push(
    `application      ${findApplicationManifest(cwd) ?? "no package.json found above " + cwd}`,
  );
  const context = {
    args: new TrainingArguments({ reportTo: "all" }),
    env: process.env,
    logger: quiet,
  };
  const candidates = installedCandidates({ cwd });
  lines.push("", `plugins          ${candidates.length === 0 ? "none installed" : ""}`.trimEnd());
  for (const candidate of candidates) {
    let status: string;
    try {
      const availability = (await candidate.load()).isAvailable(context);
      status = availability.available
        ? "available"
        : `not available: ${redactText(availability.reason)}`;
    } catch (error) {
      status = `cannot load: ${redactText((error as Error).message)}`;
    }
    lines.push(`  ${candidate.name.padEnd(14)} ${candidate.origin} — ${status}`);
  }
  try {
    const { summary } = await selectPlugins("all", context, { cwd, installed: candidates });
    lines.push("", `reportTo "all"   ${summary}`);
  } catch (error) {
    lines.push("", `reportTo "all"   fails: ${redactText((error as Error).message)}`);
  }
  if (warnings.length > 0) lines.push("", "warnings", ...warnings.map((w) => `  ${w}`));
  console.log(lines.join("\n"));
}

const [command, ...rest] = process.argv.slice(2);
if (command === "env" && rest.length === 0) {
  await env();
} else if (command === "sync") {
  if (rest.includes("--help") || rest.includes("-h")) console.log(SYNC_USAGE);
  else process.exitCode = await syncCommand(rest);
} else if (command === undefined || command === "--help" || command === "-h") {
  console.log(USAGE);
} else {
  console.error(`trainkit: unknown command "${[command, ...rest].join(" ")}".\n\n${USAGE}`);
  process.exitCode = 2;
}
