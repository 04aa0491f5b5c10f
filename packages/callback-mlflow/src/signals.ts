/**
 * The process-wide lifecycle of the MLflow family's callbacks: one SIGINT and one SIGTERM
 * listener for every open run (not one per callback), one `beforeExit` listener for records
 * logged after training. (What a spool still holds at exit is reported by the outbox itself.)
 *
 * Signals: while at least one finisher is registered, one listener per signal is installed; on
 * a signal every registered finisher runs concurrently (each ends its run KILLED and drains
 * within its own deadline). Then the signal is raised again only when nobody else listens for
 * it (default termination); an application that has its own listener decides itself.
 */
/** Ends a run on a signal (KILLED) and drains it within its own deadline. */
export type SignalFinisher = (signal: NodeJS.Signals) => Promise<void>;

/** Delivers what was logged after training, when the event loop empties. */
export type ExitFinisher = () => Promise<void>;

const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM"];

const signalFinishers = new Set<SignalFinisher>();
let signalsInstalled = false;
let handling: NodeJS.Signals | undefined;

function onProcessSignal(signal: NodeJS.Signals): void {
  void handleSignal(signal);
}

function installSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const signal of SIGNALS) process.on(signal, onProcessSignal);
}

function removeSignals(): void {
  if (!signalsInstalled) return;
  signalsInstalled = false;
  for (const signal of SIGNALS) process.removeListener(signal, onProcessSignal);
}

/** Whether someone other than this module listens for `signal`. */
function othersListen(signal: NodeJS.Signals): boolean {
  return process.listeners(signal).some((listener) => listener !== onProcessSignal);
}

async function handleSignal(signal: NodeJS.Signals): Promise<void> {
  if (handling !== undefined) {
    // A second signal while draining: stop waiting.
    removeSignals();
    if (!othersListen(signal)) process.kill(process.pid, signal);
    return;
  }
  handling = signal;
  const finishers = [...signalFinishers];
  signalFinishers.clear();
  try {
    await Promise.allSettled(finishers.map((finish) => finish(signal)));
  } finally {
    handling = undefined;
    if (signalFinishers.size === 0) removeSignals();
    // Default termination goes on, unless the application handles the signal itself.
    if (!othersListen(signal)) {
      removeSignals();
      process.kill(process.pid, signal);
    }
  }
}

/** Registers a run to end on SIGINT/SIGTERM (installs the listeners with the first one). */
export function registerSignalFinisher(finish: SignalFinisher): void {
  signalFinishers.add(finish);
  installSignals();
}

/** Unregisters it (the listeners go with the last one). */
export function unregisterSignalFinisher(finish: SignalFinisher): void {
  signalFinishers.delete(finish);
  if (signalFinishers.size === 0 && handling === undefined) removeSignals();
}

/** How many finishers are registered (tests). */
export function signalFinisherCount(): number {
  return signalFinishers.size;
}

const exitFinishers = new Set<ExitFinisher>();
let beforeExitInstalled = false;

function onBeforeExit(): void {
  const finishers = [...exitFinishers];
  exitFinishers.clear();
  process.removeListener("beforeExit", onBeforeExit);
  beforeExitInstalled = false;
  for (const finish of finishers) void finish().catch(() => undefined);
}

/** Runs `finish` when the event loop empties (records logged after training). */
export function registerExitFinisher(finish: ExitFinisher): void {
  exitFinishers.add(finish);
  if (beforeExitInstalled) return;
  beforeExitInstalled = true;
  process.on("beforeExit", onBeforeExit);
}

export function unregisterExitFinisher(finish: ExitFinisher): void {
  exitFinishers.delete(finish);
  if (exitFinishers.size === 0 && beforeExitInstalled) {
    beforeExitInstalled = false;
    process.removeListener("beforeExit", onBeforeExit);
  }
}
