// Optimizers, learning-rate schedules and losses against references: PyTorch's documented update
// rules computed by hand in float64, the values the real torch.optim and transformers computed
// (fixtures/torch-reference.json, with the script that made it), and Keras's loss formulas.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, test } from "vitest";
import { LOSS_NAMES } from "../src/index.js";
import { resolveLoss } from "../src/trainer/model/losses.js";
import { LayersModelAdapter } from "../src/trainer/model/trainable-model.js";
import {
  createOptimizer,
  decaysWeight,
  parseOptimArgs,
  type Optimizer,
  type OptimizerConfig,
} from "../src/trainer/optim/optimizers.js";
import { ScalarCache } from "../src/trainer/optim/scalars.js";
import { LrScheduler, lrLambda, warmupStepsFor } from "../src/trainer/optim/schedulers.js";
import type { OptimizerName, SchedulerType } from "../src/args/options.js";

const FIXTURES = resolve(import.meta.dirname, "fixtures");

interface Params {
  weight: number[][];
  bias: number[];
}
interface TorchReference {
  initial: Params;
  grads: Params[];
  learning_rates: number[];
  optimizers: {
    optimizer: OptimizerName;
    options: {
      betas?: [number, number];
      eps?: number;
      momentum?: number;
      dampening?: number;
      nesterov?: boolean;
    };
    weight_decay: number;
    float64: Params[];
    float32: Params[];
  }[];
  schedulers: {
    type: SchedulerType;
    total_steps: number;
    warmup_steps: number;
    kwargs: Record<string, number> | null;
    base_lr: number;
    lrs: number[];
  }[];
  warmup_steps: { warmup_steps: number; total_steps: number; result: number }[];
}

const REFERENCE = JSON.parse(
  readFileSync(resolve(FIXTURES, "torch-reference.json"), "utf8"),
) as TorchReference;

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/** |actual - expected| ≤ tolerance · max(1, |expected|), element by element. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]!));
    const error = Math.abs(actual[i]! - expected[i]!) / scale;
    if (!(error <= tolerance))
      expect.fail(`element ${i}: ${actual[i]} vs ${expected[i]} (error ${error} > ${tolerance})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Hand references: PyTorch's documented update rules, in float64, for one flat parameter.
// ---------------------------------------------------------------------------------------------

interface HyperParams {
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

/** torch.optim.AdamW / Adam (docs' algorithm, amsgrad off, maximize off). */
function adamReference(
  decoupled: boolean,
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  h: HyperParams,
): number[][] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const out: number[][] = [];
  grads.forEach((grad, step) => {
    const t = step + 1;
    const lr = lrs[step]!;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i]!;
      if (decoupled) p[i] = p[i]! * (1 - lr * h.weightDecay);
      else g = g + h.weightDecay * p[i]!;
      m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
      v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - h.beta2 ** t) + h.epsilon;
      p[i] = p[i]! - (lr / (1 - h.beta1 ** t)) * (m[i]! / denom);
    }
    out.push([...p]);
  });
  return out;
}

/** torch.optim.SGD (docs' algorithm, maximize off). */
function sgdReference(
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  h: HyperParams,
): number[][] {
  const p = [...p0];
  const buf: number[] = [];
  const out: number[][] = [];
  grads.forEach((grad, step) => {
    const lr = lrs[step]!;
    for (let i = 0; i < p.length; i++) {
      let g = grad[i]! + h.weightDecay * p[i]!;
      if (h.momentum !== 0) {
        buf[i] = step === 0 ? g : h.momentum * buf[i]! + (1 - h.dampening) * g;
        g = h.nesterov ? g + h.momentum * buf[i]! : buf[i]!;
      }
      p[i] = p[i]! - lr * g;
    }
    out.push([...p]);
  });
  return out;
}

function reference(
  name: OptimizerName,
  p0: readonly number[],
  grads: readonly (readonly number[])[],
  lrs: readonly number[],
  h: HyperParams,
): number[][] {
  return name === "sgd"
    ? sgdReference(p0, grads, lrs, h)
    : adamReference(name === "adamw", p0, grads, lrs, h);
}

function hyperParams(entry: TorchReference["optimizers"][number], decays: boolean): HyperParams {
  const { options } = entry;
  return {
    weightDecay: decays ? entry.weight_decay : 0,
    beta1: options.betas?.[0] ?? 0.9,
    beta2: options.betas?.[1] ?? 0.999,
    epsilon: options.eps ?? 1e-8,
    momentum: options.momentum ?? 0,
    dampening: options.dampening ?? 0,
    nesterov: options.nesterov ?? false,
  };
}

