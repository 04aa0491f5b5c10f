import { existsSync, lstatSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { REDACTED, isSecretKey } from "@trainkit/core/plugin";

/** Env values shorter than this are not taken as secrets on their name alone. */
const MIN_AUTO_SECRET_LENGTH = 6;

/**
 * The secrets to look for: the ones given, and the values of env variables whose names say they
 * hold one (`*_TOKEN`, `*_API_KEY`, `*PASSWORD*`, ... as the plugin SDK's isSecretKey) and that
 * are at least 6 characters long.
 */
export function collectSecrets(
  given: readonly string[],
  env: Record<string, string | undefined>,
): string[] {
  const secrets = new Set(given);
  for (const [key, value] of Object.entries(env))
    if (value && value.length >= MIN_AUTO_SECRET_LENGTH && isSecretKey(key)) secrets.add(value);
  return [...secrets];
}

/** How a secret can appear in text: as is, or escaped for JSON or a URL. */
function textForms(secret: string): string[] {
  return [...new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])];
}

/** How a secret can appear in bytes: its text forms in UTF-8, and the secret in UTF-16. */
function byteForms(secret: string): Buffer[] {
  return [
    ...textForms(secret).map((form) => Buffer.from(form, "utf8")),
    Buffer.from(secret, "utf16le"),
  ];
}

/** A name for a secret that does not show it: its position in `secrets` (1-based). */
export function secretLabel(index: number): string {
  return `secret #${index + 1}`;
}

export class SecretMatcher {
  readonly #secrets: readonly string[];
  readonly #text: string[][];
  readonly #bytes: Buffer[][];

  constructor(secrets: readonly string[]) {
    this.#secrets = secrets;
    this.#text = secrets.map(textForms);
    this.#bytes = secrets.map(byteForms);
  }

  get size(): number {
    return this.#secrets.length;
  }

  /** The indexes of the secrets found in `data` (text or bytes). */
  find(data: string | Buffer): number[] {
    const found: number[] = [];
    if (typeof data === "string") {
      this.#text.forEach((forms, i) => {
        if (forms.some((form) => data.includes(form))) found.push(i);
      });
    } else {
      this.#bytes.forEach((forms, i) => {
        if (forms.some((form) => data.includes(form))) found.push(i);
      });
    }
    return found;
  }

  /** `text` with every secret replaced by "<REDACTED>". */
  mask(text: string): string {
    let out = text;
    for (const forms of this.#text) for (const form of forms) out = out.split(form).join(REDACTED);
    return out;
  }

  /** A short, masked excerpt of `text` around the first secret found in it. */
  excerpt(text: string, index: number): string {
    const form = this.#text[index]!.find((f) => text.includes(f)) ?? "";
    const at = text.indexOf(form);
    const start = Math.max(0, at - 40);
    const end = at < 0 ? 80 : at + form.length + 40;
    const piece = this.mask(text.slice(start, end)).replace(/\s+/g, " ").trim();
    return `${start > 0 ? "…" : ""}${piece}${end < text.length ? "…" : ""}`;
  }
}

export interface FileFinding {
  file: string;
  secrets: number[];
}

/**
 * Every regular file under `dirs`, recursively (symbolic links are not followed), read as bytes
 * and searched for the secrets.
 */
export function scanDirs(dirs: readonly string[], matcher: SecretMatcher): FileFinding[] {
  const findings: FileFinding[] = [];
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    let stats;
    try {
      stats = lstatSync(path);
    } catch {
      return; // removed while scanning
    }
    if (stats.isDirectory()) {
      for (const name of readdirSync(path).sort()) visit(join(path, name));
    } else if (stats.isFile()) {
      const found = matcher.find(readFileSync(path));
      if (found.length > 0) findings.push({ file: path, secrets: found });
    }
  };
  for (const dir of dirs) if (existsSync(dir)) visit(dir);
  return findings;
}
