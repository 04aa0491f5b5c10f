import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { TrainingArguments, type TrainingArgumentsOptions } from "../args/training-arguments.js";
import { CallbackHandler, type CallbackLike } from "../callbacks/callback-handler.js";
import { DefaultFlowCallback } from "../callbacks/default-flow-callback.js";
import { PrinterCallback } from "../callbacks/printer-callback.js";
import { ProgressCallback } from "../callbacks/progress-callback.js";
import { restoreCallbackStates } from "../callbacks/restore-callback-states.js";
import type { Logs, TrainerCallback } from "../callbacks/trainer-callback.js";
import { TrainerControl } from "../state/trainer-control.js";
import { TrainerState } from "../state/trainer-state.js";
import { logger } from "../util/logger.js";
import { redactText } from "../util/redact.js";
import { guardIntegration, type FailurePolicy } from "../plugin/guard.js";
import type { TrainkitPlugin } from "../plugin/define-plugin.js";
import {
  checkReportTo,
  installedCandidates,
  selectPlugins,
  type Candidate,
} from "../plugin/select.js";
import { selectBackend } from "./backend.js";
import {
  assignModelTensors,
  disposeCheckpoint,
  FILES,
  loadModelFiles,
  readCheckpoint,
  saveModelFiles,
  saveOptimizerFiles,
  writeJson,
  type LoadedCheckpoint,
  type LoopState,
  type RngState,
} from "./checkpoint/checkpoint-files.js";
import {
  CHECKPOINT_PREFIX,
  deleteAllCheckpointsExcept,
  latestCheckpoint,
  removeTemporaryCheckpoints,
  rotateCheckpoints,
  writeCheckpointDir,
  type DeleteErrorHandler,
} from "./checkpoint/checkpoint-dir.js";
import { DataLoader, type DataCollator } from "./data/data-loader.js";
import { exampleShapes, toDataset, type Dataset, type DatasetInput } from "./data/dataset.js";
import type { LossFunction } from "./model/losses.js";
import {
  isLayersModel,
  isTrainableModel,
  LayersModelAdapter,
  type Batch,
  type TrainableModel,
} from "./model/trainable-model.js";
import { parseOptimArgs } from "../args/rules.js";
import { createOptimizer, decaysWeight, type Optimizer } from "./optim/optimizers.js";
import { LossAccumulator } from "./loss-accumulator.js";
import { ScalarCache } from "./optim/scalars.js";
import { LrScheduler, warmupStepsFor } from "./optim/schedulers.js";

/** Predictions and labels of a whole evaluation, for computeMetrics (HF's EvalPrediction). */
export interface EvalPrediction {
  predictions: tf.Tensor;
  labelIds: tf.Tensor | null;
}

export type ComputeMetrics = (
  prediction: EvalPrediction,
) => Record<string, number> | Promise<Record<string, number>>;

export interface TrainerOptions {
  /** A tf.LayersModel (with `loss`), or any TrainableModel. */
  model: tf.LayersModel | TrainableModel;
  /** For a tf.LayersModel: a Keras loss name or `(yTrue, yPred) => tf.Scalar`. */
  loss?: string | LossFunction;
  args?: TrainingArguments | TrainingArgumentsOptions;
  trainDataset?: DatasetInput;
  evalDataset?: DatasetInput;
  dataCollator?: DataCollator;
  computeMetrics?: ComputeMetrics;
  callbacks?: CallbackLike[];
  /** Replace the optimizer and/or the scheduler the Trainer would build (HF's `optimizers`). */
  optimizers?: [Optimizer | null, LrScheduler | null];
  /** Plugins to offer besides the installed ones (for bundled apps); reportTo still selects. */
  plugins?: TrainkitPlugin[];
  /** What a failing integration does: "warn" (default) switches it off, "raise" stops training. */
  failurePolicy?: FailurePolicy;
}

export interface TrainOutput {
  globalStep: number;
  trainingLoss: number;
  metrics: Logs;
}

export interface PredictionOutput {
  predictions: tf.Tensor;
  labelIds: tf.Tensor | null;
  metrics: Logs;
}

interface EvalLoopOutput extends PredictionOutput {
  numSamples: number;
}

/** How often a long synchronous stretch of training yields to the event loop (timers, I/O). */
const YIELD_EVERY_MS = 25;

/**
 * Trains TensorFlow.js models with HF's Trainer loop, event for event: the callbacks, logs,
 * evaluation, checkpoints and exact resume of transformers' Trainer.
 */
export class Trainer {
  readonly args: TrainingArguments;
  readonly model: TrainableModel;
  readonly callbackHandler: CallbackHandler;
  state: TrainerState;
  control: TrainerControl;
  optimizer: Optimizer | undefined;
  lrScheduler: LrScheduler | undefined;

