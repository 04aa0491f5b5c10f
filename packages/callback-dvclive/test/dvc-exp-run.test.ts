// Inside a DVC pipeline: `dvc exp run` runs a stage that logs with Live. As dvclive does there,
// no `dvc exp save` of its own; the run folder and dvc.yaml are `git add`ed so that the
// experiment DVC commits holds them.
import { createRequire } from "node:module";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, test } from "vitest";
import { dvcRepo, experimentRevs, packageDir, run, tempDir, venvBin } from "./helpers.js";

const work = tempDir("exp-run");
afterAll(() => rmSync(work, { recursive: true, force: true }));

test("dvc exp run: the experiment holds the metrics, params and plots Live wrote", () => {
  const repo = dvcRepo(tempDir("repo", work));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm")).href;
  const live = pathToFileURL(join(packageDir, "src/index.ts")).href;
  writeFileSync(
    join(repo, "train.mts"),
    `import { Live } from ${JSON.stringify(live)};
const live = new Live();
live.logParams(new Map([["lr", 0.1]]));
for (const loss of [0.5, 0.25]) {
  live.logMetric("loss", loss);
  live.nextStep();
}
await live.end();
`,
  );
  writeFileSync(
    join(repo, "dvc.yaml"),
    `stages:\n  train:\n    cmd: ${process.execPath} --import ${tsx} train.mts\n    deps:\n    - train.mts\n`,
  );
  run("git", ["add", "-A"], repo);
  run("git", ["commit", "-q", "-m", "pipeline"], repo);
  run(join(venvBin, "dvc"), ["exp", "run", "--name", "from-pipeline", "--quiet"], repo);

  const refs = run("git", ["for-each-ref", "--format=%(refname)", "refs/exps"], repo)
    .split("\n")
    .filter((r) => /^refs\/exps\/[0-9a-f]{2}\/[0-9a-f]+\//.test(r));
  expect(refs).toHaveLength(1); // DVC's experiment, not a second one saved by Live
  expect(refs[0]).toMatch(/\/from-pipeline$/);
  const files = run("git", ["ls-tree", "-r", "--name-only", refs[0]!], repo).split("\n");
  expect(files).toEqual(
    expect.arrayContaining([
      "dvc.yaml",
      "dvclive/metrics.json",
      "dvclive/params.yaml",
      "dvclive/plots/metrics/loss.tsv",
    ]),
  );
  const experiment = experimentRevs(repo).find((rev) => rev.name === "from-pipeline");
  expect(experiment?.data.metrics).toEqual({
    "dvclive/metrics.json": { data: { loss: 0.25, step: 1 } },
  });
  expect(experiment?.data.params).toEqual({ "dvclive/params.yaml": { data: { lr: 0.1 } } });
});
