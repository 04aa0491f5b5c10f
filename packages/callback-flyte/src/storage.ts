/**
 * The storage adapter: how folders get to and from a checkpoint or deck location. trainkit
 * ships the `file://` (and plain local path) backend; object stores (s3://, gs://, abfs://, ...)
 * are an adapter the user supplies, built on their cloud SDK and the pod's credentials.
 */
import { redactText } from "@trainkit/core/plugin";
import { fileStorage } from "./file-storage.js";
import { localPathOf, schemeOf } from "./uri.js";

export interface PutOptions {
  /**
   * true: afterwards `uri` holds exactly the folder's files (stale ones from an earlier put
   * are gone), replaced as atomically as the backend allows. false: the files are added or
   * overwritten and everything else under `uri` is kept.
   */
  replace: boolean;
}

export interface StorageAdapter {
  /** Copies the contents of `localDir` to the prefix `uri` (no extra folder level). */
  put(localDir: string, uri: string, options: PutOptions): Promise<void>;
  /** Copies everything under the prefix `uri` into `localDir` (created if missing). */
  get(uri: string, localDir: string): Promise<void>;
  /** Whether the prefix `uri` holds anything. */
  exists(uri: string): Promise<boolean>;
}

/** Adapters by URI scheme, e.g. `{ s3: myS3Adapter }`; `file` (and plain paths) are built in. */
export type StorageAdapters = Readonly<Record<string, StorageAdapter>>;

/** Checks a location and returns the adapter for it; throws a message that says what to do. */
export function storageFor(uri: string, adapters: StorageAdapters = {}): StorageAdapter {
  const scheme = schemeOf(uri);
  const adapter = adapters[scheme];
  if (adapter) {
    if (
      typeof adapter.put !== "function" ||
      typeof adapter.get !== "function" ||
      typeof adapter.exists !== "function"
    )
      throw new TypeError(
        `The storage adapter for "${scheme}://" must have put(localDir, uri, options), get(uri, localDir) and exists(uri) methods.`,
      );
    return adapter;
  }
  if (scheme === "file") {
    localPathOf(uri); // a bad file:// URI fails here, before any work
    return fileStorage;
  }
  throw new Error(
    `No storage adapter for "${scheme}://" (${redactText(uri)}). trainkit copies checkpoints itself only to file:// URIs and local paths; for an object store, pass an adapter built on your cloud SDK: createFlytePlugin({ storage: { ${JSON.stringify(scheme)}: adapter } }) (or new FlyteCallback({ storage: ... }), restoreFlyteCheckpoint({ storage: ... })). See "Object stores" in the @trainkit/callback-flyte README.`,
  );
}
