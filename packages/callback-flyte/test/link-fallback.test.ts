// Where hard links fail (here: every link throws EXDEV, as across file systems), onSave copies
// no bytes inside the training step: after the first failed link the snapshot is a copy made
// in the background queue, and links are not tried again.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test, vi } from "vitest";
import { CheckpointSync } from "../src/checkpoint-sync.js";
import { fileStorage } from "../src/file-storage.js";
import { readPrefix, readTree } from "./helpers.js";

vi.mock("node:fs", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs")>();
  const linkSync = vi.fn(() => {
    throw Object.assign(new Error("EXDEV: cross-device link not permitted, link"), {
      code: "EXDEV",
    });
  });
  const copyFileSync = vi.fn(actual.copyFileSync);
  return { ...actual, default: { ...actual, linkSync, copyFileSync }, linkSync, copyFileSync };
});

const work = mkdtempSync(join(tmpdir(), "trainkit-flyte-links-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function checkpoint(step: number): string {
  const dir = join(work, "out", `checkpoint-${step}`);
  mkdirSync(join(dir, "model"), { recursive: true });
  writeFileSync(join(dir, "trainer_state.json"), JSON.stringify({ global_step: step }));
  writeFileSync(join(dir, "model", "weights.bin"), Buffer.alloc(4096, step));
  return dir;
}

describe("a file system without hard links", () => {
  test("the snapshot is copied in the background, not in add()", async () => {
    const stagingDir = join(work, "out", ".trainkit", "flyte");
    const destination = join(work, "prefix");
    const errors: unknown[] = [];
    const sync = new CheckpointSync({
      storage: fileStorage,
      destination,
      stagingDir,
      onError: (error) => errors.push(error),
    });
    const linkSync = vi.mocked(fs.linkSync);

    sync.add(checkpoint(1), 1);
    // The first link failed: no file was copied synchronously, nothing is staged yet.
    expect(linkSync).toHaveBeenCalledTimes(1);
    expect(sync.linking).toBe(false);
    expect(vi.mocked(fs.copyFileSync)).not.toHaveBeenCalled();
    expect(readTree(stagingDir).size).toBe(0);
    await sync.drain();
    expect([...readPrefix(destination)]).toEqual([...readTree(join(work, "out", "checkpoint-1"))]);

    // Later saves do not try links again, and still copy nothing in add().
    sync.add(checkpoint(2), 2);
    expect(linkSync).toHaveBeenCalledTimes(1);
    expect(readTree(stagingDir).size).toBe(0);
    await sync.drain();
    expect([...readPrefix(destination)]).toEqual([...readTree(join(work, "out", "checkpoint-2"))]);

    expect(errors).toEqual([]);
    expect(sync.totals).toMatchObject({ saved: 2, copied: 2, failed: 0, lastCopiedStep: 2 });
    expect(readdirSync(stagingDir)).toEqual([]); // background snapshots are removed too
  });

  test("a checkpoint removed before its background copy: reported, training unaffected", async () => {
    const errors: unknown[] = [];
    const sync = new CheckpointSync({
      storage: fileStorage,
      destination: join(work, "prefix-2"),
      stagingDir: join(work, "out", ".trainkit", "flyte-2"),
      onError: (error) => errors.push(error),
    });
    const dir = checkpoint(3);
    sync.add(dir, 3);
    rmSync(dir, { recursive: true, force: true }); // rotation, before the queue runs
    await sync.drain();
    expect(errors).toHaveLength(1);
    expect(sync.totals).toMatchObject({ saved: 1, copied: 0, failed: 1 });
  });
});
