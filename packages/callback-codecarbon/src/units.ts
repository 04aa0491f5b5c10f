// codecarbon's unit constants (core/units.py), kept as written there so that the same inputs give
// the same kWh: its joule-to-kWh factor is the rounded 2.77778e-7, not 1 / 3.6e6.

/** kWh per joule, as codecarbon rounds it. */
export const JOULES_TO_KWH = 2.77778e-7;
/** kg/kWh per lbs/MWh (the unit of `usa_emissions.json`). */
export const LBS_MWH_TO_KG_KWH = 0.00045359237;
/** Bytes per GiB: codecarbon's "GB" is 1024^3 bytes. */
export const BYTES_PER_GB = 1024 ** 3;

export function microjoulesToKWh(uj: number): number {
  return uj * 1e-6 * JOULES_TO_KWH;
}

export function millijoulesToKWh(mj: number): number {
  return mj * 1e-3 * JOULES_TO_KWH;
}

/** Energy of `watts` held for `seconds`, in kWh (codecarbon: kW × hours). */
export function wattsForSecondsToKWh(watts: number, seconds: number): number {
  return (watts / 1000) * (seconds / 3600);
}

/** Average power of `kWh` spent over `seconds`, in W; 0 for an empty interval. */
export function kWhOverSecondsToWatts(kWh: number, seconds: number): number {
  return seconds > 0 ? (kWh / (seconds / 3600)) * 1000 : 0;
}