  private readonly trainDataset: Dataset | undefined;
  private readonly evalDataset: Dataset | undefined;
  private readonly dataCollator: DataCollator | undefined;
  private readonly computeMetrics: ComputeMetrics | undefined;
  /** The seed of the data order: the checkpoint's when resuming, else dataSeed ?? seed. */
  private dataSeed = 0;
  /** A promise from an async onInitEnd, awaited before any work. */
  private initDone: Promise<unknown> | undefined;
  /** The integrations reportTo selects, created on first use (importing them is async). */
  private integrations: Promise<void> | undefined;
  private readonly plugins: readonly TrainkitPlugin[];
  /** The installed plugins found when the Trainer was built (none looked for with "none"). */
  private installed: Candidate[] | undefined;
  /** Callback classes removed before the integrations were added. */
  private readonly removedClasses: (new () => TrainerCallback)[] = [];
  /** The integration callbacks, by the plugin name they report as. */
  private readonly integrationNames = new WeakMap<TrainerCallback, string>();
  private readonly failurePolicy: FailurePolicy;
  /** Whether the Trainer built the optimizer (it then frees it in dispose()). */
  private createdOptimizer = false;
  /** Whether the Trainer built the scheduler (it then builds a new one for each train()). */
  private createdScheduler = false;
  /** Whether this training has already warned that an old checkpoint could not be deleted. */
  private deleteFailureReported = false;

  constructor(options: TrainerOptions) {
    const {
      model,
      loss,
      args,
      callbacks = [],
      optimizers,
      plugins = [],
      failurePolicy = "warn",
    } = options;
    this.args = args instanceof TrainingArguments ? args : new TrainingArguments(args ?? {});
    if (failurePolicy !== "warn" && failurePolicy !== "raise")
      throw new Error(
        `failurePolicy must be "warn" or "raise" (got ${JSON.stringify(failurePolicy)}).`,
      );
    this.plugins = plugins;
    this.failurePolicy = failurePolicy;
    // reportTo's names are checked now, against what is installed; TRAINKIT_PLUGINS is imported later.
    if (this.args.reportTo !== "none") {
      // Found once: the names are checked now, and selection later loads from the same list.
      this.installed = installedCandidates({ plugins }, (m) => logger.warn(m));
      checkReportTo(
        this.args.reportTo,
        this.installed.map((c) => c.name),
        Boolean(process.env.TRAINKIT_PLUGINS?.trim()),
      );
    }
    this.model = adaptModel(model, loss);
    if (this.model.trainableVariables().length === 0) {
      throw new Error(
        "The model has no trainable variables: there is nothing to train. Build the model's layers (call it once, or give the first layer an inputShape) and leave them trainable.",
      );
    }
    this.dataCollator = options.dataCollator;
    const asDataset = { collator: this.dataCollator !== undefined };
    this.trainDataset =
      options.trainDataset === undefined
        ? undefined
        : toDataset(options.trainDataset, "trainDataset", asDataset);
    this.evalDataset =
      options.evalDataset === undefined
        ? undefined
        : toDataset(options.evalDataset, "evalDataset", asDataset);
    if (this.args.evalStrategy !== "no" && !this.evalDataset) {
      throw new Error(
        `evalStrategy is "${this.args.evalStrategy}" but no evalDataset was given. Pass evalDataset, or set evalStrategy to "no".`,
      );
    }
    if (this.trainDataset) this.checkDataset(this.trainDataset, "trainDataset", true);
    if (this.evalDataset) this.checkDataset(this.evalDataset, "evalDataset", false);
    this.computeMetrics = options.computeMetrics;
    [this.optimizer, this.lrScheduler] = [
      optimizers?.[0] ?? undefined,
      optimizers?.[1] ?? undefined,
    ];

    const progress = this.args.disableTqdm ? PrinterCallback : ProgressCallback;
    this.callbackHandler = new CallbackHandler([DefaultFlowCallback, ...callbacks, progress], {
      model: this.model,
      optimizer: this.optimizer,
      lrScheduler: this.lrScheduler,
    });
    this.state = new TrainerState();
    this.control = new TrainerControl();
    this.state.setStatefulCallbacks([...this.callbackHandler.callbacks, this.control]);
    const result = this.callbackHandler.onInitEnd(this.args, this.state, this.control);
    if (result instanceof Promise) {
      this.initDone = result.then((c) => (this.control = c));
      // ready() rethrows the error; until then it is not an unhandled rejection.
      this.initDone.catch(() => {});
    } else this.control = result;
  }

  addCallback(callback: CallbackLike): void {
    this.callbackHandler.addCallback(callback);
  }

  popCallback(callback: CallbackLike): TrainerCallback | undefined {
    this.rememberRemoval(callback);
    return this.callbackHandler.popCallback(callback);
  }

  removeCallback(callback: CallbackLike): void {
    this.rememberRemoval(callback);
    this.callbackHandler.removeCallback(callback);
  }

  /**
   * Integrations join the list at the first train/evaluate/predict; a class removed before that
   * (as HF users do with `trainer.removeCallback(TensorBoardCallback)`) must stay out.
   */
  private rememberRemoval(callback: CallbackLike): void {
    if (!this.integrations && typeof callback === "function") this.removedClasses.push(callback);
  }

  /** Writes the model (model.json + weights.bin, tfjs-node's layout) and training_args.json. */
  async saveModel(dir: string = this.args.outputDir): Promise<void> {
    mkdirSync(dir, { recursive: true });
    await saveModelFiles(dir, this.model);
    this.args.saveToJson(join(dir, FILES.trainingArgs));
  }

  /** Loads weights saved by saveModel or a checkpoint into the model. */
  loadModel(dir: string): void {
    loadModelFiles(dir, this.model);
  }

