// What the estimator reads from the machine, behind one interface so that tests (and unusual
// platforms) can give their own: the clock, the CPU's model, count, sockets and time counters,
// memory, and this process' CPU time and RSS. The defaults read Linux's /proc like psutil does.
import { readFile } from "node:fs/promises";
import * as os from "node:os";
import type { CpuTimes } from "./hardware/cpu-load.js";

export interface Clock {
  /** Monotonic milliseconds (durations). */
  now(): number;
  /** Wall-clock time (the CSV's timestamp). */
  date(): Date;
}

export interface SystemProbes {
  /** CPU model name as the OS reports it (codecarbon: cpuinfo's brand_raw), or undefined. */
  cpuModel(): string | undefined;
  /** Logical CPUs (psutil.cpu_count()). */
  cpuCount(): number;
  /** Physical CPU packages (codecarbon: lscpu's "Socket(s)"). */
  cpuSockets(): Promise<number>;
  /** Machine-wide busy and total CPU time so far (psutil.cpu_times()), if readable. */
  cpuTimes(): Promise<CpuTimes | undefined>;
  /** CPU seconds (user + system) this process has used. */
  processCpuSeconds(): number;
  /** Bytes of RAM in the machine. */
  totalMemoryBytes(): number;
  /** Bytes of RAM available (psutil: MemAvailable). */
  availableMemoryBytes(): number;
  /** Resident set size of this process, bytes. */
  processRssBytes(): number;
  /** The machine architecture, e.g. "x86_64" or "aarch64" (Python's platform.machine()). */
  machine(): string;
  /** The `os` column: Python's platform.platform() format where it can be reproduced. */
  osDescription(): string;
}

export const systemClock: Clock = { now: () => performance.now(), date: () => new Date() };

/** Reads the real machine. */
export const nodeSystem: SystemProbes = {
  cpuModel: () => os.cpus()[0]?.model.trim() || undefined,
  cpuCount: () => os.cpus().length || os.availableParallelism(),
  cpuSockets,
  cpuTimes,
  processCpuSeconds: () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  },
  totalMemoryBytes: () => os.totalmem(),
  availableMemoryBytes: () => os.freemem(),
  processRssBytes: () => process.memoryUsage.rss(),
  machine: () => os.machine(),
  osDescription,
};

/**
 * /proc/stat's first line, as psutil reads it: total = every field but guest and guest_nice
 * (already in user and nice), busy = total − idle − iowait. Elsewhere, os.cpus()' sums.
 */
async function cpuTimes(): Promise<CpuTimes | undefined> {
  if (process.platform === "linux") {
    try {
      const line = (await readFile("/proc/stat", "utf8")).split("\n", 1)[0] ?? "";
      const f = line.trim().split(/\s+/).slice(1).map(Number);
      if (f.length >= 4 && f.every(Number.isFinite)) {
        const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0] = f;
        const [irq = 0, softirq = 0, steal = 0] = f.slice(5);
        // guest and guest_nice (fields 9-10) are already counted in user and nice
        const total = user + nice + system + idle + iowait + irq + softirq + steal;
        return { busy: total - idle - iowait, total };
      }
    } catch {
      // fall through to os.cpus()
    }
  }
  const cpus = os.cpus();
  if (cpus.length === 0) return undefined;
  let busy = 0;
  let total = 0;
  for (const { times } of cpus) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

/** Distinct "physical id" values of /proc/cpuinfo (what lscpu counts as sockets), at least 1. */
async function cpuSockets(): Promise<number> {
  try {
    const text = await readFile("/proc/cpuinfo", "utf8");
    const ids = new Set([...text.matchAll(/^physical id\s*:\s*(\d+)/gm)].map((m) => m[1]));
    return Math.max(ids.size, 1);
  } catch {
    return 1;
  }
}

/** platform.platform(): `Linux-<release>-<machine>-with-glibc<version>` on glibc Linux. */
function osDescription(): string {
  const base = `${os.type()}-${os.release()}-${os.machine()}`;
  if (process.platform !== "linux") return base;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } })
    ?.header;
  const glibc = header?.glibcVersionRuntime;
  return glibc ? `${base}-with-glibc${glibc}` : base;
}
