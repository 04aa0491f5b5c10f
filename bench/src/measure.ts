/** Shared timing helpers: interleaved rounds, medians, results written to bench/results. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nanoseconds per call of `run(iterations)`, one number per round. */
export function timeRounds(
  variants: Record<string, (iterations: number) => void>,
  { iterations, rounds, warmup = 2 }: { iterations: number; rounds: number; warmup?: number },
): Record<string, number[]> {
  const results: Record<string, number[]> = {};
  for (const name of Object.keys(variants)) results[name] = [];
  // Rounds interleave the variants so that machine noise hits them alike.
  for (let round = -warmup; round < rounds; round++) {
    for (const [name, run] of Object.entries(variants)) {
      const start = process.hrtime.bigint();
      run(iterations);
      const ns = Number(process.hrtime.bigint() - start) / iterations;
      if (round >= 0) results[name]!.push(ns);
    }
  }
  return results;
}

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "..", "results");

export function writeResult(name: string, data: unknown): string {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

export function machineInfo() {
  return { node: process.version, platform: `${process.platform}-${process.arch}` };
}
