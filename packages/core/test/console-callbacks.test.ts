import { describe, expect, it } from "vitest";
import {
  formatLogs,
  PrinterCallback,
  ProgressCallback,
  TrainerControl,
  TrainerState,
  TrainingArguments,
  type CallbackContext,
  type Logs,
} from "../src/index.js";
import { BarScreen } from "../src/progress/progress-bar.js";
import { pythonRound } from "../src/util/format-logs.js";

// ---------------------------------------------------------------------------------------------
// Helpers: fake streams, a settable clock, and a tiny terminal that interprets what was written.

interface FakeStream {
  isTTY?: boolean;
  columns?: number;
  chunks: string[];
  write(text: string): boolean;
  readonly text: string;
}

function fakeStream(isTTY: boolean, columns = 100): FakeStream {
  const chunks: string[] = [];
  return {
    ...(isTTY ? { isTTY: true, columns } : { isTTY: false }),
    chunks,
    write(text: string) {
      chunks.push(text);
      return true;
    },
    get text() {
      return chunks.join("");
    },
  };
}

function fakeClock(start = 1_000) {
  const clock = { t: start, now: () => clock.t, advance: (ms: number) => (clock.t += ms) };
  return clock;
}

/**
 * A minimal terminal: printable characters overwrite at the cursor, "\r" goes to column 0,
 * "\n" to the next line (a tty's ONLCR), ESC[K clears to the end of the line, ESC[1A moves up.
 * Any other control sequence is garbage for our purposes and fails the test.
 */
function terminal(text: string, columns = 100): { lines: string[]; row: number; col: number } {
  const lines: string[] = [""];
  let row = 0;
  let col = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === "\r") col = 0;
    else if (char === "\n") {
      row += 1;
      col = 0;
      if (lines.length <= row) lines.push("");
    } else if (char === "\x1b") {
      const match = /^\[(\d*)([A-Za-z])/.exec(text.slice(i + 1));
      if (!match) throw new Error(`bad escape at ${i}: ${JSON.stringify(text.slice(i, i + 8))}`);
      const [csi, count, command] = match;
      const seq = `\x1b${csi}`;
      if (command === "K") lines[row] = lines[row]!.slice(0, col);
      else if (command === "A") row = Math.max(0, row - Number(count || "1"));
      else throw new Error(`unexpected escape ${JSON.stringify(seq)}`);
      i += seq.length - 1;
    } else if (char < " ") {
      throw new Error(`unexpected control character ${char.charCodeAt(0)}`);
    } else {
      if (col >= columns) throw new Error(`line ${row} wrapped past ${columns} columns`);
      const line = lines[row]!.padEnd(col, " ");
      lines[row] = line.slice(0, col) + char + line.slice(col + 1);
      col += 1;
    }
  }
  return { lines, row, col };
}

