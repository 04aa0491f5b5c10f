/** Locations: a URI with a scheme (file://, s3://, ...) or a plain local path. */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { redactText } from "@trainkit/core/plugin";

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//;

/** The URI's scheme in lower case, or "file" for a plain local path. */
export function schemeOf(uri: string): string {
  return SCHEME.exec(uri)?.[1]?.toLowerCase() ?? "file";
}

/** The local folder of a `file://` URI or a plain path, absolute and without a trailing slash. */
export function localPathOf(uri: string): string {
  if (!SCHEME.test(uri)) return resolve(uri);
  if (schemeOf(uri) !== "file") throw new Error(`${redactText(uri)} is not a local location.`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`"${redactText(uri)}" is not a valid file:// URI.`);
  }
  if (url.hostname !== "" && url.hostname !== "localhost")
    throw new Error(
      `"${redactText(uri)}" names the host "${url.hostname}"; a file:// URI must be absolute, e.g. file:///data/checkpoints (three slashes).`,
    );
  return resolve(fileURLToPath(url));
}
