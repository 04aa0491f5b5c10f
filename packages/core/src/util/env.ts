/** HF's truthy environment value: upper-cased, it is one of 1, ON, YES, TRUE. */
export function isTruthyEnv(value: string | undefined): boolean {
  return value !== undefined && ["1", "ON", "YES", "TRUE"].includes(value.toUpperCase());
}