/** The visible screen with trailing empty lines dropped. */
function screen(stream: FakeStream): string[] {
  const { lines } = terminal(stream.text, stream.columns);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

const args = new TrainingArguments();

function ctxWithLogs(logs: Record<string, unknown>): CallbackContext {
  return { logs: logs as Logs };
}

// ---------------------------------------------------------------------------------------------

describe("formatLogs", () => {
  it("prints a logs dict as Python's print(dict) does", () => {
    expect(
      formatLogs({ loss: 34.2615, grad_norm: 7.78265, learning_rate: 4.375e-5, epoch: 0.375 }),
    ).toBe("{'loss': 34.2615, 'grad_norm': 7.78265, 'learning_rate': 4.375e-05, 'epoch': 0.375}");
  });

  it("keeps float keys as floats (1.0, not 1) and other integers as ints", () => {
    expect(
      formatLogs({
        train_runtime: 1.5,
        train_loss: 24.7904,
        epoch: 2,
        eval_loss: 3,
        learning_rate: 0,
        train_samples_per_second: 160,
        n: 3,
      }),
    ).toBe(
      "{'train_runtime': 1.5, 'train_loss': 24.7904, 'epoch': 2.0, 'eval_loss': 3.0, " +
        "'learning_rate': 0.0, 'train_samples_per_second': 160.0, 'n': 3}",
    );
  });

  it("prints non-finite floats as Python does (nan, inf, -inf)", () => {
    expect(formatLogs({ loss: NaN, grad_norm: Infinity, x: -Infinity })).toBe(
      "{'loss': nan, 'grad_norm': inf, 'x': -inf}",
    );
  });

  it("uses Python's repr for strings, booleans, None and lists", () => {
    // Expected values printed by CPython 3.
    expect(
      formatLogs({ s: "it's", t: "a\"b'c\n\x01é\xa0", ok: true, no: null, list: [1, 2.5] }),
    ).toBe(
      "{'s': \"it's\", 't': 'a\"b\\'c\\n\\x01é\\xa0', 'ok': True, 'no': None, 'list': [1, 2.5]}",
    );
  });

  it("pythonRound rounds like Python's round(x, 2), ties to even", () => {
    const inputs = [0.125, 0.375, 0.625, 0.875, 1.125, 2.675, 1.005, -0.125, 0.3333333, 1.999];
    // [round(x, 2) for x in inputs] in CPython:
    const python = [0.12, 0.38, 0.62, 0.88, 1.12, 2.67, 1.0, -0.12, 0.33, 2.0];
    expect(inputs.map((x) => pythonRound(x, 2))).toEqual(python);
    expect(pythonRound(2.5, 0)).toBe(2);
    expect(pythonRound(3.5, 0)).toBe(4);
  });
});

describe("PrinterCallback", () => {
  it("prints each log as a Python dict line and pops total_flos from the caller's logs", () => {
    const out = fakeStream(false);
    const printer = new PrinterCallback(out);
    const state = new TrainerState({ maxSteps: 16 });
    const logs = {
      train_runtime: 2.25,
      total_flos: 0,
      train_loss: 24.7904,
      epoch: 2,
    };
    printer.onLog(args, state, new TrainerControl(), ctxWithLogs(logs));
    expect(out.chunks).toEqual(["{'train_runtime': 2.25, 'train_loss': 24.7904, 'epoch': 2.0}\n"]);
    expect("total_flos" in logs).toBe(false);
  });

  it("prints the HF trace's first log exactly, epoch unrounded", () => {
    const out = fakeStream(true);
    const printer = new PrinterCallback(out);
    printer.onLog(
      args,
      new TrainerState(),
      new TrainerControl(),
      ctxWithLogs({ loss: 34.2615, grad_norm: 7.78, learning_rate: 4.375e-5, epoch: 0.375 }),
    );
    expect(out.text).toBe(
      "{'loss': 34.2615, 'grad_norm': 7.78, 'learning_rate': 4.375e-05, 'epoch': 0.375}\n",
    );
  });

  it("pops total_flos but prints nothing on a process that is not local zero", () => {
    const out = fakeStream(false);
    const logs = { loss: 1, total_flos: 5 };
    new PrinterCallback(out).onLog(
      args,
      new TrainerState({ isLocalProcessZero: false }),
      new TrainerControl(),
      ctxWithLogs(logs),
    );
    expect(out.chunks).toEqual([]);
    expect(logs).toEqual({ loss: 1 });
  });
});

// ---------------------------------------------------------------------------------------------

/** A training run like HF's case a: 16 steps, logs every 3, evals (2 batches) every 5. */
function runCaseA(callback: ProgressCallback, clock?: ReturnType<typeof fakeClock>) {
  const state = new TrainerState({ maxSteps: 16, numTrainEpochs: 2 });
  const control = new TrainerControl();
  const evalCtx: CallbackContext = { evalDataloader: { length: 2 } };
  const logged: Record<string, unknown>[] = [];
  callback.onTrainBegin(args, state, control, {});
  for (let step = 1; step <= 16; step++) {
    clock?.advance(250);
    state.globalStep = step;
    state.epoch = step / 8;
    callback.onStepEnd(args, state, control, {});
    if (step % 3 === 0) {
      const logs = {
        loss: 10 + step,
        learning_rate: [6.5e-5, 5e-5, 3.5e-5, 2e-5, 5e-6][step / 3 - 1]!,
        epoch: step / 8,
      };
      logged.push({ ...logs });
      callback.onLog(args, state, control, ctxWithLogs(logs));
    }
    if (step % 5 === 0 || step === 16) {
      for (let batch = 0; batch < 2; batch++) {
        clock?.advance(50);
        callback.onPredictionStep(args, state, control, evalCtx);
      }
      const metrics = { eval_loss: 42.4892, eval_runtime: 0.1, epoch: state.epoch };
      logged.push({ ...metrics });
      callback.onLog(args, state, control, ctxWithLogs(metrics));
      callback.onEvaluate(args, state, control, { metrics: metrics as Logs });
    }
  }
  const summary = { train_runtime: 4.2, total_flos: 0, train_loss: 24.7904, epoch: 2 };
  callback.onLog(args, state, control, ctxWithLogs(summary));
  logged.push({ train_runtime: 4.2, train_loss: 24.7904, epoch: 2 });
  callback.onTrainEnd(args, state, control, {});
  return { logged, summary };
}

describe("ProgressCallback when the stream is not a terminal", () => {
  it("prints exactly one line per log, no bars, no \\r or escape codes", () => {
    const out = fakeStream(false);
    const clock = fakeClock();
    const { logged, summary } = runCaseA(new ProgressCallback({ stream: out, now: clock.now }));
    const lines = out.text.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(logged.length);
    expect(out.chunks).toHaveLength(logged.length);
    expect(out.text).not.toContain("\r");
    expect(out.text).not.toContain("\x1b");
    expect(out.text).not.toContain("it/s");
    expect(out.text).not.toContain("|");
    expect(lines[0]).toBe("{'loss': 13.0, 'learning_rate': 6.5e-05, 'epoch': 0.38}");
    // HF rounds with Python's round(): 0.625 -> 0.62.
    expect(lines[1]).toBe("{'eval_loss': 42.4892, 'eval_runtime': 0.1, 'epoch': 0.62}");
    expect(lines.at(-1)).toBe("{'train_runtime': 4.2, 'train_loss': 24.7904, 'epoch': 2.0}");
    // ProgressCallback shows the logs without total_flos but does not change the caller's dict.
    expect(summary.total_flos).toBe(0);
  });

  it("replaces strings longer than maxStrLen", () => {
    const out = fakeStream(false);
    const callback = new ProgressCallback({ stream: out, maxStrLen: 5 });
    callback.onLog(
      args,
      new TrainerState(),
      new TrainerControl(),
      ctxWithLogs({ note: "short", long: "much too long", epoch: 0.123456 }),
    );
    expect(out.text).toBe(
      "{'note': 'short', 'long': '[String too long to display, length: 13 > 5. " +
        "Consider increasing maxStrLen if needed.]', 'epoch': 0.12}\n",
    );
  });

  it("prints nothing on a process that is not world zero", () => {
    const out = fakeStream(false);
    const callback = new ProgressCallback({ stream: out });
    callback.onLog(
      args,
      new TrainerState({ isWorldProcessZero: false }),
      new TrainerControl(),
      ctxWithLogs({ loss: 1 }),
    );
    expect(out.chunks).toEqual([]);
  });
});

describe("ProgressCallback on a terminal", () => {
  const BAR =
    /^ {0,2}\d{1,3}%\|[█▏▎▍▌▋▊▉ ]+\| \d+\/\d+ \[\d\d:\d\d<(\d\d:\d\d|\?), +(\d+\.\d\d(it\/s|s\/it)|\?it\/s)\]$/;

  function start(columns = 100) {
    const out = fakeStream(true, columns);
    const clock = fakeClock();
    const callback = new ProgressCallback({ stream: out, now: clock.now });
    const state = new TrainerState({ maxSteps: 16 });
    const control = new TrainerControl();
    callback.onTrainBegin(args, state, control, {});
    const step = (to: number, ms = 0) => {
      clock.advance(ms);
      state.globalStep = to;
      callback.onStepEnd(args, state, control, {});
    };
    return { out, clock, callback, state, control, step };
  }

  it("draws a tqdm bar with percentage, n/total, elapsed<remaining and rate", () => {
    const { out, step } = start();
    expect(screen(out)).toEqual([expect.stringMatching(BAR)]);
    expect(screen(out)[0]).toMatch(/^ {2}0%\| +\| 0\/16 \[00:00<\?, \?it\/s\]$/);
    expect(screen(out)[0]).toHaveLength(99);

    step(8, 1000);
    const [line] = screen(out);
    expect(line).toMatch(BAR);
    expect(line).toHaveLength(99);
    expect(line).toMatch(/^ 50%\|█+[▏▎▍▌▋▊▉]? +\| 8\/16 \[00:01<00:01, {2}8\.00it\/s\]$/);
    // Half the bar is filled.
    const inner = line!.slice(line!.indexOf("|") + 1, line!.lastIndexOf("|"));
    expect(inner.replace(/[^█]/g, "").length).toBe(Math.floor(inner.length / 2));
  });

  it("redraws in place with \\r and erase codes, never a new line", () => {
    const { out, step } = start();
    const before = out.chunks.length;
    step(1, 200);
    expect(out.chunks.length).toBe(before + 1);
    const chunk = out.chunks.at(-1)!;
    expect(chunk.startsWith("\r\x1b[K")).toBe(true);
    expect(chunk).not.toContain("\n");
    expect(chunk).toContain(" 1/16 ");
    expect(screen(out)).toHaveLength(1);
  });

  it("throttles redraws to one per 100ms, but always draws the last step", () => {
    const { out, step, clock } = start();
    const writes = () => out.chunks.length;
    const base = writes();
    step(1, 10);
    step(2, 10);
    step(3, 10);
    expect(writes()).toBe(base); // 30ms since the first draw: nothing written
    step(4, 80);
    expect(writes()).toBe(base + 1); // 110ms: one redraw showing 4/16
    expect(screen(out)[0]).toContain(" 4/16 ");
    step(5, 1);
    expect(writes()).toBe(base + 1);
    clock.advance(1);
    step(16, 1); // reaching the total always redraws
    expect(writes()).toBe(base + 2);
    expect(screen(out)[0]).toMatch(/^100%\|█+\| 16\/16 /);
  });

  it("prints logs above the bar, then redraws the bar", () => {
    const { out, step, callback, state, control } = start();
    step(3, 300);
    callback.onLog(
      args,
      state,
      control,
      ctxWithLogs({ loss: 34.2615, learning_rate: 4.375e-5, epoch: 0.375, total_flos: 1 }),
    );
    const chunk = out.chunks.at(-1)!;
    const logLine = "{'loss': 34.2615, 'learning_rate': 4.375e-05, 'epoch': 0.38}";
    expect(chunk.startsWith(`\r\x1b[K${logLine}\n`)).toBe(true);
    expect(chunk.slice(chunk.indexOf("\n") + 1)).toMatch(BAR);
    expect(chunk).toContain(" 3/16 ");
    step(6, 300);
    callback.onLog(args, state, control, ctxWithLogs({ loss: 19.9329, epoch: 0.75 }));
    expect(screen(out)).toEqual([
      "{'loss': 34.2615, 'learning_rate': 4.375e-05, 'epoch': 0.38}",
      "{'loss': 19.9329, 'epoch': 0.75}",
      expect.stringMatching(BAR),
    ]);
    expect(screen(out)[2]).toContain(" 6/16 ");
  });

  it("shows the eval bar on a second line while training and erases it on onEvaluate", () => {
    const { out, step, callback, state, control, clock } = start();
    step(5, 500);
    const evalCtx: CallbackContext = { evalDataloader: { length: 4 } };
    callback.onPredictionStep(args, state, control, evalCtx);
    let lines = screen(out);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(" 5/16 ");
    // Like tqdm, a new bar shows 0/n; its first update falls inside the redraw interval.
    expect(lines[1]).toMatch(/^eval: {3}0%\| +\| 0\/4 \[00:00<\?, \?it\/s\]$/);
    for (let i = 0; i < 3; i++) {
      clock.advance(150);
      callback.onPredictionStep(args, state, control, evalCtx);
    }
    lines = screen(out);
    expect(lines[1]).toMatch(/^eval: 100%\|█+\| 4\/4 \[/);
    // A log while both bars show goes above both.
    callback.onLog(args, state, control, ctxWithLogs({ eval_loss: 42.494, epoch: 0.625 }));
    lines = screen(out);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe("{'eval_loss': 42.494, 'epoch': 0.62}");
    expect(lines[2]).toMatch(/^eval: /);

    callback.onEvaluate(args, state, control, {});
    expect(screen(out)).toEqual([
      "{'eval_loss': 42.494, 'epoch': 0.62}",
      expect.stringMatching(BAR),
    ]);

    // The next evaluation opens a fresh eval bar.
    step(10, 500);
    callback.onPredictionStep(args, state, control, { evalDataloader: { length: 2 } });
    expect(screen(out).at(-1)).toMatch(/^eval: {3}0%\|.*\| 0\/2 \[/);
    callback.onPredict(args, state, control, {});
    expect(screen(out).at(-1)).toContain(" 10/16 ");
  });

  it("leaves the final bar after onTrainEnd and redraws nothing more", () => {
    const out = fakeStream(true, 100);
    const clock = fakeClock();
    const callback = new ProgressCallback({ stream: out, now: clock.now });
    runCaseA(callback, clock);
    const lines = screen(out);
    const { row, col } = terminal(out.text);
    // Cursor on a fresh line below the kept bar.
    expect(col).toBe(0);
    expect(row).toBe(lines.length);
    expect(lines.at(-1)).toMatch(/^100%\|█+\| 16\/16 \[00:0\d<00:00, +\d+\.\d\dit\/s\]$/);
    // Every log is on screen, in order, once; no eval bar is left behind.
    const logLines = lines.slice(0, -1);
    expect(logLines).toHaveLength(5 + 4 + 1);
    expect(logLines.every((line) => line.startsWith("{'"))).toBe(true);
    expect(logLines.at(-1)).toBe("{'train_runtime': 4.2, 'train_loss': 24.7904, 'epoch': 2.0}");
    expect(lines.some((line) => line.startsWith("eval:"))).toBe(false);

    // After the end, events write nothing; a later log is a plain line with no codes.
    const written = out.chunks.length;
    const state = new TrainerState({ maxSteps: 16, globalStep: 17 });
    callback.onStepEnd(args, state, new TrainerControl(), {});
    expect(out.chunks.length).toBe(written);
    callback.onLog(args, state, new TrainerControl(), ctxWithLogs({ eval_loss: 1.5 }));
    expect(out.chunks.slice(written)).toEqual(["{'eval_loss': 1.5}\n"]);
    expect(screen(out).at(-2)).toMatch(/16\/16/);
  });

  it("keeps the eval bar when there is no training bar (evaluate() alone)", () => {
    const out = fakeStream(true, 80);
    const clock = fakeClock();
    const callback = new ProgressCallback({ stream: out, now: clock.now });
    const state = new TrainerState();
    const ctx: CallbackContext = { evalDataloader: { length: 3 } };
    for (let i = 0; i < 3; i++) {
      clock.advance(200);
      callback.onPredictionStep(args, state, new TrainerControl(), ctx);
    }
    callback.onEvaluate(args, state, new TrainerControl(), {});
    expect(screen(out)).toEqual([
      expect.stringMatching(/^eval: 100%\|█+\| 3\/3 \[00:00<00:00, {2}7\.50it\/s\]$/),
    ]);
    expect(screen(out)[0]).toHaveLength(79);
  });

  it("draws no eval bar when the eval loader has no length", () => {
    const { out, callback, state, control } = start();
    callback.onPredictionStep(args, state, control, { evalDataloader: {} });
    callback.onPredictionStep(args, state, control, {});
    expect(screen(out)).toHaveLength(1);
  });

  it("starts a resumed run at its step and rates only the new steps", () => {
    const out = fakeStream(true, 100);
    const clock = fakeClock();
    const callback = new ProgressCallback({ stream: out, now: clock.now });
    const state = new TrainerState({ maxSteps: 16, globalStep: 10 });
    callback.onTrainBegin(args, state, new TrainerControl(), {});
    expect(screen(out)[0]).toMatch(/^ 62%\|.*\| 10\/16 \[00:00<\?, \?it\/s\]$/);
    clock.advance(2000);
    state.globalStep = 12;
    callback.onStepEnd(args, state, new TrainerControl(), {});
    expect(screen(out)[0]).toMatch(/ 12\/16 \[00:02<00:04, {2}1\.00it\/s\]$/);
  });

  it("fits narrow terminals without wrapping", () => {
    const { out, step, callback, state, control } = start(30);
    step(8, 1000);
    callback.onPredictionStep(args, state, control, { evalDataloader: { length: 2 } });
    const lines = screen(out); // terminal() throws if a line wraps
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(29);
  });

  it("draws nothing on a process that is not world zero", () => {
    const out = fakeStream(true);
    const callback = new ProgressCallback({ stream: out });
    const state = new TrainerState({ maxSteps: 16, isWorldProcessZero: false });
    callback.onTrainBegin(args, state, new TrainerControl(), {});
    state.globalStep = 1;
    callback.onStepEnd(args, state, new TrainerControl(), {});
    callback.onPredictionStep(args, state, new TrainerControl(), {
      evalDataloader: { length: 2 },
    });
    callback.onTrainEnd(args, state, new TrainerControl(), {});
    expect(out.chunks).toEqual([]);
  });
});

describe("tqdm-style rendering", () => {
  it("shows s/it below one step a second and h:mm:ss for long runs", () => {
    const clock = fakeClock(0);
    const bars = new BarScreen(fakeStream(true, 100), clock.now);
    const bar = bars.open({ total: 1000, desc: "train" });
    bar.n = 1;
    expect(bar.render(99, 4_000)).toMatch(
      /^train: {3}0%\| +\| 1\/1000 \[00:04<1:06:36, {2}4\.00s\/it\]$/,
    );
    bar.n = 500;
    expect(bar.render(99, 3_723_000)).toMatch(
      / 50%\|.*\| 500\/1000 \[1:02:03<1:02:03, {2}7\.45s\/it\]$/,
    );
  });

  it("fills the bar in eighths like tqdm (cut, not rounded)", () => {
    const bars = new BarScreen(fakeStream(true, 100), () => 0);
    const bar = bars.open({ total: 80 });
    const partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    for (let n = 0; n <= 80; n++) {
      bar.n = n;
      const line = bar.render(60, 1000);
      expect(line).toHaveLength(60);
      const inner = line.slice(line.indexOf("|") + 1, line.lastIndexOf("|"));
      const eighths = Math.floor((n / 80) * inner.length * 8);
      const full = Math.floor(eighths / 8);
      const expected = "█".repeat(full) + (full < inner.length ? partials[eighths % 8] : "");
      expect(inner).toBe(expected.padEnd(inner.length, " "));
    }
    expect(bar.render(60, 1000)).toMatch(/^100%\|█+\| 80\/80 /);
  });
});
