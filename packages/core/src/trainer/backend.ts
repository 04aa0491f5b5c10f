import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { BACKEND_NAMES, type BackendName } from "../args/options.js";
import { logger } from "../util/logger.js";

/** The package that provides each backend; the cpu backend ships with @tensorflow/tfjs. */
const BACKEND_PACKAGES: Record<BackendName, string | undefined> = {
  tensorflow: "@tensorflow/tfjs-node",
  wasm: "@tensorflow/tfjs-backend-wasm",
  cpu: undefined,
};

let chosen: Promise<BackendName> | undefined;
let why: string | undefined;

/** Why the current backend was chosen ("as requested", "the fastest installed; …"), once chosen. */
export function backendReason(): string | undefined {
  return why;
}

/**
 * Picks the fastest TensorFlow.js backend that is installed: tfjs-node (native), else wasm,
 * else cpu. `requested` (or TRAINKIT_BACKEND) forces one. Logs the choice once. Call it
 * before building a model so the model's weights start on that backend.
 */
export function selectBackend(requested: BackendName | null = null): Promise<BackendName> {
  const wanted = requested ?? envBackend();
  if (chosen && (!wanted || tf.getBackend() === wanted)) return chosen;
  chosen = choose(wanted);
  chosen.catch(() => (chosen = undefined));
  return chosen;
}

function envBackend(): BackendName | null {
  const value = process.env.TRAINKIT_BACKEND?.trim();
  if (!value) return null;
  if (!(BACKEND_NAMES as readonly string[]).includes(value)) {
    throw new Error(
      `TRAINKIT_BACKEND is "${value}"; use one of ${BACKEND_NAMES.join(", ")}, or unset it.`,
    );
  }
  return value as BackendName;
}

async function choose(wanted: BackendName | null): Promise<BackendName> {
  const candidates = wanted ? [wanted] : BACKEND_NAMES;
  const missing: string[] = [];
  for (const name of candidates) {
    const pkg = BACKEND_PACKAGES[name];
    if (pkg && !(await importIfInstalled(pkg))) {
      missing.push(pkg);
      continue;
    }
    if (!(await tf.setBackend(name))) continue;
    await tf.ready();
    why = wanted
      ? "as requested"
      : missing.length > 0
        ? `the fastest installed; not installed: ${missing.join(", ")}`
        : "the fastest installed";
    logger.info(`TensorFlow.js backend: ${name} (${why}).`);
    return name;
  }
  const pkg = wanted ? BACKEND_PACKAGES[wanted] : undefined;
  throw new Error(
    `The TensorFlow.js backend "${wanted}" is not available.` +
      (pkg ? ` Install it in your project: npm install ${pkg}` : ""),
  );
}

/**
 * Imports a backend package if the application has it: resolved from trainkit (an optional
 * peer dependency) or, failing that, from the application's own folder.
 */
async function importIfInstalled(pkg: string): Promise<boolean> {
  try {
    await import(pkg);
    return true;
  } catch (error) {
    if (!isNotFound(error, pkg)) throw error;
  }
  try {
    const fromApp = createRequire(join(process.cwd(), "package.json")).resolve(pkg);
    await import(pathToFileURL(fromApp).href);
    return true;
  } catch (error) {
    if (isNotFound(error, pkg)) return false;
    throw error;
  }
}

/**
 * Whether an import failed because the package is not installed: Node's codes, and the
 * "Could not resolve" / "Failed to resolve" of bundlers and Vite-based test runners.
 */
function isNotFound(error: unknown, pkg?: string): boolean {
  const { code, message = "" } = error as { code?: string; message?: string };
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") return true;
  return (
    /Cannot find (module|package)|Could not resolve|Failed to (resolve|load)/.test(message) &&
    (!pkg || message.includes(pkg))
  );
}
