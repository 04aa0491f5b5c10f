import * as tf from "@tensorflow/tfjs";
import type { OptimizerName } from "../../args/options.js";
import { sameShape } from "../../util/shapes.js";
import { ScalarCache } from "./scalars.js";

/**
 * The optimizers of the Trainer, written on tf ops with PyTorch's update rules so that results
 * match HF's defaults, and with state that a checkpoint saves and restores bit for bit.
 */
export interface Optimizer {
  readonly name: OptimizerName;
  /** Updates each variable with its gradient (same order) at this learning rate. */
  applyGradients(grads: readonly tf.Tensor[], learningRate: number): void;
  /**
   * The optimizer's slot tensors (moments, momentum buffers), and its step count. The tensors
   * are the optimizer's own, updated in place by later steps: clone them to keep a snapshot.
   */
  getState(): OptimizerState;
  /** Copies a state (from getState or a checkpoint) into the optimizer. */
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

/**
 * Name patterns of the variables HF leaves out of weight decay (Trainer.get_decay_parameter_names:
 * "bias", "layernorm", "rmsnorm", "norm" and "_norm" as a name part), with "/" as tfjs's name
 * separator, plus tf.layers' normalisation weights (gamma, beta) and batch norm.
 */
const NO_DECAY = [
  /bias/,
  /layer_?norm/,
  /batch_?norm/,
  /rms_?norm/,
  /(?:^|[./])norm(?:$|[./])/,
  /_norm(?:$|[./])/,
  /(?:^|[./])(?:gamma|beta)(?:_\d+)?$/,
];

/** Whether weight decay applies to a variable: HF leaves biases and normalisation weights alone. */
export function decaysWeight(variableName: string): boolean {
  const name = variableName.toLowerCase();
  return !NO_DECAY.some((pattern) => pattern.test(name));
}

export { parseOptimArgs } from "../../args/rules.js";

export function createOptimizer(config: OptimizerConfig): Optimizer {
  checkConfig(config);
  return config.name === "sgd" ? new Sgd(config) : new AdamFamily(config);
}

/** torch.optim's own argument checks, with the TrainingArguments names to fix them. */
function checkConfig(config: OptimizerConfig): void {
  const { name, variables, decay, weightDecay, momentum = 0, dampening = 0, nesterov } = config;
  if (variables.length === 0)
    throw new Error(`The ${name} optimizer got no variables: the model has nothing to train.`);
  if (decay.length !== variables.length)
    throw new Error(
      `The ${name} optimizer got ${variables.length} variables but ${decay.length} weight-decay flags; give one per variable.`,
    );
  if (!(weightDecay >= 0)) throw new Error(`weightDecay must be 0 or more (got ${weightDecay}).`);
  if (name === "sgd") {
    if (!(momentum >= 0))
      throw new Error(`optimArgs momentum must be 0 or more (got ${momentum}).`);
    if (nesterov && (momentum <= 0 || dampening !== 0))
      throw new Error(
        `Nesterov momentum needs a momentum above 0 and zero dampening (got momentum=${momentum}, dampening=${dampening}); fix optimArgs, e.g. "momentum=0.9,nesterov=True".`,
      );
  } else {
    for (const [key, beta] of [
      ["adamBeta1", config.beta1],
      ["adamBeta2", config.beta2],
    ] as const) {
      if (!(beta >= 0 && beta < 1)) throw new Error(`${key} must be in [0, 1) (got ${beta}).`);
    }
    if (!(config.epsilon >= 0))
      throw new Error(`adamEpsilon must be 0 or more (got ${config.epsilon}).`);
  }
}

/** The gradients must match the variables one for one. */
function checkGradients(
  name: string,
  variables: readonly tf.Variable[],
  grads: readonly tf.Tensor[],
) {
  if (grads.length !== variables.length)
    throw new Error(
      `${name}.applyGradients got ${grads.length} gradients for ${variables.length} variables; pass one per variable, in the same order.`,
    );
}

/** A saved state must fit this optimizer's variables: one slot record per variable, same shapes. */
function checkState(
  name: string,
  state: OptimizerState,
  variables: readonly tf.Variable[],
  slotNames: readonly string[],
): void {
  if (state.slots.length !== variables.length)
    throw new Error(
      `The ${name} optimizer state has slots for ${state.slots.length} variables but the model has ${variables.length}; it was saved for a different model.`,
    );
  state.slots.forEach((slot, i) => {
    for (const slotName of slotNames) {
      const tensor = slot[slotName];
      const shape = variables[i]!.shape;
      if (!tensor)
        throw new Error(
          `The ${name} optimizer state has no ${slotName} for variable ${i} (${variables[i]!.name}).`,
        );
      if (!sameShape(tensor.shape, shape))
        throw new Error(
          `The ${name} optimizer state's ${slotName} for variable ${i} (${variables[i]!.name}) has shape [${tensor.shape}] but the variable has [${shape}]; it was saved for a different model.`,
        );
    }
  });
}

/** A slot variable of zeros shaped like `p` (its initial tensor is released: no leak per slot). */
function zeroSlot(p: tf.Variable): tf.Variable {
  const zeros = tf.zerosLike(p);
  const slot = tf.variable(zeros, false);
  zeros.dispose();
  return slot;
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
    this.m = config.variables.map(zeroSlot);
    this.v = config.variables.map(zeroSlot);
  }

  applyGradients(grads: readonly tf.Tensor[], lr: number): void {
    const { variables, decay, weightDecay, beta1, beta2, epsilon } = this.config;
    checkGradients(this.name, variables, grads);
    this.step += 1;
    const bc1 = 1 - beta1 ** this.step;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    const decoupled = this.name === "adamw";
    const c = this.constants;
    tf.tidy(() => {
      const stepSize = tf.scalar(lr / bc1);
      // AdamW's decay factor, only when some variable decays with it: no upload otherwise.
      const shrink = decoupled && weightDecay !== 0 ? tf.scalar(1 - lr * weightDecay) : undefined;
      const correction = tf.scalar(1 / bc2Sqrt);
      for (let i = 0; i < variables.length; i++) {
        const p = variables[i]!;
        let g = grads[i]!;
        const decays = weightDecay !== 0 && decay[i];
        if (decays && !decoupled) g = tf.add(g, tf.mul(p, c.get(weightDecay)));
        const m = tf.add(tf.mul(this.m[i]!, c.get(beta1)), tf.mul(g, c.get(1 - beta1)));
        const v = tf.add(tf.mul(this.v[i]!, c.get(beta2)), tf.mul(tf.square(g), c.get(1 - beta2)));
        const denom = tf.add(tf.mul(tf.sqrt(v), correction), c.get(epsilon));
        const base = decays && shrink ? tf.mul(p, shrink) : p;
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
    checkState(this.name, state, this.config.variables, ["exp_avg", "exp_avg_sq"]);
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
    this.buffers = config.momentum ? config.variables.map(zeroSlot) : [];
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
    checkGradients(this.name, variables, grads);
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
    if (this.buffers.length > 0)
      checkState(this.name, state, this.config.variables, ["momentum_buffer"]);
    this.step = state.step;
    state.slots.forEach((slot, i) => this.buffers[i]?.assign(slot.momentum_buffer!));
  }

  dispose(): void {
    for (const b of this.buffers) b.dispose();
    this.constants.clear();
  }
}
