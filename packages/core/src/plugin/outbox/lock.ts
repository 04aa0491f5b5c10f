import { hostname } from "node:os";
import { mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync, closeSync } from "node:fs";
import { join } from "node:path";

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number;
  host: string;
}

const openDirs = new Set<string>();
/** A lock file that is empty or unreadable this long is left over from a crash while writing it. */
const UNREADABLE_STALE_MS = 10_000;

/**
 * One open outbox per spool folder: in this process (a set of resolved paths) and across
 * processes (a `lock` file created exclusively, holding the owner's pid and host). A lock of a
 * process on this host that is gone is taken over; one from another host is never guessed at.
 */
export function acquireLock(dir: string): void {
  if (openDirs.has(dir))
    throw new Error(`The outbox ${dir} is already open in this process; close it first.`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "lock");
  const mine = JSON.stringify({ pid: process.pid, host: hostname() });
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = readHolder(path);
      if (holder === "fresh")
        throw new Error(`The outbox ${dir} is being opened by another process; try again.`, {
          cause: error,
        });
      if (holder !== "stale") throw inUse(dir, path, holder);
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, mine);
    } finally {
      closeSync(fd);
    }
    openDirs.add(dir);
    return;
  }
  throw new Error(`The outbox ${dir} is contended by other processes; try again.`);
}

export function releaseLock(dir: string): void {
  openDirs.delete(dir);
  const path = join(dir, "lock");
  try {
    const holder = JSON.parse(readFileSync(path, "utf8")) as Partial<LockHolder>;
    if (holder.pid === process.pid && holder.host === hostname()) rmSync(path, { force: true });
  } catch {
    // already gone, or not ours
  }
}

/** The live holder, "stale" when it can be taken over, "fresh" while another is writing it. */
function readHolder(path: string): LockHolder | "stale" | "fresh" {
  let holder: Partial<LockHolder> | undefined;
  try {
    holder = JSON.parse(readFileSync(path, "utf8")) as Partial<LockHolder>;
  } catch {
    holder = undefined;
  }
  if (!holder || !Number.isInteger(holder.pid) || (holder.pid ?? 0) <= 0) {
    try {
      return Date.now() - statSync(path).mtimeMs > UNREADABLE_STALE_MS ? "stale" : "fresh";
    } catch {
      return "stale";
    }
  }
  const pid = holder.pid!;
  const host = typeof holder.host === "string" ? holder.host : hostname();
  if (host !== hostname()) return { pid, host };
  if (pid === process.pid) return "stale"; // ours from an outbox this process did not close
  return isAlive(pid) ? { pid, host } : "stale";
}

function inUse(dir: string, path: string, holder: LockHolder): Error {
  const where = holder.host === hostname() ? "" : ` on host ${holder.host}`;
  return new Error(
    `The outbox ${dir} is in use by process ${holder.pid}${where} (a training run or \`trainkit sync\`). Wait for it to finish, or stop it; if that process is gone, delete ${path} and try again.`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