let variableCount = 0;

/** A weight [2, 3] (decayed) and a bias [3] (not decayed), as a Dense layer's. */
function makeVariables(weight: number[][], bias: number[]): tf.Variable[] {
  const id = variableCount++;
  return tf.tidy(() => [
    tf.variable(tf.tensor2d(weight), true, `optim_test_${id}/kernel`),
    tf.variable(tf.tensor1d(bias), true, `optim_test_${id}/bias`),
  ]);
}

function makeOptimizer(
  entry: TorchReference["optimizers"][number],
  variables: tf.Variable[],
): Optimizer {
  const h = hyperParams(entry, true);
  const config: OptimizerConfig = {
    name: entry.optimizer,
    variables,
    decay: variables.map((v) => decaysWeight(v.name)),
    weightDecay: entry.weight_decay,
    beta1: h.beta1,
    beta2: h.beta2,
    epsilon: h.epsilon,
    momentum: h.momentum,
    dampening: h.dampening,
    nesterov: h.nesterov,
  };
  return createOptimizer(config);
}

function applyStep(optimizer: Optimizer, step: number): void {
  const { weight, bias } = REFERENCE.grads[step]!;
  const grads = [tf.tensor2d(weight), tf.tensor1d(bias)];
  optimizer.applyGradients(grads, REFERENCE.learning_rates[step]!);
  tf.dispose(grads);
}

function caseName(entry: TorchReference["optimizers"][number]): string {
  return `${entry.optimizer} ${JSON.stringify(entry.options)} weight_decay=${entry.weight_decay}`;
}

