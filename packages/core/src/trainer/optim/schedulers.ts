import type { SchedulerType } from "../../args/options.js";

/** The learning-rate multiplier at a step, as HF's `get_scheduler` lambdas compute it. */
export type LrLambda = (step: number) => number;

export interface SchedulerConfig {
  type: SchedulerType;
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  kwargs?: Record<string, unknown> | null;
}

function warmup(step: number, warmupSteps: number): number {
  return step / Math.max(1, warmupSteps);
}

function kwarg(kwargs: Record<string, unknown> | null | undefined, key: string, fallback: number) {
  const value = kwargs?.[key];
  return typeof value === "number" ? value : fallback;
}

export function lrLambda({
  type,
  baseLr,
  warmupSteps,
  totalSteps,
  kwargs,
}: SchedulerConfig): LrLambda {
  const decaySteps = Math.max(1, totalSteps - warmupSteps);
  switch (type) {
    case "constant":
      return () => 1;
    case "constant_with_warmup":
      return (s) => (s < warmupSteps ? warmup(s, warmupSteps) : 1);
    case "linear":
      return (s) =>
        s < warmupSteps ? warmup(s, warmupSteps) : Math.max(0, (totalSteps - s) / decaySteps);
    case "cosine": {
      const cycles = kwarg(kwargs, "num_cycles", 0.5);
      return (s) => {
        if (s < warmupSteps) return warmup(s, warmupSteps);
        const progress = (s - warmupSteps) / decaySteps;
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
      };
    }
    case "cosine_with_restarts": {
      const cycles = kwarg(kwargs, "num_cycles", 1);
      return (s) => {
        if (s < warmupSteps) return warmup(s, warmupSteps);
        const progress = (s - warmupSteps) / decaySteps;
        if (progress >= 1) return 0;
        return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * progress) % 1))));
      };
    }
    case "polynomial": {
      const lrEnd = kwarg(kwargs, "lr_end", 1e-7);
      const power = kwarg(kwargs, "power", 1);
      if (!(baseLr > lrEnd)) {
        throw new Error(
          `lrSchedulerType "polynomial": lr_end (${lrEnd}) must be smaller than learningRate (${baseLr}); set lrSchedulerKwargs.lr_end lower.`,
        );
      }
      return (s) => {
        if (s < warmupSteps) return warmup(s, warmupSteps);
        if (s > totalSteps) return lrEnd / baseLr;
        const remaining = 1 - (s - warmupSteps) / decaySteps;
        return ((baseLr - lrEnd) * remaining ** power + lrEnd) / baseLr;
      };
    }
  }
}

/**
 * A learning-rate schedule that steps once per optimizer step (HF's LambdaLR):
 * `learningRate` is the rate the next optimizer step uses.
 */
export class LrScheduler {
  readonly config: SchedulerConfig;
  /** Optimizer steps taken so far (PyTorch's `last_epoch`). */
  stepCount = 0;
  private readonly lambda: LrLambda;

  constructor(config: SchedulerConfig) {
    this.config = config;
    this.lambda = lrLambda(config);
  }

  get learningRate(): number {
    return this.config.baseLr * this.lambda(this.stepCount);
  }

  step(): void {
    this.stepCount += 1;
  }

  state(): {
    step_count: number;
    type: string;
    base_lr: number;
    warmup_steps: number;
    total_steps: number;
  } {
    const { type, baseLr, warmupSteps, totalSteps } = this.config;
    return {
      step_count: this.stepCount,
      type,
      base_lr: baseLr,
      warmup_steps: warmupSteps,
      total_steps: totalSteps,
    };
  }

  loadState(saved: { step_count?: unknown }): void {
    if (typeof saved.step_count !== "number") throw new Error("scheduler state has no step_count");
    this.stepCount = saved.step_count;
  }
}

/** HF's `get_warmup_steps`: warmupSteps (a fraction is a ratio), else warmupRatio of the total. */
export function warmupStepsFor(
  args: { warmupSteps: number; warmupRatio: number },
  totalSteps: number,
): number {
  if (args.warmupSteps > 0)
    return args.warmupSteps >= 1
      ? Math.floor(args.warmupSteps)
      : Math.ceil(totalSteps * args.warmupSteps);
  return Math.ceil(totalSteps * args.warmupRatio);
}