  /**
   * Lets every callback finish its work: `close()` is awaited on each callback that has one
   * (trackers deliver what evaluate() or predict() logged after training and end their run).
   * Call it when you are done with the Trainer; a callback's failure is reported, not thrown.
   */
  async close(): Promise<void> {
    for (const callback of this.callbackHandler.callbacks) {
      const close = (callback as { close?: unknown }).close;
      if (typeof close !== "function") continue;
      try {
        await (close as () => unknown).call(callback);
      } catch (error) {
        logger.warn(
          `${callback.constructor.name}.close failed: ${redactText(error instanceof Error ? error.message : String(error))}`,
        );
      }
    }
  }

  /**
   * Frees the optimizer's tensors (its slots and cached scalars) when the Trainer created it;
   * one passed in `optimizers` is the caller's to dispose. The model is never disposed. A later
   * train() builds a new optimizer.
   */
  dispose(): void {
    if (this.createdOptimizer && this.optimizer) {
      this.optimizer.dispose();
      this.optimizer = undefined;
      this.callbackHandler.optimizer = undefined;
    }
    this.createdOptimizer = false;
  }

  /**
   * Trains the model. `resumeFromCheckpoint`: true for the latest checkpoint in outputDir, or
   * a checkpoint's path; the run then continues exactly where that checkpoint left off.
   */
  async train(options: { resumeFromCheckpoint?: boolean | string } = {}): Promise<TrainOutput> {
    await this.ready();
    try {
      return await this.trainLoop(options);
    } catch (error) {
      // Trackers mark their run failed (trainkit's onException; HF has no such event).
      await this.callbackHandler.onException(this.args, this.state, this.control, { error });
      throw error;
    }
  }