describe("optimizers: PyTorch's update rules", () => {
  const { initial, grads, learning_rates: lrs } = REFERENCE;
  const weightGrads = grads.map((g) => g.weight.flat());
  const biasGrads = grads.map((g) => g.bias);

  test("the fixture covers AdamW, Adam and SGD (plain, momentum, dampening, Nesterov)", () => {
    const kinds = REFERENCE.optimizers.map((e) => e.optimizer);
    expect(new Set(kinds)).toEqual(new Set(["adamw", "adam", "sgd"]));
    expect(REFERENCE.optimizers.some((e) => e.options.nesterov)).toBe(true);
    expect(REFERENCE.optimizers.some((e) => e.options.dampening)).toBe(true);
  });

  test.each(REFERENCE.optimizers.map((e) => [caseName(e), e] as const))(
    "%s: the hand reference of the documented rule equals torch.optim (float64)",
    (_, entry) => {
      const weight = reference(
        entry.optimizer,
        initial.weight.flat(),
        weightGrads,
        lrs,
        hyperParams(entry, true),
      );
      const bias = reference(
        entry.optimizer,
        initial.bias,
        biasGrads,
        lrs,
        hyperParams(entry, false),
      );
      for (let step = 0; step < 3; step++) {
        expectClose(weight[step]!, entry.float64[step]!.weight.flat(), 1e-12);
        expectClose(bias[step]!, entry.float64[step]!.bias, 1e-12);
      }
    },
  );

  test.each(REFERENCE.optimizers.map((e) => [caseName(e), e] as const))(
    "%s: 3 steps match the reference within 1e-6 (bias not decayed)",
    (_, entry) => {
      const variables = makeVariables(initial.weight, initial.bias);
      const optimizer = makeOptimizer(entry, variables);
      for (let step = 0; step < 3; step++) {
        applyStep(optimizer, step);
        const expected = entry.float64[step]!;
        expectClose(variables[0]!.dataSync(), expected.weight.flat(), 1e-6);
        expectClose(variables[1]!.dataSync(), expected.bias, 1e-6);
        // And against torch's own float32 run.
        expectClose(variables[0]!.dataSync(), entry.float32[step]!.weight.flat(), 1e-6);
        expectClose(variables[1]!.dataSync(), entry.float32[step]!.bias, 1e-6);
      }
      expect(optimizer.getState().step).toBe(3);
      optimizer.dispose();
      tf.dispose(variables);
    },
  );

  test("weight decay changes the weight but never the bias", () => {
    const entry = REFERENCE.optimizers.find(
      (e) => e.optimizer === "adamw" && e.weight_decay > 0.1,
    )!;
    const noDecay = { ...entry, weight_decay: 0 };
    const [a, b] = [entry, noDecay].map((e) => {
      const variables = makeVariables(initial.weight, initial.bias);
      const optimizer = makeOptimizer(e, variables);
      applyStep(optimizer, 0);
      const values = variables.map((v) => Array.from(v.dataSync()));
      optimizer.dispose();
      tf.dispose(variables);
      return values;
    });
    expect(a![0]).not.toEqual(b![0]);
    expect(a![1]).toEqual(b![1]);
  });

  test.each(REFERENCE.optimizers.map((e) => [caseName(e), e] as const))(
    "%s: getState → setState on a fresh optimizer continues identically",
    (_, entry) => {
      const original = makeVariables(initial.weight, initial.bias);
      const first = makeOptimizer(entry, original);
      applyStep(first, 0);
      // Snapshot after step 1 (getState hands out the live slots, so clone them).
      const state = first.getState();
      const snapshot = {
        step: state.step,
        slots: state.slots.map((slot) =>
          Object.fromEntries(Object.entries(slot).map(([k, t]) => [k, t.clone()])),
        ),
      };
      const copy = makeVariables(
        original[0]!.arraySync() as number[][],
        original[1]!.arraySync() as number[],
      );
      const second = makeOptimizer(entry, copy);
      second.setState(snapshot);
      expect(second.getState().step).toBe(1);
      for (let step = 1; step < 3; step++) {
        applyStep(first, step);
        applyStep(second, step);
      }
      expect(Array.from(copy[0]!.dataSync())).toEqual(Array.from(original[0]!.dataSync()));
      expect(Array.from(copy[1]!.dataSync())).toEqual(Array.from(original[1]!.dataSync()));
      const slotsA = first.getState().slots;
      const slotsB = second.getState().slots;
      slotsA.forEach((slot, i) => {
        for (const [name, tensor] of Object.entries(slot))
          expect(Array.from(slotsB[i]![name]!.dataSync())).toEqual(Array.from(tensor.dataSync()));
      });
      tf.dispose(snapshot.slots.flatMap((slot) => Object.values(slot)));
      first.dispose();
      second.dispose();
      tf.dispose([...original, ...copy]);
    },
  );

  test("setState rejects a state saved for other variables", () => {
    const entry = REFERENCE.optimizers[0]!;
    const variables = makeVariables(initial.weight, initial.bias);
    const optimizer = makeOptimizer(entry, variables);
    const zeros = tf.zeros([4]);
    expect(() => optimizer.setState({ step: 1, slots: [] })).toThrow(
      /slots for 0 variables but the model has 2/,
    );
    expect(() =>
      optimizer.setState({
        step: 1,
        slots: [
          { exp_avg: zeros, exp_avg_sq: zeros },
          { exp_avg: zeros, exp_avg_sq: zeros },
        ],
      }),
    ).toThrow(/exp_avg for variable 0 .* has shape \[4\] but the variable has \[2,3\]/);
    zeros.dispose();
    optimizer.dispose();
    tf.dispose(variables);
  });

  test("applyGradients needs one gradient per variable", () => {
    const variables = makeVariables(initial.weight, initial.bias);
    const optimizer = makeOptimizer(REFERENCE.optimizers[0]!, variables);
    const g = tf.zeros([2, 3]);
    expect(() => optimizer.applyGradients([g], 0.1)).toThrow(/1 gradients for 2 variables/);
    g.dispose();
    optimizer.dispose();
    tf.dispose(variables);
  });

  test("torch's argument checks: Nesterov needs momentum and no dampening", () => {
    const variables = makeVariables(initial.weight, initial.bias);
    const base = {
      name: "sgd" as const,
      variables,
      decay: [true, false],
      weightDecay: 0,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
    };
    expect(() => createOptimizer({ ...base, nesterov: true })).toThrow(/Nesterov momentum needs/);
    expect(() =>
      createOptimizer({ ...base, nesterov: true, momentum: 0.9, dampening: 0.1 }),
    ).toThrow(/zero dampening/);
    expect(() => createOptimizer({ ...base, momentum: -1 })).toThrow(/momentum must be 0 or more/);
    expect(() => createOptimizer({ ...base, name: "adamw", beta1: 1 })).toThrow(
      /adamBeta1 must be in \[0, 1\)/,
    );
    expect(() => createOptimizer({ ...base, decay: [true] })).toThrow(/one per variable/);
    tf.dispose(variables);
  });

  test("the optimizer's own tensors are released by dispose()", () => {
    const variables = makeVariables(initial.weight, initial.bias);
    const before = tf.memory().numTensors;
    for (const entry of REFERENCE.optimizers) {
      const optimizer = makeOptimizer(entry, variables);
      for (let step = 0; step < 3; step++) applyStep(optimizer, step);
      optimizer.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(variables);
  });

  test("AdamW without weight decay does no more device work per step than Adam", () => {
    // The decay factor 1 - lr·weightDecay was uploaded every step even when nothing used it.
    // Every tensor made on the backend (an upload or an op's output) is one backend.write.
    const entry = REFERENCE.optimizers.find((e) => e.optimizer === "adamw")!;
    const { weight, bias } = REFERENCE.grads[1]!;
    const writesPerStep = (optimizer: "adam" | "adamw", weightDecay: number) => {
      const variables = makeVariables(REFERENCE.initial.weight, REFERENCE.initial.bias);
      const opt = makeOptimizer({ ...entry, optimizer, weight_decay: weightDecay }, variables);
      applyStep(opt, 0); // fills the optimizer's scalar cache
      const stepGrads = [tf.tensor2d(weight), tf.tensor1d(bias)];
      const backend = tf.backend() as unknown as { write: (...args: unknown[]) => unknown };
      const write = backend.write;
      let writes = 0;
      backend.write = function (this: unknown, ...args: unknown[]) {
        writes++;
        return write.apply(this, args);
      };
      try {
        opt.applyGradients(stepGrads, 0.01);
      } finally {
        delete (backend as { write?: unknown }).write; // back to the prototype's
      }
      tf.dispose(stepGrads);
      opt.dispose();
      tf.dispose(variables);
      return writes;
    };
    expect(writesPerStep("adamw", 0)).toBe(writesPerStep("adam", 0));
    // With weight decay the factor is used: one upload, and a multiply for the decayed weight.
    expect(writesPerStep("adamw", 0.1)).toBe(writesPerStep("adam", 0) + 2);
  });

  test("the optimizers' scalar cache never evicts a scalar (one in use must stay valid)", () => {
    const cache = new ScalarCache();
    const first = cache.get(0.5);
    for (let i = 0; i < 5000; i++) cache.get(i + 0.25);
    expect(first.isDisposed).toBe(false);
    expect(cache.get(0.5)).toBe(first);
    cache.clear();
    expect(first.isDisposed).toBe(true);
  });

  test("parseOptimArgs reads HF's optim_args", () => {
    expect(parseOptimArgs("momentum=0.9, nesterov=True,dampening=0")).toEqual({
      momentum: 0.9,
      nesterov: true,
      dampening: 0,
    });
    expect(parseOptimArgs(null)).toEqual({});
  });
});

describe("decaysWeight: HF's get_decay_parameter_names", () => {
  test.each([
    ["dense_Dense1/kernel", true],
    ["dense_Dense1/bias", false],
    ["embedding_Embedding1/embeddings", true],
    ["layer_normalization_LayerNormalization1/gamma", false],
    ["layer_normalization_LayerNormalization1/beta", false],
    ["batch_normalization_BatchNormalization1/gamma", false],
    ["encoder.layer.0.attention.output.LayerNorm.weight", false],
    ["model.layers.0.input_rmsnorm.weight", false],
    ["model.norm.weight", false],
    ["model.layers.0.post_attention_norm/scale", false],
    ["decoder/normalizer_kernel", true],
    ["alphabet_kernel", true],
  ])("%s → %s", (name, expected) => {
    expect(decaysWeight(name)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// Schedulers
// ---------------------------------------------------------------------------------------------

/** transformers/optimization.py's lr lambdas, written out from the source. */
function hfLambda(
  type: SchedulerType,
  warmup: number,
  total: number,
  kwargs: Record<string, number> | null,
  baseLr: number,
): (step: number) => number {
  const warm = (s: number) => s / Math.max(1, warmup);
  const progress = (s: number) => (s - warmup) / Math.max(1, total - warmup);
  switch (type) {
    case "constant":
      return () => 1;
    case "constant_with_warmup":
      return (s) => (s < warmup ? warm(s) : 1);
    case "linear":
      return (s) => (s < warmup ? warm(s) : Math.max(0, (total - s) / Math.max(1, total - warmup)));
    case "cosine": {
      const cycles = kwargs?.num_cycles ?? 0.5;
      return (s) =>
        s < warmup
          ? warm(s)
          : Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress(s))));
    }
    case "cosine_with_restarts": {
      const cycles = kwargs?.num_cycles ?? 1;
      return (s) => {
        if (s < warmup) return warm(s);
        if (progress(s) >= 1) return 0;
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress(s)) % 1))));
      };
    }
    case "polynomial": {
      const lrEnd = kwargs?.lr_end ?? 1e-7;
      const power = kwargs?.power ?? 1;
      return (s) => {
        if (s < warmup) return warm(s);
        if (s > total) return lrEnd / baseLr;
        const remaining = 1 - (s - warmup) / (total - warmup);
        return ((baseLr - lrEnd) * remaining ** power + lrEnd) / baseLr;
      };
    }
  }
}

