// Makes sure .venv holds the pinned Python peers (tools/python/requirements.txt): created on
// first use, reinstalled when the requirements change. Run by `pnpm test` and `pnpm bench`.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const requirements = join(root, "tools/python/requirements.txt");
const venv = join(root, ".venv");
const python = join(venv, "bin/python");
const stamp = join(venv, ".requirements.sha256");
const digest = createHash("sha256").update(readFileSync(requirements)).digest("hex");

if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, "utf8") === digest)
  process.exit(0);
console.log("Installing the pinned Python peers into .venv (tools/python/requirements.txt) ...");
if (!existsSync(python)) execFileSync("python3", ["-m", "venv", venv], { stdio: "inherit" });
execFileSync(
  python,
  ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements],
  {
    stdio: "inherit",
  },
);
writeFileSync(stamp, digest);