  private async trainLoop({
    resumeFromCheckpoint,
  }: {
    resumeFromCheckpoint?: boolean | string;
  }): Promise<TrainOutput> {
    const args = this.args;
    if (!this.trainDataset)
      throw new Error("train() needs a trainDataset: pass one to the Trainer.");
    // The data order's seed: dataSeed ?? seed, or the checkpoint's (set below) when resuming.
    this.dataSeed = args.dataSeed ?? args.seed;
    let loader = this.dataLoader(this.trainDataset, "trainDataset", true);
    const batchSize = args.perDeviceTrainBatchSize;
    const accumulation = args.gradientAccumulationSteps;
    const { maxSteps, numTrainEpochs, updateStepsPerEpoch, numTrainSamples } =
      this.trainingLength(loader);

    const checkpointDir = this.resolveCheckpoint(resumeFromCheckpoint);
    // HF: a scheduler the Trainer built belongs to one training; the next one gets a new one
    // for its own steps (the one given in `optimizers` is kept).
    if (this.createdScheduler) {
      this.lrScheduler = undefined;
      this.createdScheduler = false;
    }
    this.ensureOptimizer(maxSteps);
    const optimizer = this.optimizer!;
    const scheduler = this.lrScheduler!;
    const loaded = checkpointDir ? readCheckpoint(checkpointDir, this.model, optimizer) : undefined;

    this.state = new TrainerState({ trainBatchSize: batchSize, isHyperParamSearch: false });
    this.state.setStatefulCallbacks([...this.callbackHandler.callbacks, this.control]);
    this.state.computeSteps(args, maxSteps);
    let epochsTrained = 0;
    let batchesToSkip = 0;
    let loop: LoopState | undefined;
    if (loaded) {
      this.state = loaded.state;
      if (args.restoreCallbackStatesFromCheckpoint)
        this.control = restoreCallbackStates(
          this.callbackHandler,
          this.control,
          loaded.state.statefulCallbacks,
          // A rebuilt integration keeps its failure guard.
          { onRestore: (restored, replaced) => this.guardAs(replaced, restored) },
        );
      this.applyCheckpoint(loaded, optimizer, scheduler);
      loop = loaded.loop;
      epochsTrained = Math.floor(this.state.globalStep / updateStepsPerEpoch);
      if (!args.ignoreDataSkip)
        batchesToSkip = (this.state.globalStep % updateStepsPerEpoch) * accumulation;
      logger.info(
        `Resuming from ${loaded.dir} at step ${this.state.globalStep} (epoch ${epochsTrained}, skipping ${batchesToSkip} batches).`,
      );
    }
    this.state.maxSteps = maxSteps;
    this.state.numTrainEpochs = numTrainEpochs;
    this.state.isLocalProcessZero = true;
    this.state.isWorldProcessZero = true;
    if (loaded?.rng && loaded.rng.data_seed !== this.dataSeed) {
      this.dataSeed = loaded.rng.data_seed;
      loader = this.dataLoader(this.trainDataset, "trainDataset", true);
    }
    removeTemporaryCheckpoints(args.outputDir);
    this.deleteFailureReported = false;

    const variables = this.model.trainableVariables();
    const trLoss = new LossAccumulator(loop?.tr_loss ?? 0, args.loggingNanInfFilter);
    let totalLossScalar = loop?.total_loss_scalar ?? 0;
    let lastLogged = loop?.globalstep_last_logged ?? this.state.globalStep;
    let gradNorm: tf.Scalar | undefined;
    let learningRate = scheduler.learningRate;
    const handler = this.callbackHandler;
    handler.trainDataloader = loader;
    const scalars = new ScalarCache();

    const startTime = performance.now();
    let lastYield = startTime;
    this.control = await handler.onTrainBegin(args, this.state, this.control);
    // HF's eval_on_start calls `_evaluate` alone: the best metric is not updated by it.
    if (args.evalOnStart) await this.evaluate();

    const logTrainingLoss = async () => {
      const lossSum = trLoss.read(lastLogged);
      trLoss.reset();
      const logs: Logs = { loss: lossSum / (this.state.globalStep - lastLogged) };
      if (gradNorm) logs.grad_norm = gradNorm.dataSync()[0]!;
      logs.learning_rate = learningRate;
      totalLossScalar += lossSum;
      lastLogged = this.state.globalStep;
      await this.log(logs);
    };
    const maybeLogSaveEvaluate = async () => {
      if (this.control.shouldLog && this.state.globalStep > lastLogged) await logTrainingLoss();
      if (this.control.shouldEvaluate) {
        const isNewBest = await this.evaluateDuringTraining();
        if (args.saveStrategy === "best") this.control.shouldSave = isNewBest;
      }
      if (this.control.shouldSave) {
        await this.saveCheckpoint({
          tr_loss: trLoss.read(lastLogged),
          total_loss_scalar: totalLossScalar,
          globalstep_last_logged: lastLogged,
        });
        this.control = await handler.onSave(args, this.state, this.control);
      }
    };

    // The per-step events are awaited only when a callback returned a promise.
    let dispatched: TrainerControl | Promise<TrainerControl>;
    // The tensors of the step in flight: freed in `finally` if a callback or the model throws.
    let batch: Batch | undefined;
    let accumulated: tf.Tensor[] | undefined;
    let toApply: tf.Tensor[] | undefined;
    try {
      for (let epoch = epochsTrained; epoch < numTrainEpochs; epoch++) {
        const stepsInEpoch = loader.length ?? args.maxSteps * accumulation;
        this.control = await handler.onEpochBegin(args, this.state, this.control);
        const skipped = batchesToSkip;
        batchesToSkip = 0;
        const batches = loader.epoch(epoch, skipped);
        const remainder = stepsInEpoch % accumulation || accumulation;
        const totalUpdates =
          Math.floor(stepsInEpoch / accumulation) + (remainder < accumulation ? 1 : 0);
        // `step` and `update` count from the epoch's start, skipped batches included (they are
        // whole groups), so a resumed epoch keeps the groups of an unbroken one: its last,
        // shorter group still ends in an optimizer step (HF counts from the first batch after
        // the skip, and a resumed epoch's short last group then never syncs).
        let step = skipped - 1;
        let exhausted = false;
        for (let update = Math.floor(skipped / accumulation); update < totalUpdates; update++) {
          const groupSize = update !== totalUpdates - 1 ? accumulation : remainder;
          for (let i = 0; i < groupSize; i++) {
            let next = batches.next();
            if (next instanceof Promise) next = await next;
            if (!next) {
              exhausted = true;
              break;
            }
            batch = next;
            step++;
            const syncStep = (step + 1) % accumulation === 0 || step + 1 === stepsInEpoch;
            if (step % accumulation === 0) {
              dispatched = handler.onStepBegin(args, this.state, this.control);
              this.control = dispatched instanceof Promise ? await dispatched : dispatched;
            }

            // Forward and backward on the device; the loss stays there until the next log.
            const inputs = batch;
            const summedSoFar = accumulated;
            const [loss, grads] = tf.tidy(() => {
              const { value, grads } = tf.variableGrads(() => {
                const loss = this.model.computeLoss(inputs, { training: true });
                return groupSize > 1 ? tf.div(loss, scalars.get(groupSize)) : loss;
              }, variables);
              const stepGrads = variables.map((v) => grads[v.name] ?? missingGradient(v));
              const summed = summedSoFar
                ? stepGrads.map((g, k) => tf.add(summedSoFar[k]!, g))
                : stepGrads;
              return [value, summed] as const;
            });
            tf.dispose(batch);
            batch = undefined;
            if (accumulated) tf.dispose(accumulated);
            trLoss.add(loss, this.state.globalStep, lastLogged);
            accumulated = grads;

            if (!syncStep) {
              dispatched = handler.onSubstepEnd(args, this.state, this.control);
              this.control = dispatched instanceof Promise ? await dispatched : dispatched;
              // HF checks the stop flags after a substep too: the group's gradients are dropped.
              if (this.control.shouldEpochStop || this.control.shouldTrainingStop) break;
              continue;
            }
            toApply = accumulated;
            accumulated = undefined;
            if (args.maxGradNorm > 0) {
              const [norm, clipped] = clipByGlobalNorm(toApply, args.maxGradNorm, scalars);
              gradNorm?.dispose();
              gradNorm = norm;
              tf.dispose(toApply);
              toApply = clipped;
            }
            dispatched = handler.onPreOptimizerStep(args, this.state, this.control);
            this.control = dispatched instanceof Promise ? await dispatched : dispatched;
            learningRate = scheduler.learningRate;
            optimizer.applyGradients(toApply, learningRate);
            tf.dispose(toApply);
            toApply = undefined;
            dispatched = handler.onOptimizerStep(args, this.state, this.control);
            this.control = dispatched instanceof Promise ? await dispatched : dispatched;
            scheduler.step();
            this.state.globalStep += 1;
            this.state.epoch = epoch + (step + 1) / stepsInEpoch;
            dispatched = handler.onStepEnd(args, this.state, this.control);
            this.control = dispatched instanceof Promise ? await dispatched : dispatched;
            if (this.control.shouldLog || this.control.shouldEvaluate || this.control.shouldSave)
              await maybeLogSaveEvaluate();

            const now = performance.now();
            if (now - lastYield > YIELD_EVERY_MS) {
              await new Promise((resolve) => setImmediate(resolve));
              lastYield = performance.now();
            }
            if (this.control.shouldEpochStop || this.control.shouldTrainingStop) break;
          }
          // An exhausted stream ends the epoch: no more groups to try.
          if (exhausted || this.control.shouldEpochStop || this.control.shouldTrainingStop) break;
        }
        if (accumulated) {
          tf.dispose(accumulated);
          accumulated = undefined;
        }
        if (step < 0 && skipped === 0) {
          logger.warn(
            `There seems not to be a single sample in epoch ${epoch} of trainDataset: stopping training.`,
          );
          this.control.shouldTrainingStop = true;
        }
        this.control = await handler.onEpochEnd(args, this.state, this.control);
        await maybeLogSaveEvaluate();
        if (this.control.shouldTrainingStop) break;
      }

      totalLossScalar += trLoss.read(lastLogged);
      const trainLoss = totalLossScalar / Math.max(this.state.globalStep, 0.001);
      const metrics: Logs = speedMetrics("train", startTime, numTrainSamples, this.state.maxSteps);
      metrics.total_flos = this.state.totalFlos;
      metrics.train_loss = trainLoss;
      await this.log(metrics);
      // HF: with saveTotalLimit 1, every checkpoint but the best is deleted at the end (during
      // training, rotation keeps the newest next to the best).
      const best = this.state.bestModelCheckpoint;
      if (args.saveTotalLimit === 1 && best !== null)
        deleteAllCheckpointsExcept(args.outputDir, best, this.onDeleteFailure);
      if (args.loadBestModelAtEnd && this.state.bestModelCheckpoint) {
        logger.info(
          `Loading the best model from ${this.state.bestModelCheckpoint} (${args.metricForBestModel}: ${this.state.bestMetric}).`,
        );
        loadModelFiles(this.state.bestModelCheckpoint, this.model);
      }
      this.control = await handler.onTrainEnd(args, this.state, this.control);
      return { globalStep: this.state.globalStep, trainingLoss: trainLoss, metrics };
    } finally {
      if (batch) tf.dispose(batch);
      if (accumulated) tf.dispose(accumulated);
      if (toApply) tf.dispose(toApply);
      trLoss.reset();
      gradNorm?.dispose();
      scalars.clear();
    }
  }

