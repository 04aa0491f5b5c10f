// `pnpm --filter @trainkit/bench run bench:mlflow`: only the MLflow benchmark.
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs";
import { benchMlflow } from "./mlflow.js";

await tf.setBackend("wasm");
await benchMlflow(Number(process.env.BENCH_ROUNDS ?? 5));
