// DagsHub configuration without a server: URI parsing (URL rules, trailing slash, missing →
// dagshub.init() hint), availability reasons, credentials, branch/host checks, commit batching.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TrainingArguments } from "@trainkit/core";
import { selectPlugins } from "@trainkit/core/plugin";
import { describe, expect, test } from "vitest";
import dagshub, {
  DagsHubCallback,
  checkBranch,
  dagshubAvailability,
  parseDagsHubHost,
  parseDagsHubTrackingUri,
  planCommits,
  repoAuthFromEnv,
  resolveDagsHubConfig,
} from "../src/index.js";
import { captureLogger } from "./helpers.js";

const creds = { MLFLOW_TRACKING_USERNAME: "alice", MLFLOW_TRACKING_PASSWORD: "tok-123456" };

describe("the tracking URI", () => {
  test("https://dagshub.com/<owner>/<repo>.mlflow gives owner and repo; the base is kept as is", () => {
    expect(parseDagsHubTrackingUri("https://dagshub.com/a/b.mlflow")).toEqual({
      ok: true,
      baseUrl: "https://dagshub.com/a/b.mlflow",
      owner: "a",
      repo: "b",
    });
  });

  test("a trailing slash is ignored (HF gets an empty repo name)", () => {
    const parsed = parseDagsHubTrackingUri("https://dagshub.com/a/b.mlflow/");
    expect(parsed).toMatchObject({
      ok: true,
      baseUrl: "https://dagshub.com/a/b.mlflow",
      repo: "b",
    });
  });

  test("URL rules, not the OS path separator: backslashes, dots in the repo name, credentials, a port", () => {
    expect(parseDagsHubTrackingUri("https://dagshub.com\\a\\b.mlflow")).toMatchObject({
      ok: true,
      owner: "a",
      repo: "b",
    });
    expect(parseDagsHubTrackingUri("https://dagshub.com/a/my.repo.mlflow")).toMatchObject({
      ok: true,
      repo: "my.repo",
    });
    const withCreds = parseDagsHubTrackingUri("https://u:p%40ss@dagshub.com/a/b.mlflow");
    expect(withCreds).toEqual({
      ok: true,
      baseUrl: "https://dagshub.com/a/b.mlflow",
      owner: "a",
      repo: "b",
      credentials: { username: "u", password: "p@ss" },
    });
    expect(parseDagsHubTrackingUri("http://127.0.0.1:8080/o/r.mlflow")).toMatchObject({
      ok: true,
      baseUrl: "http://127.0.0.1:8080/o/r.mlflow",
      owner: "o",
      repo: "r",
    });
  });

  test("missing: the reason says what dagshub.init() would have set", () => {
    for (const missing of [undefined, "", "  "]) {
      const parsed = parseDagsHubTrackingUri(missing);
      expect(parsed.ok).toBe(false);
      const reason = (parsed as { reason: string }).reason;
      expect(reason).toMatch(/MLFLOW_TRACKING_URI is not set/);
      expect(reason).toMatch(/dagshub\.init\(\)/);
      expect(reason).toMatch(/MLFLOW_TRACKING_USERNAME/);
      expect(reason).toMatch(/MLFLOW_TRACKING_PASSWORD/);
      expect(reason).toMatch(/https:\/\/dagshub\.com\/<owner>\/<repo>\.mlflow/);
    }
  });

  test("anything else is refused with the expected shape", () => {
    for (const uri of [
      "https://dagshub.com/a/b",
      "https://dagshub.com/b.mlflow",
      "https://dagshub.com/a/.mlflow",
      "https://dagshub.com/",
      "file:///tmp/mlruns",
      "./mlruns",
      "https://dagshub.com/a/b.mlflow?x=1",
    ]) {
      const parsed = parseDagsHubTrackingUri(uri);
      expect(parsed.ok, uri).toBe(false);
      expect((parsed as { reason: string }).reason, uri).toMatch(/<owner>\/<repo>\.mlflow/);
    }
  });
});