  /** Evaluates on evalDataset (or the one given): metrics prefixed `eval_`, logged, onEvaluate. */
  async evaluate(
    evalDataset?: DatasetInput,
    { metricKeyPrefix = "eval" }: { metricKeyPrefix?: string } = {},
  ): Promise<Logs> {
    await this.ready();
    const dataset =
      evalDataset === undefined
        ? this.evalDataset
        : toDataset(evalDataset, "evalDataset", { collator: this.dataCollator !== undefined });
    if (!dataset)
      throw new Error("evaluate() needs an evalDataset: pass one to the Trainer or to evaluate().");
    const loader = this.dataLoader(dataset, "evalDataset", false);
    const startTime = performance.now();
    const output = await this.evaluationLoop(
      loader,
      metricKeyPrefix,
      this.args.predictionLossOnly || this.computeMetrics === undefined,
    );
    tf.dispose([output.predictions, output.labelIds ?? []]);
    const metrics = output.metrics;
    Object.assign(
      metrics,
      speedMetrics(
        metricKeyPrefix,
        startTime,
        output.numSamples,
        Math.ceil(output.numSamples / this.args.perDeviceEvalBatchSize),
      ),
    );
    await this.log(metrics);
    this.control = await this.callbackHandler.onEvaluate(this.args, this.state, this.control, {
      metrics,
    });
    return metrics;
  }

  /** Predictions for a dataset, with `test_*` metrics when it has labels. The caller owns the tensors. */
  async predict(
    testDataset: DatasetInput,
    { metricKeyPrefix = "test" }: { metricKeyPrefix?: string } = {},
  ): Promise<PredictionOutput> {
    await this.ready();
    const loader = this.dataLoader(
      toDataset(testDataset, "testDataset", { collator: this.dataCollator !== undefined }),
      "testDataset",
      false,
    );
    const startTime = performance.now();
    const output = await this.evaluationLoop(loader, metricKeyPrefix, this.args.predictionLossOnly);
    Object.assign(
      output.metrics,
      speedMetrics(
        metricKeyPrefix,
        startTime,
        output.numSamples,
        Math.ceil(output.numSamples / this.args.perDeviceEvalBatchSize),
      ),
    );
    try {
      this.control = await this.callbackHandler.onPredict(this.args, this.state, this.control, {
        metrics: output.metrics,
      });
    } catch (error) {
      // The caller never gets the tensors: free them.
      tf.dispose([output.predictions, output.labelIds ?? []]);
      throw error;
    }
    return { predictions: output.predictions, labelIds: output.labelIds, metrics: output.metrics };
  }

  private async ready(): Promise<void> {
    await selectBackend(this.args.backend);
    if (this.initDone) {
      await this.initDone;
      this.initDone = undefined;
    }
    // A failed setup is not kept: the next call tries again (e.g. after the env is fixed).
    this.integrations ??= this.addIntegrations().catch((error: unknown) => {
      this.integrations = undefined;
      throw error;
    });
    await this.integrations;
  }

