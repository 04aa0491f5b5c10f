// Every publishable package packs into a tarball that installs and imports in a fresh folder,
// with working type declarations: what a user gets from the registry.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, test } from "vitest";

const root = resolve(import.meta.dirname, "../../..");
const work = mkdtempSync(join(tmpdir(), "trainkit-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const packages = readdirSync(join(root, "packages"))
  .map((dir) => join(root, "packages", dir))
  .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) }))
  .filter(({ manifest }) => !manifest.private);

/** Packs a package once; the tarball's path. */
const tarballs = new Map<string, string>();
function pack(dir: string): string {
  let tarball = tarballs.get(dir);
  if (!tarball) {
    const out = execFileSync("pnpm", ["pack", "--pack-destination", work], {
      cwd: dir,
      encoding: "utf8",
    });
    tarball = out.trim().split("\n").pop()!.trim();
    tarballs.set(dir, tarball);
  }
  return tarball;
}

/** The workspace packages a package needs (dependencies and peers named @trainkit/*), packed. */
function workspaceTarballs(manifest: Record<string, Record<string, string>>): string[] {
  const names = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).filter(
    (n) => n.startsWith("@trainkit/"),
  );
  return names.map((name) => pack(packages.find((p) => p.manifest.name === name)!.dir));
}

describe.each(packages)("$manifest.name", ({ dir, manifest }) => {
  test("packs, installs and imports in a fresh folder", () => {
    const tarball = pack(dir);
    const listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" });
    expect(listing).toContain("package/dist/index.js");
    expect(listing).toContain("package/dist/index.d.ts");
    expect(listing).toContain("package/README.md");
    expect(listing).not.toMatch(/package\/(src|test)\//);

    const app = mkdtempSync(join(work, "app-"));
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "app", private: true, type: "module" }),
    );
    // With the workspace packages it needs, as the registry would provide them.
    execFileSync(
      "npm",
      ["install", "--no-audit", "--no-fund", tarball, ...workspaceTarballs(manifest)],
      { cwd: app },
    );

    const exportsSeen = execFileSync(
      "node",
      [
        "--input-type=module",
        "-e",
        `const m = await import(${JSON.stringify(manifest.name)}); console.log(Object.keys(m).sort().join(","));`,
      ],
      { cwd: app, encoding: "utf8" },
    );
    expect(exportsSeen.trim().length).toBeGreaterThan(0);
    if (manifest.name === "@trainkit/core") {
      expect(exportsSeen).toContain("TrainerCallback");
      // The declarations type-check a user's file.
      writeFileSync(
        join(app, "use.ts"),
        [
          `import { TrainerCallback, TrainingArguments, type TrainerState } from "@trainkit/core";`,
          `class MyCallback extends TrainerCallback {`,
          `  override onStepEnd(_a: TrainingArguments, state: TrainerState) { return void state.globalStep; }`,
          `}`,
          `export const cb: TrainerCallback = new MyCallback();`,
        ].join("\n"),
      );
      // TensorFlow.js's own declarations do not pass skipLibCheck: false, so the check is that
      // no error comes from our declarations or from the user's file.
      let diagnostics = "";
      try {
        execFileSync(
          join(root, "node_modules/.bin/tsc"),
          [
            ...["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext"],
            ...[
              "--skipLibCheck",
              "false",
              "--types",
              "node",
              "--typeRoots",
              join(root, "node_modules/@types"),
            ],
            "use.ts",
          ],
          { cwd: app, encoding: "utf8" },
        );
      } catch (error) {
        diagnostics = (error as { stdout: string }).stdout;
      }
      const ours = diagnostics.split("\n").filter((line) => /@trainkit\/|^use\.ts/.test(line));
      expect(ours).toEqual([]);
    }
  });
});
