/**
 * HF's ExportableState protocol: a callback that can be saved into a checkpoint implements
 * `state()`, and its class has a static `fromState()` that rebuilds it. The record keeps
 * HF's on-disk shape: snake_case constructor `args`, and `attributes` to set afterwards.
 */
export interface StateRecord {
  args: Record<string, unknown>;
  attributes: Record<string, unknown>;
}

export interface ExportableState {
  state(): StateRecord;
}

export interface ExportableStateClass<T extends ExportableState = ExportableState> {
  name: string;
  fromState(record: StateRecord): T;
}

/** What `stateful_callbacks` holds: one record per class name, a list when a class appears twice. */
export type StatefulCallbacks = Record<string, StateRecord | StateRecord[]>;

export function isExportableState(value: unknown): value is ExportableState {
  if (typeof value !== "object" || value === null) return false;
  const ctor = (value as { constructor?: unknown }).constructor as { fromState?: unknown };
  return (
    typeof (value as { state?: unknown }).state === "function" &&
    typeof ctor?.fromState === "function"
  );
}

/** Builds `stateful_callbacks` from the callbacks that export state, by class name. */
export function collectStatefulCallbacks(callbacks: Iterable<unknown>): StatefulCallbacks {
  const collected: StatefulCallbacks = {};
  for (const callback of callbacks) {
    if (!isExportableState(callback)) continue;
    const name = callback.constructor.name;
    const record = callback.state();
    const existing = collected[name];
    if (existing === undefined) collected[name] = record;
    else if (Array.isArray(existing)) existing.push(record);
    else collected[name] = [existing, record];
  }
  return collected;
}