  private guard(callback: TrainerCallback, name: string): TrainerCallback {
    const guarded = guardIntegration(callback, name, this.failurePolicy, logger);
    this.integrationNames.set(guarded, name);
    return guarded;
  }

  /** `restored` guarded as the integration `replaced` was; other callbacks as they are. */
  private guardAs(replaced: TrainerCallback, restored: TrainerCallback): TrainerCallback {
    const name = this.integrationNames.get(replaced);
    return name === undefined ? restored : this.guard(restored, name);
  }

  /**
   * Selects the integrations (reportTo), creates their callbacks and puts them after
   * DefaultFlowCallback and before the user's callbacks (HF's order), each guarded by the
   * failure policy. They missed onInitEnd in the constructor, so they get it now.
   */
  private async addIntegrations(): Promise<void> {
    const context = { args: this.args, env: process.env, logger };
    const { plugins, summary } = await selectPlugins(this.args.reportTo, context, {
      plugins: this.plugins,
      installed: this.installed,
    });
    logger.info(summary);
    // Created first, inserted together: a plugin whose create() fails leaves no half-added list.
    const created: TrainerCallback[] = [];
    for (const plugin of plugins) {
      const callback = await plugin.create(context);
      if (this.removedClasses.some((cls) => callback instanceof cls)) continue;
      created.push(this.guard(callback, plugin.name));
    }
    const callbacks = this.callbackHandler.callbacks;
    const at = callbacks.findIndex((cb) => cb instanceof DefaultFlowCallback) + 1;
    callbacks.splice(at, 0, ...created);
    for (const callback of created) {
      const result = callback.onInitEnd(this.args, this.state, this.control, { model: this.model });
      if (result instanceof Promise) await result;
    }
  }

  /** Checks a dataset against the batch sizes and the model before any work. */
  private checkDataset(dataset: Dataset, name: string, training: boolean): void {
    this.dataLoader(dataset, name, training); // the DataLoader checks the batch size
    const shapes = exampleShapes(dataset);
    if (shapes && !this.dataCollator) this.model.checkExampleShapes?.(shapes, name);
  }

  private dataLoader(dataset: Dataset, name: string, training: boolean): DataLoader {
    const args = this.args;
    return new DataLoader(dataset, {
      batchSize: training ? args.perDeviceTrainBatchSize : args.perDeviceEvalBatchSize,
      shuffle: training,
      dropLast: args.dataloaderDropLast,
      seed: this.dataSeed,
      collator: this.dataCollator,
      name,
    });
  }

  /** HF's step arithmetic: update steps per epoch, max steps, epochs and sample count. */
  private trainingLength(loader: DataLoader) {
    const args = this.args;
    const accumulation = args.gradientAccumulationSteps;
    const totalBatch = args.perDeviceTrainBatchSize * accumulation;
    const batches = loader.length;
    if (batches !== undefined) {
      const updateStepsPerEpoch = Math.max(
        Math.floor(batches / accumulation) + (batches % accumulation > 0 ? 1 : 0),
        1,
      );
      if (args.maxSteps > 0) {
        return {
          maxSteps: args.maxSteps,
          numTrainEpochs: Math.ceil(args.maxSteps / updateStepsPerEpoch),
          updateStepsPerEpoch,
          numTrainSamples: args.maxSteps * totalBatch,
        };
      }
      return {
        maxSteps: Math.ceil(args.numTrainEpochs * updateStepsPerEpoch),
        numTrainEpochs: Math.ceil(args.numTrainEpochs),
        updateStepsPerEpoch,
        numTrainSamples: loader.numExamples! * args.numTrainEpochs,
      };
    }
    if (args.maxSteps > 0) {
      return {
        maxSteps: args.maxSteps,
        numTrainEpochs: Number.MAX_SAFE_INTEGER,
        updateStepsPerEpoch: args.maxSteps,
        numTrainSamples: args.maxSteps * totalBatch,
      };
    }
    throw new Error(
      "trainDataset is a stream with no length, so the number of steps is unknown: set maxSteps in TrainingArguments.",
    );
  }

  private ensureOptimizer(maxSteps: number): void {
    const args = this.args;
    if (!this.optimizer) {
      const variables = this.model.trainableVariables();
      const extra = parseOptimArgs(args.optimArgs);
      this.optimizer = createOptimizer({
        name: args.optim,
        variables,
        decay: variables.map((v) => decaysWeight(v.name)),
        weightDecay: args.weightDecay,
        beta1: args.adamBeta1,
        beta2: args.adamBeta2,
        epsilon: args.adamEpsilon,
        momentum: typeof extra.momentum === "number" ? extra.momentum : 0,
        dampening: typeof extra.dampening === "number" ? extra.dampening : 0,
        nesterov: extra.nesterov === true,
      });
      this.createdOptimizer = true;
      this.callbackHandler.optimizer = this.optimizer;
    }
    if (!this.lrScheduler) {
      this.lrScheduler = new LrScheduler({
        type: args.lrSchedulerType,
        baseLr: args.learningRate,
        warmupSteps: warmupStepsFor(args, maxSteps),
        totalSteps: maxSteps,
        kwargs: args.lrSchedulerKwargs,
      });
      this.createdScheduler = true;
      this.callbackHandler.lrScheduler = this.lrScheduler;
    }
  }