describe("schedulers: HF's get_scheduler", () => {
  const label = (e: TorchReference["schedulers"][number]) =>
    `${e.type} total=${e.total_steps} warmup=${e.warmup_steps}${e.kwargs ? ` ${JSON.stringify(e.kwargs)}` : ""}`;

  test("the fixture covers every scheduler type, with and without warmup", () => {
    const types = new Set(REFERENCE.schedulers.map((e) => e.type));
    expect(types).toEqual(
      new Set([
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
      ]),
    );
  });

  test.each(REFERENCE.schedulers.map((e) => [label(e), e] as const))(
    "%s: the learning rate of every optimizer step equals transformers' (and the written-out formula)",
    (_, entry) => {
      const scheduler = new LrScheduler({
        type: entry.type,
        baseLr: entry.base_lr,
        warmupSteps: entry.warmup_steps,
        totalSteps: entry.total_steps,
        kwargs: entry.kwargs,
      });
      const formula = hfLambda(
        entry.type,
        entry.warmup_steps,
        entry.total_steps,
        entry.kwargs,
        entry.base_lr,
      );
      entry.lrs.forEach((expected, step) => {
        expect(scheduler.stepCount).toBe(step);
        const lr = scheduler.learningRate;
        expect(Math.abs(lr - expected)).toBeLessThanOrEqual(1e-12 * entry.base_lr);
        expect(Math.abs(lr - entry.base_lr * formula(step))).toBeLessThanOrEqual(
          1e-12 * entry.base_lr,
        );
        scheduler.step();
      });
    },
  );

  test("linear, 16 steps, no warmup: step index 2 uses 5e-5 · 14/16 = 4.375e-05", () => {
    const lambda = lrLambda({ type: "linear", baseLr: 5e-5, warmupSteps: 0, totalSteps: 16 });
    expect(5e-5 * lambda(2)).toBeCloseTo(4.375e-5, 15);
  });

  test("the learning rates HF logged in the recorded traces (linear, 6 significant digits)", () => {
    const traces = ["a", "b", "c", "d", "g_first"];
    for (const name of traces) {
      const history = JSON.parse(
        readFileSync(resolve(FIXTURES, `hf-traces/${name}.log_history.json`), "utf8"),
      ) as { step: number; learning_rate?: number }[];
      const summary = JSON.parse(
        readFileSync(resolve(FIXTURES, `hf-traces/${name}.summary.json`), "utf8"),
      ) as { state: { max_steps: number } };
      const lambda = lrLambda({
        type: "linear",
        baseLr: 5e-5,
        warmupSteps: 0,
        totalSteps: summary.state.max_steps,
      });
      const logged = history.filter((e) => e.learning_rate !== undefined);
      expect(logged.length).toBeGreaterThan(0);
      for (const entry of logged) {
        // The logged rate is the one the step's optimizer update used: lambda(step - 1).
        const ours = 5e-5 * lambda(entry.step - 1);
        expect(Number(ours.toPrecision(6))).toBe(entry.learning_rate);
      }
    }
  });

  test("polynomial needs lr_end below the learning rate", () => {
    expect(() =>
      lrLambda({ type: "polynomial", baseLr: 1e-7, warmupSteps: 0, totalSteps: 10 }),
    ).toThrow(/lr_end \(1e-7\) must be smaller than learningRate/);
  });

  test("state() / loadState() carry the step count", () => {
    const config = { type: "cosine" as const, baseLr: 1e-3, warmupSteps: 2, totalSteps: 10 };
    const a = new LrScheduler(config);
    for (let i = 0; i < 4; i++) a.step();
    const b = new LrScheduler(config);
    b.loadState(a.state());
    expect(b.stepCount).toBe(4);
    expect(b.learningRate).toBe(a.learningRate);
    expect(() => b.loadState({})).toThrow(/step_count/);
  });
});

