// Child process for the SIGKILL test: trains the big model with a checkpoint at every step
// until it is killed. Usage: node --import tsx checkpoint-writer.ts <outputDir> <maxSteps>
import * as tf from "@tensorflow/tfjs";
import { PrinterCallback, Trainer, setLogger } from "../../src/index.js";
import { BIG_LOSS, bigArgs, bigDataset, buildBigModel } from "./big-model.js";

const [outputDir, maxSteps] = process.argv.slice(2);
if (!outputDir || !maxSteps) throw new Error("usage: checkpoint-writer.ts <outputDir> <maxSteps>");
setLogger({ info() {}, warn() {} });
await tf.setBackend("cpu");
const trainer = new Trainer({
  model: buildBigModel(),
  loss: BIG_LOSS,
  args: bigArgs(outputDir, Number(maxSteps)),
  trainDataset: bigDataset(),
});
trainer.removeCallback(PrinterCallback);
await trainer.train();
process.stdout.write("finished\n");