  private resolveCheckpoint(resume: boolean | string | undefined): string | undefined {
    const wanted = resume ?? this.args.resumeFromCheckpoint ?? undefined;
    if (wanted === undefined || wanted === false) return undefined;
    if (wanted === true) {
      const latest = latestCheckpoint(this.args.outputDir);
      if (!latest)
        throw new Error(
          `resumeFromCheckpoint is true but ${this.args.outputDir} holds no checkpoint-<step> folder to resume from.`,
        );
      return latest.path;
    }
    return wanted;
  }

  private applyCheckpoint(
    loaded: LoadedCheckpoint,
    optimizer: Optimizer,
    scheduler: LrScheduler,
  ): void {
    assignModelTensors(this.model, loaded.modelTensors);
    if (loaded.optimizer) optimizer.setState(loaded.optimizer);
    if (loaded.schedulerState) scheduler.loadState(loaded.schedulerState);
    disposeCheckpoint(loaded);
  }

  private async log(logs: Logs): Promise<void> {
    logs.epoch = this.state.epoch;
    this.state.logHistory.push({ ...logs, step: this.state.globalStep });
    this.control = await this.callbackHandler.onLog(this.args, this.state, this.control, { logs });
  }

  /** Evaluates inside training and updates the best metric (HF's `_determine_best_metric`). */
  private async evaluateDuringTraining(): Promise<boolean> {
    const metrics = await this.evaluate();
    const name = this.args.metricForBestModel;
    if (name === null) return false;
    const key = name.startsWith("eval_") ? name : `eval_${name}`;
    const value = metrics[key];
    if (value === undefined) {
      throw new Error(
        `metricForBestModel is "${name}", but the evaluation metrics have no ${key}; they have ${Object.keys(metrics).join(", ")}. Set metricForBestModel to one of them, or return ${key.replace(/^eval_/, "")} from computeMetrics.`,
      );
    }
    const greater = this.args.greaterIsBetter === true;
    const best = this.state.bestMetric ?? (greater ? -Infinity : Infinity);
    if (greater ? value > best : value < best) {
      this.state.bestMetric = value;
      this.state.bestGlobalStep = this.state.globalStep;
      return true;
    }
    if (this.state.bestMetric === null) this.state.bestMetric = best;
    return false;
  }

  private async saveCheckpoint(loop: LoopState): Promise<void> {
    const args = this.args;
    const state = this.state;
    const outputDir = args.outputDir;
    const step = state.globalStep;
    const previousBest = state.bestModelCheckpoint;
    if (
      state.bestGlobalStep !== null &&
      (args.saveStrategy !== "best" || state.bestGlobalStep === step)
    ) {
      const best = join(outputDir, `${CHECKPOINT_PREFIX}${state.bestGlobalStep}`);
      if (state.bestGlobalStep === step || existsSync(best)) state.bestModelCheckpoint = best;
    }
    state.setStatefulCallbacks([...this.callbackHandler.callbacks, this.control]);
    const optimizer = this.optimizer!;
    const scheduler = this.lrScheduler!;
    const rng: RngState = { data_seed: this.dataSeed, generator: "splitmix32-fisher-yates" };
    try {
      await writeCheckpointDir(outputDir, step, async (dir) => {
        await saveModelFiles(dir, this.model);
        if (!args.saveOnlyModel) {
          await saveOptimizerFiles(dir, optimizer);
          writeJson(dir, FILES.scheduler, scheduler.state());
          writeJson(dir, FILES.rngState, rng);
          writeJson(dir, FILES.loopState, loop);
        }
        state.saveToJson(join(dir, FILES.trainerState));
        args.saveToJson(join(dir, FILES.trainingArgs));
      });
    } catch (error) {
      // No checkpoint was written: the best one is still the one before.
      state.bestModelCheckpoint = previousBest;
      throw error;
    }
    rotateCheckpoints(
      outputDir,
      args.saveTotalLimit,
      state.bestModelCheckpoint,
      this.onDeleteFailure,
    );
  }

  /**
   * An old checkpoint that cannot be deleted (a file held open: EBUSY, EPERM) does not stop the
   * training, as HF's rmtree(ignore_errors=True); it is reported once per training.
   */
  private readonly onDeleteFailure: DeleteErrorHandler = (path, error) => {
    if (this.deleteFailureReported) return;
    this.deleteFailureReported = true;
    const reason = (error as { code?: string }).code ?? (error as Error).message;
    logger.warn(
      `Could not delete the old checkpoint ${path} (${reason}); training goes on. Delete it by hand once it is free. Further checkpoints that cannot be deleted in this training are not reported.`,
    );
  };