describe("warmupStepsFor: HF's get_warmup_steps", () => {
  test.each(REFERENCE.warmup_steps.map((e) => [e.warmup_steps, e.total_steps, e.result] as const))(
    "warmupSteps %s of %s total steps → %s (transformers' result)",
    (warmupSteps, total, expected) => {
      expect(warmupStepsFor({ warmupSteps, warmupRatio: 0 }, total)).toBe(expected);
    },
  );

  test("warmupSteps ≥ 1 is used as is; a fraction is ceil(total · f)", () => {
    expect(warmupStepsFor({ warmupSteps: 7, warmupRatio: 0 }, 100)).toBe(7);
    expect(warmupStepsFor({ warmupSteps: 7, warmupRatio: 0.5 }, 100)).toBe(7);
    expect(warmupStepsFor({ warmupSteps: 0.1, warmupRatio: 0 }, 15)).toBe(2);
  });

  test("warmupRatio (when warmupSteps is 0) is ceil(total · r)", () => {
    expect(warmupStepsFor({ warmupSteps: 0, warmupRatio: 0.1 }, 16)).toBe(2);
    expect(warmupStepsFor({ warmupSteps: 0, warmupRatio: 0.25 }, 16)).toBe(4);
    expect(warmupStepsFor({ warmupSteps: 0, warmupRatio: 0.1 }, 7)).toBe(1);
    expect(warmupStepsFor({ warmupSteps: 0, warmupRatio: 0 }, 7)).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Losses
// ---------------------------------------------------------------------------------------------

const EPS = 1e-7;
const Y = [
  [0, 1, 0],
  [1, 0, 0],
];
const P = [
  [0.2, 0.7, 0.1],
  [0.5, 0.3, 0.2],
];
/** Labels and predictions for losses with ±1 or real targets. */
const Y_SIGNED = [
  [1, -1, 1],
  [-1, -1, 1],
];
const P_REAL = [
  [0.3, -0.8, 2.0],
  [0.6, 0.1, -0.4],
];
const Y_REAL = [
  [0.5, 1.5, 2.5],
  [3.0, 0.25, 1.0],
];

const clip = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** Keras: a loss per row (over the last axis), then the mean over the batch. */
const perRow = (y: number[][], p: number[][], f: (y: number[], p: number[]) => number) =>
  mean(y.map((row, i) => f(row, p[i]!)));

const HAND: Record<string, { y: number[][]; p: number[][]; value: number }> = {
  meanSquaredError: {
    y: Y_REAL,
    p: P_REAL,
    value: perRow(Y_REAL, P_REAL, (y, p) => mean(y.map((v, k) => (p[k]! - v) ** 2))),
  },
  meanAbsoluteError: {
    y: Y_REAL,
    p: P_REAL,
    value: perRow(Y_REAL, P_REAL, (y, p) => mean(y.map((v, k) => Math.abs(p[k]! - v)))),
  },
  meanAbsolutePercentageError: {
    y: Y_REAL,
    p: P_REAL,
    value: perRow(
      Y_REAL,
      P_REAL,
      (y, p) => 100 * mean(y.map((v, k) => Math.abs((v - p[k]!) / Math.max(Math.abs(v), EPS)))),
    ),
  },
  meanSquaredLogarithmicError: {
    y: Y_REAL,
    p: P_REAL,
    value: perRow(Y_REAL, P_REAL, (y, p) =>
      mean(
        y.map((v, k) => (Math.log(1 + Math.max(p[k]!, EPS)) - Math.log(1 + Math.max(v, EPS))) ** 2),
      ),
    ),
  },
  squaredHinge: {
    y: Y_SIGNED,
    p: P_REAL,
    value: perRow(Y_SIGNED, P_REAL, (y, p) =>
      mean(y.map((v, k) => Math.max(0, 1 - v * p[k]!) ** 2)),
    ),
  },
  hinge: {
    y: Y_SIGNED,
    p: P_REAL,
    value: perRow(Y_SIGNED, P_REAL, (y, p) => mean(y.map((v, k) => Math.max(0, 1 - v * p[k]!)))),
  },
  categoricalHinge: {
    y: Y,
    p: P,
    value: perRow(Y, P, (y, p) => {
      const pos = sum(y.map((v, k) => v * p[k]!));
      const neg = Math.max(...y.map((v, k) => (1 - v) * p[k]!));
      return Math.max(0, 1 + neg - pos);
    }),
  },
  logcosh: {
    y: Y_REAL,
    p: P_REAL,
    value: perRow(Y_REAL, P_REAL, (y, p) => mean(y.map((v, k) => Math.log(Math.cosh(p[k]! - v))))),
  },
  categoricalCrossentropy: {
    y: Y,
    p: P,
    value: perRow(Y, P, (y, p) => {
      const s = sum(p);
      return -sum(y.map((v, k) => v * Math.log(clip(p[k]! / s, EPS, 1 - EPS))));
    }),
  },
  binaryCrossentropy: {
    y: Y,
    p: P,
    value: perRow(Y, P, (y, p) =>
      mean(
        y.map((v, k) => {
          const q = clip(p[k]!, EPS, 1 - EPS);
          return -(v * Math.log(q) + (1 - v) * Math.log(1 - q));
        }),
      ),
    ),
  },
  kullbackLeiblerDivergence: {
    y: [
      [0.1, 0.6, 0.3],
      [0.7, 0.2, 0.1],
    ],
    p: P,
    value: perRow(
      [
        [0.1, 0.6, 0.3],
        [0.7, 0.2, 0.1],
      ],
      P,
      (y, p) => sum(y.map((v, k) => v * Math.log(clip(v, EPS, 1) / clip(p[k]!, EPS, 1)))),
    ),
  },
  poisson: {
    y: Y_REAL,
    p: P.map((row) => row.map((v) => v * 3)),
    value: perRow(
      Y_REAL,
      P.map((row) => row.map((v) => v * 3)),
      (y, p) => mean(y.map((v, k) => p[k]! - v * Math.log(p[k]! + EPS))),
    ),
  },
  cosineProximity: {
    y: Y_REAL,
    p: P_REAL,
    value: perRow(Y_REAL, P_REAL, (y, p) => {
      const ny = Math.sqrt(Math.max(sum(y.map((v) => v * v)), EPS));
      const np = Math.sqrt(Math.max(sum(p.map((v) => v * v)), EPS));
      return -sum(y.map((v, k) => (v / ny) * (p[k]! / np)));
    }),
  },
};

function lossValue(name: string, y: tf.Tensor, p: tf.Tensor): number {
  return tf.tidy(() => resolveLoss(name)(y, p).dataSync()[0]!);
}

describe("losses: Keras names against hand computations", () => {
  test("every Keras loss of tf.layers has a name", () => {
    expect(new Set(LOSS_NAMES)).toEqual(
      new Set([...Object.keys(HAND), "sparseCategoricalCrossentropy"]),
    );
  });

  test.each(Object.entries(HAND))("%s", (name, { y, p, value }) => {
    const yt = tf.tensor2d(y);
    const pt = tf.tensor2d(p);
    expect(lossValue(name, yt, pt)).toBeCloseTo(value, 5);
    tf.dispose([yt, pt]);
  });

  test("sparseCategoricalCrossentropy takes class indices (float or int32, [n] or [n, 1])", () => {
    const p = tf.tensor2d(P);
    const expected = HAND.categoricalCrossentropy!.value;
    for (const labels of [
      tf.tensor1d([1, 0]),
      tf.tensor1d([1, 0], "int32"),
      tf.tensor2d([[1], [0]]),
    ]) {
      expect(lossValue("sparseCategoricalCrossentropy", labels, p)).toBeCloseTo(expected, 5);
      labels.dispose();
    }
    p.dispose();
  });

  test.each([
    ["mse", "meanSquaredError"],
    ["MSE", "meanSquaredError"],
    ["mean_squared_error", "meanSquaredError"],
    ["mae", "meanAbsoluteError"],
    ["mean_absolute_error", "meanAbsoluteError"],
    ["mape", "meanAbsolutePercentageError"],
    ["msle", "meanSquaredLogarithmicError"],
    ["categorical_crossentropy", "categoricalCrossentropy"],
    ["binary_crossentropy", "binaryCrossentropy"],
    ["squared_hinge", "squaredHinge"],
    ["categorical_hinge", "categoricalHinge"],
    ["log_cosh", "logcosh"],
    ["kld", "kullbackLeiblerDivergence"],
    ["kl_divergence", "kullbackLeiblerDivergence"],
    ["kullback_leibler_divergence", "kullbackLeiblerDivergence"],
    ["cosine", "cosineProximity"],
    ["cosine_similarity", "cosineProximity"],
  ])("alias %s = %s", (alias, name) => {
    const { y, p, value } = HAND[name]!;
    const yt = tf.tensor2d(y);
    const pt = tf.tensor2d(p);
    expect(lossValue(alias, yt, pt)).toBeCloseTo(value, 5);
    tf.dispose([yt, pt]);
  });

  test("sparse_categorical_crossentropy is an alias too", () => {
    const p = tf.tensor2d(P);
    const labels = tf.tensor1d([1, 0], "int32");
    expect(lossValue("sparse_categorical_crossentropy", labels, p)).toBeCloseTo(
      HAND.categoricalCrossentropy!.value,
      5,
    );
    tf.dispose([p, labels]);
  });

  test("int32 labels work with a float loss (cast, as model.fit does)", () => {
    const y = tf.tensor2d(Y, undefined, "int32");
    const p = tf.tensor2d(P);
    expect(lossValue("binaryCrossentropy", y, p)).toBeCloseTo(HAND.binaryCrossentropy!.value, 5);
    tf.dispose([y, p]);
  });

  test("an unknown name lists the valid ones", () => {
    expect(() => resolveLoss("meanSquareError")).toThrow(
      /Unknown loss "meanSquareError"\. Use one of meanSquaredError, meanAbsoluteError, .*sparseCategoricalCrossentropy/,
    );
  });

  test("a function may return the batch's loss or one loss per example (averaged)", () => {
    const y = tf.tensor2d(Y_REAL);
    const p = tf.tensor2d(P_REAL);
    const scalar = (yt: tf.Tensor, pt: tf.Tensor) =>
      tf.mean(tf.square(tf.sub(pt, yt))) as tf.Scalar;
    const perExample = (yt: tf.Tensor, pt: tf.Tensor) =>
      tf.mean(tf.square(tf.sub(pt, yt)), -1) as unknown as tf.Scalar;
    const expected = HAND.meanSquaredError!.value;
    expect(tf.tidy(() => resolveLoss(scalar)(y, p).dataSync()[0]!)).toBeCloseTo(expected, 5);
    expect(tf.tidy(() => resolveLoss(perExample)(y, p).dataSync()[0]!)).toBeCloseTo(expected, 5);
    tf.dispose([y, p]);
  });
});

describe("LayersModelAdapter: labels against the model's output", () => {
  function model(units: number, activation?: "softmax") {
    return tf.sequential({
      layers: [tf.layers.dense({ units, inputShape: [2], kernelInitializer: "ones", activation })],
    });
  }
  const x = () =>
    tf.tensor2d([
      [1, 2],
      [0.5, -1],
      [0, 3],
    ]);

  test("labels of shape [n] for an output [n, 1] are a column, not a broadcast", () => {
    const m = model(1);
    const adapter = new LayersModelAdapter(m, "meanSquaredError");
    const loss = tf.tidy(() => {
      const flat = adapter.computeLoss({ x: x(), y: tf.tensor1d([1, 2, 3]) }, { training: false });
      const column = adapter.computeLoss(
        { x: x(), y: tf.tensor2d([[1], [2], [3]]) },
        { training: false },
      );
      const manual = tf.mean(
        tf.square(tf.sub(m.predict(x()) as tf.Tensor, tf.tensor2d([[1], [2], [3]]))),
      );
      return [flat.dataSync()[0]!, column.dataSync()[0]!, manual.dataSync()[0]!];
    });
    expect(loss[0]).toBeCloseTo(loss[2]!, 6);
    expect(loss[1]).toBeCloseTo(loss[2]!, 6);
    m.dispose();
  });

  test("labels whose shape differs from the output are an error naming both shapes", () => {
    const m = model(3);
    const adapter = new LayersModelAdapter(m, "mse");
    expect(() =>
      tf.tidy(() =>
        adapter.computeLoss({ x: x(), y: tf.tensor1d([1, 2, 3]) }, { training: false }),
      ),
    ).toThrow(/y has shape \[\] per example but the model's output is \[3\]/);
    m.dispose();
  });

  test("sparse labels are class indices; one-hot labels are an error that suggests categoricalCrossentropy", () => {
    const m = model(3, "softmax");
    const adapter = new LayersModelAdapter(m, "sparseCategoricalCrossentropy");
    const value = tf.tidy(
      () =>
        adapter
          .computeLoss({ x: x(), y: tf.tensor1d([0, 2, 1], "int32") }, { training: false })
          .dataSync()[0]!,
    );
    expect(Number.isFinite(value)).toBe(true);
    expect(() =>
      tf.tidy(() =>
        adapter.computeLoss(
          { x: x(), y: tf.oneHot(tf.tensor1d([0, 2, 1], "int32"), 3) },
          { training: false },
        ),
      ),
    ).toThrow(/For one-hot labels use categoricalCrossentropy/);
    m.dispose();
  });

  test("checkExampleShapes names the dataset and the field before any work", () => {
    const m = model(1);
    const adapter = new LayersModelAdapter(m, "mse");
    expect(() => adapter.checkExampleShapes({ x: [2], y: [] }, "trainDataset")).not.toThrow();
    expect(() => adapter.checkExampleShapes({ x: [2], y: [1] }, "trainDataset")).not.toThrow();
    expect(() => adapter.checkExampleShapes({ x: [3], y: [] }, "trainDataset")).toThrow(
      /trainDataset: x has shape \[3\] per example but the model's input takes \[2\]/,
    );
    expect(() => adapter.checkExampleShapes({ x: [2], y: [4] }, "evalDataset")).toThrow(
      /evalDataset: y has shape \[4\] per example but the model's output is \[1\]/,
    );
    m.dispose();
  });
});