describe("availability", () => {
  test("reasons: nothing set, not a DagsHub URI, no credentials, disabled", () => {
    const none = dagshubAvailability({});
    expect(none).toMatchObject({ available: false });
    expect((none as { reason: string }).reason).toMatch(/dagshub\.init\(\)/);
    const notDagsHub = dagshubAvailability({
      MLFLOW_TRACKING_URI: "http://127.0.0.1:5000",
      ...creds,
    });
    expect((notDagsHub as { reason: string }).reason).toMatch(/<owner>\/<repo>\.mlflow/);
    const noCreds = dagshubAvailability({ MLFLOW_TRACKING_URI: "https://dagshub.com/a/b.mlflow" });
    expect((noCreds as { reason: string }).reason).toMatch(
      /MLFLOW_TRACKING_USERNAME=.*MLFLOW_TRACKING_PASSWORD=/,
    );
    const uri = { MLFLOW_TRACKING_URI: "https://dagshub.com/a/b.mlflow" };
    expect(dagshubAvailability({ ...uri, ...creds })).toEqual({ available: true });
    expect(dagshubAvailability({ ...uri, MLFLOW_TRACKING_TOKEN: "t-123456" })).toEqual({
      available: true,
    });
    expect(
      dagshubAvailability({ MLFLOW_TRACKING_URI: "https://u:p@dagshub.com/a/b.mlflow" }),
    ).toEqual({ available: true });
    for (const value of ["TRUE", "true", "True"]) {
      const off = dagshubAvailability({ ...uri, ...creds, DISABLE_MLFLOW_INTEGRATION: value });
      expect((off as { reason: string }).reason).toMatch(/DISABLE_MLFLOW_INTEGRATION/);
    }
    // Only TRUE disables (HF).
    expect(dagshubAvailability({ ...uri, ...creds, DISABLE_MLFLOW_INTEGRATION: "1" })).toEqual({
      available: true,
    });
  });

  test("DISABLE_MLFLOW_INTEGRATION=TRUE: the callback refuses to be built; an explicit dagshub request fails with the reason", async () => {
    const env = {
      MLFLOW_TRACKING_URI: "https://dagshub.com/a/b.mlflow",
      ...creds,
      DISABLE_MLFLOW_INTEGRATION: "TRUE",
    };
    expect(() => new DagsHubCallback({ env })).toThrow(
      /DagsHubCallback: DISABLE_MLFLOW_INTEGRATION/,
    );
    const context = {
      args: new TrainingArguments({ outputDir: mkdtempSync(join(tmpdir(), "dh-")) }),
      env,
      logger: captureLogger().logger,
    };
    const cwd = mkdtempSync(join(tmpdir(), "dh-app-"));
    await expect(selectPlugins(["dagshub"], context, { cwd, plugins: [dagshub] })).rejects.toThrow(
      /"dagshub".*DISABLE_MLFLOW_INTEGRATION/,
    );
    const all = await selectPlugins("all", context, { cwd, plugins: [dagshub] });
    expect(all.plugins).toEqual([]);
    expect(all.summary).toMatch(/skipped: dagshub \(DISABLE_MLFLOW_INTEGRATION/);
  });

  test("the plugin checks the configuration when it creates the callback (a bad BRANCH fails before training)", async () => {
    const env = { MLFLOW_TRACKING_URI: "https://dagshub.com/a/b.mlflow", ...creds, BRANCH: "a..b" };
    const context = {
      args: new TrainingArguments({ outputDir: mkdtempSync(join(tmpdir(), "dh-")) }),
      env,
      logger: captureLogger().logger,
    };
    expect(() => dagshub.create(context)).toThrow(/BRANCH is not a valid git branch name/);
  });
});

describe("the repo upload's settings", () => {
  const uri = {
    ok: true as const,
    baseUrl: "https://dagshub.com/a/b.mlflow",
    owner: "a",
    repo: "b",
  };

  test("credentials: DAGSHUB_USERNAME+DAGSHUB_PASSWORD (Basic), else DAGSHUB_USER_TOKEN (Bearer), else MLflow's", async () => {
    const fallback = { kind: "basic", header: () => "Basic fallback" };
    const basic = repoAuthFromEnv(
      { DAGSHUB_USERNAME: "bob", DAGSHUB_PASSWORD: "pw", DAGSHUB_USER_TOKEN: "tok" },
      fallback,
    );
    expect(await basic!.header()).toBe(`Basic ${Buffer.from("bob:pw").toString("base64")}`);
    expect(await repoAuthFromEnv({ DAGSHUB_USER_TOKEN: "tok" }, fallback)!.header()).toBe(
      "Bearer tok",
    );
    expect(await repoAuthFromEnv({ DAGSHUB_USERNAME: "bob" }, fallback)!.header()).toBe(
      "Basic fallback",
    );
    expect(repoAuthFromEnv({})).toBeUndefined();
  });

  test("defaults, env and options: flag off, branch main, host dagshub.com, 50 files / 100 MiB per commit", () => {
    const defaults = resolveDagsHubConfig({}, {}, uri);
    expect(defaults).toMatchObject({
      owner: "a",
      repo: "b",
      host: "https://dagshub.com",
      branch: "main",
      logRepoArtifacts: false,
      maxFilesPerCommit: 50,
      maxBytesPerCommit: 100 * 1024 * 1024,
    });
    for (const value of ["1", "on", "YES", "true"])
      expect(
        resolveDagsHubConfig({ HF_DAGSHUB_LOG_ARTIFACTS: value }, {}, uri).logRepoArtifacts,
      ).toBe(true);
    expect(resolveDagsHubConfig({ HF_DAGSHUB_LOG_ARTIFACTS: "no" }, {}, uri).logRepoArtifacts).toBe(
      false,
    );
    const fromEnv = resolveDagsHubConfig(
      { BRANCH: "exp/1", DAGSHUB_CLIENT_HOST: "https://dh.example.com/" },
      {},
      uri,
    );
    expect(fromEnv).toMatchObject({ branch: "exp/1", host: "https://dh.example.com" });
    const options = resolveDagsHubConfig(
      { BRANCH: "exp" },
      { branch: "other", logRepoArtifacts: true, maxFilesPerCommit: 3 },
      uri,
    );
    expect(options).toMatchObject({
      branch: "other",
      logRepoArtifacts: true,
      maxFilesPerCommit: 3,
    });
    expect(() => resolveDagsHubConfig({}, { maxFilesPerCommit: 0 }, uri)).toThrow(
      /maxFilesPerCommit/,
    );
  });

  test("host and branch checks name the variable", () => {
    expect(parseDagsHubHost(undefined)).toBe("https://dagshub.com");
    expect(() => parseDagsHubHost("https://u:secret@dagshub.com")).toThrow(
      /must not hold credentials/,
    );
    expect(() => parseDagsHubHost("ftp://dagshub.com")).toThrow(
      /DAGSHUB_CLIENT_HOST must be an http/,
    );
    expect(() => parseDagsHubHost("not a url")).toThrow(/DAGSHUB_CLIENT_HOST/);
    for (const bad of ["a b", "a..b", "/a", "a/", "a.lock", "a~1", "a:b", "a//b"])
      expect(() => checkBranch(bad), bad).toThrow(/BRANCH/);
    expect(checkBranch("feature/x-1")).toBe("feature/x-1");
  });

  test("commits: at most N files and M bytes each, in order; a file over M goes alone", () => {
    const files = Array.from({ length: 120 }, (_, i) => ({ i, size: 1 }));
    expect(planCommits(files, 50, 1000).map((c) => c.length)).toEqual([50, 50, 20]);
    expect(
      planCommits(files, 50, 1000)
        .flat()
        .map((f) => f.i),
    ).toEqual(files.map((f) => f.i));
    const sized = [{ size: 40 }, { size: 40 }, { size: 40 }, { size: 500 }, { size: 10 }];
    expect(planCommits(sized, 50, 100).map((c) => c.map((f) => f.size))).toEqual([
      [40, 40],
      [40],
      [500],
      [10],
    ]);
    expect(planCommits([], 50, 100)).toEqual([]);
  });
});