  /** The evaluation loop; on an error (model, callback, computeMetrics) every tensor is freed. */
  private async evaluationLoop(
    loader: DataLoader,
    prefix: string,
    lossOnly: boolean,
  ): Promise<EvalLoopOutput> {
    const handler = this.callbackHandler;
    handler.evalDataloader = loader;
    const iterator = loader.epoch(0);
    let lossSum: tf.Scalar | undefined;
    const predictions: tf.Tensor[] = [];
    const labels: tf.Tensor[] = [];
    let batch: Batch | null | undefined;
    let allPredictions: tf.Tensor | undefined;
    let allLabels: tf.Tensor | null = null;
    let numSamples = 0;
    let returned = false;
    try {
      for (;;) {
        batch = await iterator.next();
        if (!batch) break;
        const inputs = batch;
        const size = Object.values(inputs)[0]!.shape[0]!;
        const labelTensor = inputs.y ?? inputs.labels;
        tf.tidy(() => {
          if (!lossOnly) predictions.push(tf.keep(this.model.predict(inputs)));
          if (labelTensor) {
            const weighted = tf.mul(this.model.computeLoss(inputs, { training: false }), size);
            const next = tf.keep(lossSum ? tf.add(lossSum, weighted) : weighted) as tf.Scalar;
            lossSum?.dispose();
            lossSum = next;
          }
        });
        const keepLabels = !lossOnly && labelTensor !== undefined;
        if (keepLabels) labels.push(labelTensor);
        for (const tensor of Object.values(inputs))
          if (!(keepLabels && tensor === labelTensor)) tensor.dispose();
        batch = undefined;
        numSamples += size;
        this.control = await handler.onPredictionStep(this.args, this.state, this.control);
      }
      allPredictions = predictions.length > 0 ? tf.concat(predictions) : tf.tensor([]);
      allLabels = labels.length > 0 ? tf.concat(labels) : null;
      tf.dispose([...predictions, ...labels]);
      predictions.length = 0;
      labels.length = 0;
      let metrics: Logs = {};
      if (this.computeMetrics && !lossOnly && allLabels) {
        metrics = checkMetrics(
          await this.computeMetrics({ predictions: allPredictions, labelIds: allLabels }),
        );
      }
      if (lossSum) metrics[`${prefix}_loss`] = lossSum.dataSync()[0]! / numSamples;
      for (const key of Object.keys(metrics)) {
        if (key.startsWith(`${prefix}_`)) continue;
        const value = metrics[key]!;
        delete metrics[key];
        metrics[`${prefix}_${key}`] = value;
      }
      returned = true;
      return { predictions: allPredictions, labelIds: allLabels, metrics, numSamples };
    } finally {
      // A batch that was being evaluated: its label tensor may be in `labels` already (a
      // second dispose does nothing).
      if (batch) tf.dispose(Object.values(batch));
      tf.dispose([...predictions, ...labels]);
      lossSum?.dispose();
      if (!returned) tf.dispose([allPredictions ?? [], allLabels ?? []]);
    }
  }
}

function adaptModel(model: unknown, loss: string | LossFunction | undefined): TrainableModel {
  if (isLayersModel(model)) {
    const lossSpec = loss ?? (typeof model.loss === "string" ? model.loss : undefined);
    if (!lossSpec)
      throw new Error(
        'A tf.LayersModel needs a loss: pass loss: "meanSquaredError" (or another Keras loss name, or a function) to the Trainer.',
      );
    return new LayersModelAdapter(model, lossSpec);
  }
  if (isTrainableModel(model)) return model;
  throw new Error(
    "model must be a tf.LayersModel or implement TrainableModel (trainableVariables, computeLoss, predict).",
  );
}

/** The error for a trainable variable that got no gradient (tfjs would fail later with "got null"). */
function missingGradient(variable: tf.Variable): never {
  throw new Error(
    variable.trainable
      ? `The trainable variable "${variable.name}" got no gradient: it is not used by computeLoss; make it non-trainable or leave it out of trainableVariables().`
      : `The variable "${variable.name}" is not trainable (trainable: false) but trainableVariables() returns it; leave it out of trainableVariables(), or make it trainable and use it in computeLoss.`,
  );
}

/** The global norm of the gradients (before clipping) and the clipped gradients, as torch's clip_grad_norm_. */
function clipByGlobalNorm(
  grads: readonly tf.Tensor[],
  maxNorm: number,
  scalars: ScalarCache,
): [tf.Scalar, tf.Tensor[]] {
  return tf.tidy(() => {
    const squares = grads.map((g) => tf.sum(tf.square(g)));
    const norm = tf.sqrt(squares.length === 1 ? squares[0]! : tf.addN(squares)) as tf.Scalar;
    const coefficient = tf.minimum(
      tf.div(scalars.get(maxNorm), tf.add(norm, scalars.get(1e-6))),
      scalars.get(1),
    );
    return [norm, grads.map((g) => tf.mul(g, coefficient))] as [tf.Scalar, tf.Tensor[]];
  });
}

/** HF's speed_metrics: runtime rounded to 4 places, rates to 3. */
function speedMetrics(
  split: string,
  startTime: number,
  numSamples?: number,
  numSteps?: number,
): Logs {
  const runtime = (performance.now() - startTime) / 1000;
  const result: Logs = { [`${split}_runtime`]: round(runtime, 4) };
  if (runtime === 0) return result;
  if (numSamples !== undefined)
    result[`${split}_samples_per_second`] = round(numSamples / runtime, 3);
  if (numSteps !== undefined) result[`${split}_steps_per_second`] = round(numSteps / runtime, 3);
  return result;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function checkMetrics(metrics: unknown): Logs {
  if (typeof metrics !== "object" || metrics === null || Array.isArray(metrics))
    throw new Error(
      `computeMetrics must return an object of numbers such as { accuracy: 0.9 }; it returned ${String(metrics)}.`,
    );
  const out: Logs = {};
  for (const [key, value] of Object.entries(metrics)) {
    if (typeof value !== "number") {
      throw new Error(
        `computeMetrics returned ${key}: ${JSON.stringify(value)} (${typeof value}); every metric must be a number. Read tensors with .dataSync()[0] or .arraySync().`,
      );
    }
    out[key] = value;
  }
  return out;
}
