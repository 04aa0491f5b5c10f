// No MLflow server outlives the process that started it: neither when that process ends without
// calling stop() (the exit hook) nor when it is SIGKILLed (the watchdog in the server's group).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { resolve } from "node:path";
import { expect, test } from "vitest";

const owner = resolve(import.meta.dirname, "fixtures/mlflow/server-owner.ts");
const repoRoot = resolve(import.meta.dirname, "../../..");

/** Starts the owner process; resolves with the server it started and the owner's exit. */
async function startOwner(mode: "exit" | "hang") {
  const child = spawn(process.execPath, ["--import", "tsx", owner, mode], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const line = await new Promise<string>((done, fail) => {
    createInterface({ input: child.stdout }).once("line", done);
    void exited.then(() => fail(new Error(`owner exited before starting a server:\n${stderr}`)));
  });
  return { child, exited, server: JSON.parse(line) as { port: number; dir: string } };
}

async function serverGoneWithin(port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(500) });
    } catch {
      return true;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  return false;
}

test.concurrent(
  "ending without stop(): the exit hook kills the server and removes its dir",
  async () => {
    const { exited, server } = await startOwner("exit");
    expect(await exited).toBe(0);
    expect(await serverGoneWithin(server.port, 3_000)).toBe(true);
    expect(existsSync(server.dir)).toBe(false);
  },
  60_000,
);

test.concurrent(
  "SIGKILLed owner: the watchdog kills the server and removes its dir",
  async () => {
    const { child, exited, server } = await startOwner("hang");
    const health = await fetch(`http://127.0.0.1:${server.port}/health`);
    expect(health.status).toBe(200);
    child.kill("SIGKILL");
    await exited;
    expect(await serverGoneWithin(server.port, 5_000)).toBe(true);
    expect(existsSync(server.dir)).toBe(false);
  },
  60_000,
);
