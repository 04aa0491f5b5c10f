import * as tf from "@tensorflow/tfjs";
import type { OptimizerName } from "../../args/options.js";
import { ScalarCache } from "./scalars.js";

/**
 * The optimizers of the Trainer, written on tf ops with PyTorch's update rules so that results
 * match HF's defaults, and with state that a checkpoint saves and restores bit for bit.
 */
export interface Optimizer {
  readonly name: OptimizerName;
  /** Updates each variable with its gradient (same order) at this learning rate. */
  applyGradients(grads: readonly tf.Tensor[], learningRate: number): void;
  /** The optimizer's slot tensors (moments, momentum buffers), and its step count. */
  getState(): OptimizerState;
  setState(state: OptimizerState): void;
  dispose(): void;
}

export interface OptimizerState {
  step: number;
  /** Named slot tensors, one entry per variable: e.g. { exp_avg, exp_avg_sq }. */
  slots: Record<string, tf.Tensor>[];
}

export interface OptimizerConfig {
  name: OptimizerName;
  variables: readonly tf.Variable[];
  /** Whether weight decay applies to each variable (HF leaves biases and norms alone). */
  decay: readonly boolean[];
  weightDecay: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** Variables HF excludes from weight decay: biases and normalisation weights. */
export function decaysWeight(variableName: string): boolean {
  return !/(bias|gamma|beta|layer_?norm|batch_?norm)/i.test(variableName);
}

/** HF's optim_args: "momentum=0.9,nesterov=True" → { momentum: 0.9, nesterov: true }. */
export function parseOptimArgs(text: string | null): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  if (!text) return out;
  for (const pair of text.split(",")) {
    const [key = "", raw = ""] = pair.split("=").map((s) => s.trim());
    out[key] = /^true$/i.test(raw) ? true : /^false$/i.test(raw) ? false : Number(raw);
  }
  return out;
}

export function createOptimizer(config: OptimizerConfig): Optimizer {
  return config.name === "sgd" ? new Sgd(config) : new AdamFamily(config);
}

/** Adam and AdamW (decoupled weight decay), as torch.optim.Adam / AdamW compute them. */
class AdamFamily implements Optimizer {
  readonly name: OptimizerName;
  private step = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private readonly constants = new ScalarCache();

  constructor(private readonly config: OptimizerConfig) {
    this.name = config.name;
    this.m = config.variables.map((p) => tf.variable(tf.zerosLike(p), false));
    this.v = config.variables.map((p) => tf.variable(tf.zerosLike(p), false));
  }

  applyGradients(grads: readonly tf.Tensor[], lr: number): void {
    const { variables, decay, weightDecay, beta1, beta2, epsilon } = this.config;
    this.step += 1;
    const bc1 = 1 - beta1 ** this.step;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    const decoupled = this.name === "adamw";
    const c = this.constants;
    tf.tidy(() => {
      const stepSize = tf.scalar(lr / bc1);
      const shrink = tf.scalar(1 - lr * weightDecay);
      const correction = tf.scalar(1 / bc2Sqrt);
      for (let i = 0; i < variables.length; i++) {
        const p = variables[i]!;
        let g = grads[i]!;
        const decays = weightDecay !== 0 && decay[i];
        if (decays && !decoupled) g = tf.add(g, tf.mul(p, c.get(weightDecay)));
        const m = tf.add(tf.mul(this.m[i]!, c.get(beta1)), tf.mul(g, c.get(1 - beta1)));
        const v = tf.add(tf.mul(this.v[i]!, c.get(beta2)), tf.mul(tf.square(g), c.get(1 - beta2)));
        const denom = tf.add(tf.mul(tf.sqrt(v), correction), c.get(epsilon));
        const base = decays && decoupled ? tf.mul(p, shrink) : p;
        p.assign(tf.sub(base, tf.mul(stepSize, tf.div(m, denom))));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
      }
    });
  }

  getState(): OptimizerState {
    return {
      step: this.step,
      slots: this.m.map((m, i) => ({ exp_avg: m, exp_avg_sq: this.v[i]! })),
    };
  }

  setState(state: OptimizerState): void {
    this.step = state.step;
    state.slots.forEach((slot, i) => {
      this.m[i]!.assign(slot.exp_avg!);
      this.v[i]!.assign(slot.exp_avg_sq!);
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
    this.constants.clear();
  }
}

/** SGD with optional momentum, dampening, Nesterov and (coupled) weight decay, as torch.optim.SGD. */
class Sgd implements Optimizer {
  readonly name: OptimizerName = "sgd";
  private step = 0;
  private readonly buffers: tf.Variable[];
  private readonly constants = new ScalarCache();

  constructor(private readonly config: OptimizerConfig) {
    this.buffers = config.momentum
      ? config.variables.map((p) => tf.variable(tf.zerosLike(p), false))
      : [];
  }

  applyGradients(grads: readonly tf.Tensor[], lr: number): void {
    const {
      variables,
      decay,
      weightDecay,
      momentum = 0,
      dampening = 0,
      nesterov = false,
    } = this.config;
    const first = this.step === 0;
    this.step += 1;
    const c = this.constants;
    tf.tidy(() => {
      const rate = tf.scalar(lr);
      for (let i = 0; i < variables.length; i++) {
        const p = variables[i]!;
        let g = grads[i]!;
        if (weightDecay !== 0 && decay[i]) g = tf.add(g, tf.mul(p, c.get(weightDecay)));
        if (momentum !== 0) {
          const buffer = first
            ? g
            : tf.add(tf.mul(this.buffers[i]!, c.get(momentum)), tf.mul(g, c.get(1 - dampening)));
          this.buffers[i]!.assign(buffer);
          g = nesterov ? tf.add(g, tf.mul(buffer, c.get(momentum))) : buffer;
        }
        p.assign(tf.sub(p, tf.mul(rate, g)));
      }
    });
  }

  getState(): OptimizerState {
    return { step: this.step, slots: this.buffers.map((b) => ({ momentum_buffer: b })) };
  }

  setState(state: OptimizerState): void {
    this.step = state.step;
    state.slots.forEach((slot, i) => this.buffers[i]?.assign(slot.momentum_buffer!));
  }

  dispose(): void {
    for (const b of this.buffers) b.dispose();
    this.constants.clear();
  }
}
