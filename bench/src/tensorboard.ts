/**
 * TensorBoard event-file writing: 200,000 scalars (20 tags × 10,000 steps) written and closed
 * with @trainkit/callback-tensorboard's EventFileWriter and with Python tensorboardX's
 * SummaryWriter (add_scalar loop + close, timed inside Python), interleaved, median of 3 rounds
 * each. Reports scalars/s, the ratio, and the bytes each writes per scalar.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
// The package's build (pnpm bench builds first); bench/package.json need not depend on it.
import { EventFileWriter } from "@trainkit/callback-tensorboard";
import { machineInfo, median, writeResult } from "./measure.js";

const TAGS = 20;
const STEPS = 10_000;
const SCALARS = TAGS * STEPS;
const ROUNDS = 3;
const TARGET_RATIO = 20;

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const python = join(root, ".venv", "bin", "python");

/** The same values in both writers: deterministic, not all equal, not trivially compressible. */
const value = (step: number, tag: number) => ((step * 7919 + tag * 104729) % 100_003) / 100_003;

const PYTHON = `
import json, os, sys, time
from tensorboardX import SummaryWriter
logdir, tags, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = ["train/metric_%02d" % t for t in range(tags)]
writer = SummaryWriter(logdir)
start = time.perf_counter()
for step in range(steps):
    for t in range(tags):
        writer.add_scalar(names[t], ((step * 7919 + t * 104729) % 100003) / 100003, step)
writer.close()
seconds = time.perf_counter() - start
files = [os.path.join(logdir, f) for f in os.listdir(logdir) if "tfevents" in f]
print(json.dumps({"seconds": seconds, "bytes": sum(os.path.getsize(f) for f in files)}))
`;

function eventBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.includes("tfevents"))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

function runOurs(dir: string): { seconds: number; bytes: number } {
  const names = Array.from(
    { length: TAGS },
    (_, t) => `train/metric_${String(t).padStart(2, "0")}`,
  );
  const writer = new EventFileWriter(dir, { onWarning: () => {} });
  const start = process.hrtime.bigint();
  for (let step = 0; step < STEPS; step++)
    for (let t = 0; t < TAGS; t++) writer.addScalar(names[t]!, value(step, t), step);
  writer.close();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { seconds, bytes: eventBytes(dir) };
}

function runTensorBoardX(dir: string): { seconds: number; bytes: number } {
  if (!existsSync(python))
    throw new Error(
      `${python} is missing: run \`node tools/python/ensure-venv.mjs\` (pnpm bench does).`,
    );
  const out = execFileSync(python, ["-c", PYTHON, dir, String(TAGS), String(STEPS)], {
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").pop()!) as { seconds: number; bytes: number };
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

export function benchTensorBoard() {
  const work = mkdtempSync(join(tmpdir(), "trainkit-bench-tb-"));
  const ours: { seconds: number; bytes: number }[] = [];
  const tbx: { seconds: number; bytes: number }[] = [];
  try {
    runOurs(join(work, "warmup")); // JIT warm-up, not counted
    for (let round = 0; round < ROUNDS; round++) {
      ours.push(runOurs(join(work, `ours-${round}`)));
      tbx.push(runTensorBoardX(join(work, `tensorboardx-${round}`)));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const oursRate = SCALARS / median(ours.map((r) => r.seconds));
  const tbxRate = SCALARS / median(tbx.map((r) => r.seconds));
  const oursBytes = ours[0]!.bytes / SCALARS;
  const tbxBytes = tbx[0]!.bytes / SCALARS;
  const ratio = oursRate / tbxRate;
  const summary = {
    benchmark: "TensorBoard event files: 200,000 scalars (20 tags x 10,000 steps), write + close",
    ...machineInfo(),
    rounds: ROUNDS,
    scalars: SCALARS,
    ours: {
      scalars_per_second: Math.round(oursRate),
      seconds: ours.map((r) => round4(r.seconds)),
      bytes_per_scalar: round2(oursBytes),
      file_bytes: ours[0]!.bytes,
    },
    tensorboardx: {
      version: "2.6.5",
      scalars_per_second: Math.round(tbxRate),
      seconds: tbx.map((r) => round4(r.seconds)),
      bytes_per_scalar: round2(tbxBytes),
      file_bytes: tbx[0]!.bytes,
    },
    ratio_vs_tensorboardx: round2(ratio),
    bytes_ratio_vs_tensorboardx: round2(oursBytes / tbxBytes),
    targets: { min_ratio: TARGET_RATIO, max_bytes_ratio: 1 },
    met: { speed: ratio >= TARGET_RATIO, size: oursBytes <= tbxBytes },
  };
  console.log(
    `\nTensorBoard event files, ${SCALARS.toLocaleString("en-US")} scalars (${TAGS} tags x ${STEPS.toLocaleString("en-US")} steps), write + close, median of ${ROUNDS} rounds`,
  );
  console.log(
    `  EventFileWriter ${summary.ours.scalars_per_second.toLocaleString("en-US")} scalars/s | tensorboardX ${summary.tensorboardx.scalars_per_second.toLocaleString("en-US")} scalars/s -> ${summary.ratio_vs_tensorboardx}x (target >= ${TARGET_RATIO}x)`,
  );
  console.log(
    `  bytes per scalar: EventFileWriter ${summary.ours.bytes_per_scalar} | tensorboardX ${summary.tensorboardx.bytes_per_scalar} (target: ours no larger)`,
  );
  console.log(`  written to ${writeResult("tensorboard", summary)}`);
  return summary;
}
