// RAM power, codecarbon 3's model (external/ram.py): guess the DIMM count from the memory size,
// give each DIMM 5 W (x86) or 1.5 W (ARM) with a falling share past 4, 8 and 16 DIMMs, and never
// less than 10 W (x86) or 3 W (ARM).

/** codecarbon's DIMM-count guess for `totalGb` GiB of memory. */
export function estimateDimmCount(totalGb: number): number {
  if (totalGb <= 2) return 1;
  if (totalGb <= 16) return 2;
  if (totalGb <= 64) return 4;
  if (totalGb <= 128) return 8;
  // Large servers: the largest common DIMM size that still gives at least 8 DIMMs, at most 32.
  for (const size of [128, 64, 32, 16, 8, 4])
    if (size <= totalGb / 8) return Math.min(Math.ceil(totalGb / size), 32);
  return 8;
}

/** Estimated RAM power in W for `memoryGb` GiB (machine total, or the process' RSS). */
export function ramPowerWatts(memoryGb: number, arm: boolean): number {
  const dimms = estimateDimmCount(memoryGb);
  const perDimm = arm ? 1.5 : 5;
  const minimum = arm ? 3 : perDimm * 2;
  let watts: number;
  if (dimms <= 4) watts = perDimm * dimms;
  else if (dimms <= 8) watts = perDimm * 4 + perDimm * 0.9 * (dimms - 4);
  else if (dimms <= 16) watts = perDimm * 4 + perDimm * 0.9 * 4 + perDimm * 0.8 * (dimms - 8);
  else watts = perDimm * 4 + perDimm * 0.9 * 4 + perDimm * 0.8 * 8 + perDimm * 0.7 * (dimms - 16);
  return Math.max(minimum, watts);
}

/** codecarbon's ARM test: the machine name contains "arm" or "aarch". */
export function isArmMachine(machine: string): boolean {
  const m = machine.toLowerCase();
  return m.includes("arm") || m.includes("aarch");
}
