// Unit tests of the pure parts: Python str() rendering, key rules, params, batching, auth,
// configuration and error classification.
import { TrainingArguments } from "@trainkit/core";
import { DeliveryError } from "@trainkit/core/plugin";
import { describe, expect, test } from "vitest";
import {
  BATCH_LIMITS,
  MlflowCallback,
  MlflowClient,
  MlflowConfigError,
  MlflowRequestError,
  PyFloat,
  argsDict,
  authFromEnv,
  buildParams,
  classifyStatus,
  encodeMetricValue,
  httpKnobsFromEnv,
  invalidKeyReason,
  keyListValue,
  mlflowAvailability,
  mlflowBatchSize,
  metricRecord,
  paramRecord,
  parsePythonNumbers,
  parseRetryAfter,
  parseTrackingUri,
  posixNormpath,
  pythonFloat,
  pythonStr,
  resolveMlflowConfig,
  retryFromKnobs,
  sanitizeMetricKey,
  tagRecord,
  tlsFromEnv,
  toDeliveryError,
  type MlflowRecord,
} from "../src/index.js";

describe("Python str() of param values (spec 1.5)", () => {
  test.each([
    [null, "None"],
    [undefined, "None"],
    [true, "True"],
    [false, "False"],
    [1, "1"],
    [-7, "-7"],
    [new PyFloat(1), "1.0"],
    [new PyFloat(3), "3.0"],
    [5e-5, "5e-05"],
    [0.1, "0.1"],
    [1e-4, "0.0001"],
    [1.5e-7, "1.5e-07"],
    [123.456, "123.456"],
    [new PyFloat(1e16), "1e+16"],
    [new PyFloat(1.2345e17), "1.2345e+17"],
    [new PyFloat(0), "0.0"],
    [Infinity, "inf"],
    [-Infinity, "-inf"],
    [NaN, "nan"],
    [2 ** 70, "1180591620717411303424"],
    ["text", "text"],
    ["", ""],
    [[1, 2], "[1, 2]"],
    [[], "[]"],
    [{}, "{}"],
    [{ a: 1 }, "{'a': 1}"],
    [["a", "it's", 'say "hi"', "both ' \""], `['a', "it's", 'say "hi"', 'both \\' "']`],
    [
      { a: [true, null, new PyFloat(2)], b: { c: "x" } },
      "{'a': [True, None, 2.0], 'b': {'c': 'x'}}",
    ],
    [["line\nbreak", "tab\t", "back\\slash"], "['line\\nbreak', 'tab\\t', 'back\\\\slash']"],
  ])("%j -> %s", (value, expected) => {
    expect(pythonStr(value)).toBe(expected);
  });

  test("floats are Python's shortest round-trip repr", () => {
    for (const [value, text] of [
      [0.30000000000000004, "0.30000000000000004"],
      [1e22, "1e+22"],
      [123456789012345.6, "123456789012345.6"],
      [9999999999999998, "9999999999999998.0"],
      [0.00001, "1e-05"],
      [-2.5, "-2.5"],
    ] as const)
      expect(pythonFloat(value)).toBe(text);
  });

  test("parsePythonNumbers keeps floats written as floats", () => {
    const parsed = parsePythonNumbers(
      '{"a": 1.0, "b": 2, "c": 5e-05, "d": NaN, "e": [1, 2.0], "s": "1.0", "f": -Infinity}',
    ) as Record<string, unknown>;
    expect(pythonStr(parsed.a)).toBe("1.0");
    expect(pythonStr(parsed.b)).toBe("2");
    expect(pythonStr(parsed.c)).toBe("5e-05");
    expect(pythonStr(parsed.d)).toBe("nan");
    expect(pythonStr(parsed.e)).toBe("[1, 2.0]");
    expect(pythonStr(parsed.s)).toBe("1.0");
    expect(pythonStr(parsed.f)).toBe("-inf");
  });
});

describe("keys (spec 1.4 / 1.6)", () => {
  test.each([
    ["eval_acc(%)", "eval_acc___"],
    ["f1@5", "f1_5"],
    ["a:b c/d", "a:b c/d"],
    ["loss", "loss"],
    ["train/loss", "train/loss"],
    ["é", "_"],
    ["a😀b", "a_b"],
  ])("sanitise %s -> %s", (key, expected) => {
    expect(sanitizeMetricKey(key)).toBe(expected);
  });

  test.each([
    "",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "/a",
    "..",
    "../a",
    ".",
    "eval/",
    "x".repeat(251),
    "a*b",
    // Python's \w is letters, digits and _: no combining marks, no other connectors.
    "e\u0301",
    "a\u203fb",
    "a\u0903b",
  ])("%j is rejected", (key) => {
    expect(invalidKeyReason(key)).toBeDefined();
  });

  test.each(["loss", "a:b c/d", "eval/loss", "a.b.c", "x".repeat(250), "a..b", "über"])(
    "%j is accepted",
    (key) => {
      expect(invalidKeyReason(key)).toBeUndefined();
    },
  );

  test("posixNormpath is Python's", () => {
    expect(posixNormpath("")).toBe(".");
    expect(posixNormpath("a//b")).toBe("a/b");
    expect(posixNormpath("a/")).toBe("a");
    expect(posixNormpath("//a")).toBe("//a");
    expect(posixNormpath("///a")).toBe("/a");
    expect(posixNormpath("a/../..")).toBe("..");
    expect(posixNormpath("/..")).toBe("/");
  });
});

describe("params", () => {
  test("TrainingArguments render as HF's str(): floats, ints, None, lists", () => {
    const args = new TrainingArguments({ outputDir: "/tmp/out", reportTo: ["mlflow"] });
    const dict = argsDict(args);
    const { params } = buildParams(dict, undefined);
    const map = Object.fromEntries(params);
    expect(map.learning_rate).toBe("5e-05");
    expect(map.weight_decay).toBe("0.0");
    expect(map.max_grad_norm).toBe("1.0");
    expect(map.num_train_epochs).toBe("3.0");
    expect(map.adam_epsilon).toBe("1e-08");
    expect(map.seed).toBe("42");
    expect(map.run_name).toBe("None");
    expect(map.logging_nan_inf_filter).toBe("True");
    expect(map.report_to).toBe("['mlflow']");
    expect(map.output_dir).toBe("/tmp/out");
    // HF's field order (toJSON), not the sorted file order.
    expect(params.map(([k]) => k)).toEqual(Object.keys(args.toJSON()));
  });

  test("secrets are masked: *_token as HF, *_password/*_key/*_secret, URL credentials", () => {
    const dict = argsDict({
      hub_token: "hf_abcdefgh",
      db_password: "pw-123456",
      wandb_api_key: "k-123456",
      client_secret: "s-123456",
      signing_key: "sk-123456",
      max_tokens: 5,
      endpoint: "https://user:hunter2@example.com/x",
      nested: { access_token: "tok-123456" },
    });
    expect(dict.hub_token).toBe("<HUB_TOKEN>");
    expect(dict.db_password).toBe("<REDACTED>");
    expect(dict.wandb_api_key).toBe("<REDACTED>");
    expect(dict.client_secret).toBe("<REDACTED>");
    expect(dict.signing_key).toBe("<REDACTED>");
    expect(dict.max_tokens).toBe(5);
    expect(String(dict.endpoint)).not.toContain("hunter2");
    expect(JSON.stringify(dict.nested)).not.toContain("tok-123456");
  });

  test("model config first, args win; flattening; truncation; invalid keys; max params", () => {
    const built = buildParams(
      { a: 1, shared: "from-args", long: "x".repeat(7000), "bad//key": 1 },
      { shared: "from-config", cfg: { inner: { deep: 2 }, empty: {} } },
      { flatten: true },
    );
    expect(built.params.map(([k]) => k)).toEqual([
      "shared",
      "cfg.inner.deep",
      "cfg.empty",
      "a",
      "long",
    ]);
    const map = Object.fromEntries(built.params);
    expect(map.shared).toBe("from-args");
    expect(map["cfg.empty"]).toBe("{}");
    expect(map.long).toHaveLength(6000);
    expect(built.truncated).toEqual(["long"]);
    expect(built.invalid.map((i) => i.key)).toEqual(["bad//key"]);

    const capped = buildParams({ a: 1, b: "y".repeat(6001), c: 3 }, undefined, { maxLogParams: 1 });
    expect(capped.params).toEqual([["a", "1"]]);
    expect(capped.truncated).toEqual([]);
    expect(capped.omitted).toBe(2);

    const unflattened = buildParams({ cfg: { a: 1 } }, undefined);
    expect(unflattened.params).toEqual([["cfg", "{'a': 1}"]]);
  });

  test("the truncated-params tag stays within MLflow's tag limit", () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `some_long_param_name_${i}`);
    const value = keyListValue(keys);
    expect(value.length).toBeLessThanOrEqual(5000);
    expect(value.endsWith(", ...")).toBe(true);
    expect(keyListValue(["a", "b"])).toBe("a, b");
  });
});

describe("records", () => {
  test("NaN and ±Infinity are the strings protobuf JSON uses", () => {
    expect(encodeMetricValue(NaN)).toBe("NaN");
    expect(encodeMetricValue(Infinity)).toBe("Infinity");
    expect(encodeMetricValue(-Infinity)).toBe("-Infinity");
    expect(encodeMetricValue(1.5)).toBe(1.5);
    expect(metricRecord("loss", NaN, 3, 1000)).toEqual({
      t: "m",
      k: "loss",
      v: "NaN",
      ts: 1000,
      s: 3,
    });
  });
});

describe("batching (spec 1.4 limits)", () => {
  const metrics = (n: number, from = 0): MlflowRecord[] =>
    Array.from({ length: n }, (_, i) => metricRecord(`m${(from + i) % 7}`, i, i, 1000));
  const params = (n: number, prefix = "p"): MlflowRecord[] =>
    Array.from({ length: n }, (_, i) => paramRecord(`${prefix}${i}`, String(i)));
  const tags = (n: number): MlflowRecord[] =>
    Array.from({ length: n }, (_, i) => tagRecord(`t${i}`, String(i)));

  test("1000 metrics per batch", () => {
    expect(mlflowBatchSize(metrics(999))).toBe(999);
    expect(mlflowBatchSize(metrics(1000))).toBe(1000);
    expect(mlflowBatchSize(metrics(1001))).toBe(1000);
    expect(mlflowBatchSize(metrics(5000))).toBe(1000);
  });

  test("100 params, 100 tags per batch", () => {
    expect(mlflowBatchSize(params(100))).toBe(100);
    expect(mlflowBatchSize(params(101))).toBe(100);
    expect(mlflowBatchSize(params(250))).toBe(100);
    expect(mlflowBatchSize(tags(101))).toBe(100);
    expect(mlflowBatchSize([...params(60), ...tags(100), ...params(60, "q")])).toBe(200);
  });

  test("1000 items in all", () => {
    // 100 params + 100 tags + 900 metrics: the 1000th item ends the batch.
    const mixed = [...params(100), ...tags(100), ...metrics(900)];
    expect(mlflowBatchSize(mixed)).toBe(1000);
    expect(mlflowBatchSize([...metrics(950), ...params(100)])).toBe(1000);
  });

  test("1 MB of body", () => {
    const big = Array.from({ length: 100 }, (_, i) => paramRecord(`p${i}`, "é".repeat(5990)));
    // Each param is ~12 KB of UTF-8: 1 MB fits about 83 of them.
    const n = mlflowBatchSize(big);
    expect(n).toBeGreaterThan(70);
    expect(n).toBeLessThan(100);
    const body = JSON.stringify({
      run_id: "x".repeat(32),
      params: big
        .slice(0, n)
        .map((r) => ({ key: (r as { k: string }).k, value: (r as { v: string }).v })),
    });
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(BATCH_LIMITS.bytes);
    const one = JSON.stringify({
      run_id: "x".repeat(32),
      params: big
        .slice(0, n + 1)
        .map((r) => ({ key: (r as { k: string }).k, value: (r as { v: string }).v })),
    });
    expect(Buffer.byteLength(one)).toBeGreaterThan(BATCH_LIMITS.bytes - 400);
  });

  test("a param or tag key is never twice in a batch", () => {
    expect(
      mlflowBatchSize([paramRecord("a", "1"), paramRecord("b", "1"), paramRecord("a", "2")]),
    ).toBe(2);
    expect(mlflowBatchSize([tagRecord("a", "1"), tagRecord("a", "2")])).toBe(1);
  });

  test("artifacts, status and end records go alone and end a batch", () => {
    const end = { t: "end", status: "FINISHED", ts: 1 } as const;
    const artifact = { t: "a", dir: "/x", src: "f", path: "checkpoint-1/f" } as const;
    expect(mlflowBatchSize([end, ...metrics(3)])).toBe(1);
    expect(mlflowBatchSize([artifact, artifact])).toBe(1);
    expect(mlflowBatchSize([...metrics(3), end, ...metrics(3)])).toBe(3);
    expect(mlflowBatchSize([{ t: "s", status: "RUNNING" }, ...metrics(2)])).toBe(1);
  });
});

describe("configuration", () => {
  test("only http(s) tracking URIs; the reason says what to set", () => {
    const none = mlflowAvailability({});
    expect(none.available).toBe(false);
    expect(!none.available && none.reason).toMatch(/MLFLOW_TRACKING_URI/);
    for (const uri of ["file:///tmp/mlruns", "sqlite:///mlflow.db", "./mlruns", "databricks"]) {
      const result = mlflowAvailability({ MLFLOW_TRACKING_URI: uri });
      expect(result.available).toBe(false);
      expect(!result.available && result.reason).toMatch(/http\(s\)/);
    }
    expect(mlflowAvailability({ MLFLOW_TRACKING_URI: "http://127.0.0.1:5000" })).toEqual({
      available: true,
    });
    expect(
      mlflowAvailability({
        MLFLOW_TRACKING_URI: "http://127.0.0.1:5000",
        DISABLE_MLFLOW_INTEGRATION: "true",
      }).available,
    ).toBe(false);
    expect(
      mlflowAvailability({ MLFLOW_TRACKING_URI: "http://h", DISABLE_MLFLOW_INTEGRATION: "1" })
        .available,
    ).toBe(true);
  });

  test("a tracking URI with a query string or a fragment is refused", () => {
    for (const uri of [
      "http://h:5000/?token=abc",
      "http://h:5000/#x",
      "http://h:5000/p?",
      "http://h/#",
    ]) {
      const parsed = parseTrackingUri(uri);
      expect(parsed.ok, uri).toBe(false);
      expect(!parsed.ok && parsed.reason).toMatch(/query string or a fragment/);
      expect(!parsed.ok && parsed.reason).not.toContain("abc");
    }
  });

  test("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=0 becomes a small positive first delay", () => {
    expect(retryFromKnobs(httpKnobsFromEnv({ MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: "0" }))).toEqual({
      baseMs: 100,
    });
  });

  test("credentials are taken out of the URI; a path prefix is kept", () => {
    const parsed = parseTrackingUri("https://alice:s3cr%40t@dagshub.com/u/r.mlflow/");
    expect(parsed).toEqual({
      ok: true,
      baseUrl: "https://dagshub.com/u/r.mlflow",
      credentials: { username: "alice", password: "s3cr@t" },
    });
  });

  test("auth: Basic (username+password) beats the URI's credentials, which beat Bearer", async () => {
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
    const env = {
      MLFLOW_TRACKING_USERNAME: "u",
      MLFLOW_TRACKING_PASSWORD: "p",
      MLFLOW_TRACKING_TOKEN: "tok",
    };
    expect(await authFromEnv(env)?.header()).toBe(basic("u", "p"));
    expect(await authFromEnv(env, { username: "x", password: "y" })?.header()).toBe(
      basic("u", "p"),
    );
    expect(await authFromEnv({ MLFLOW_TRACKING_TOKEN: "tok" })?.header()).toBe("Bearer tok");
    expect(
      await authFromEnv(
        { MLFLOW_TRACKING_TOKEN: "tok" },
        { username: "x", password: "y" },
      )?.header(),
    ).toBe(basic("x", "y"));
    expect(
      await authFromEnv({ MLFLOW_TRACKING_USERNAME: "u", MLFLOW_TRACKING_TOKEN: "tok" })?.header(),
    ).toBe("Bearer tok");
    expect(authFromEnv({})).toBeUndefined();
  });

  test("MLFLOW_TAGS must be a JSON object; the error names the variable", () => {
    const base = { MLFLOW_TRACKING_URI: "http://127.0.0.1:5000" };
    expect(() => resolveMlflowConfig({ ...base, MLFLOW_TAGS: "{not json" })).toThrow(/MLFLOW_TAGS/);
    expect(() => resolveMlflowConfig({ ...base, MLFLOW_TAGS: "[1]" })).toThrow(MlflowConfigError);
    const config = resolveMlflowConfig({ ...base, MLFLOW_TAGS: '{"a": 1, "b": true, "c": "x"}' });
    expect(config.tags).toEqual({ a: "1", b: "True", c: "x" });
    // The error never quotes the value (it may hold a secret): the position only.
    for (const bad of ['{"token": s3cret-tok}', '{"token": "s3cret-tok" "x"}']) {
      let message = "";
      try {
        resolveMlflowConfig({ ...base, MLFLOW_TAGS: bad });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/MLFLOW_TAGS .*is not valid JSON \(at position \d+\)/);
      expect(message).not.toContain("s3cret");
    }
  });

  test("options win over env", () => {
    const config = resolveMlflowConfig(
      {
        MLFLOW_TRACKING_URI: "http://env:5000",
        MLFLOW_EXPERIMENT_NAME: "env-exp",
        HF_MLFLOW_LOG_ARTIFACTS: "1",
        MLFLOW_FLATTEN_PARAMS: "TRUE",
        MLFLOW_MAX_LOG_PARAMS: "12",
        MLFLOW_RUN_ID: "abc123",
      },
      { trackingUri: "http://opt:5000", experimentName: "opt-exp", logArtifacts: false },
    );
    expect(config.trackingUri).toBe("http://opt:5000");
    expect(config.experimentName).toBe("opt-exp");
    expect(config.logArtifacts).toBe(false);
    expect(config.flattenParams).toBe(true);
    expect(config.maxLogParams).toBe(12);
    expect(config.runId).toBe("abc123");
    expect(
      resolveMlflowConfig({ MLFLOW_TRACKING_URI: "http://h", MLFLOW_MAX_LOG_PARAMS: "1e3" })
        .maxLogParams,
    ).toBeUndefined();
    expect(() =>
      resolveMlflowConfig({ MLFLOW_TRACKING_URI: "http://h", MLFLOW_RUN_ID: "bad id" }),
    ).toThrow(/MLFLOW_RUN_ID/);
  });

  test("MLflow's HTTP knobs are checked as MLflow does", () => {
    expect(() => httpKnobsFromEnv({ MLFLOW_HTTP_REQUEST_MAX_RETRIES: "11" })).toThrow(
      /MLFLOW_HTTP_REQUEST_MAX_RETRIES must be at most 10/,
    );
    expect(() => httpKnobsFromEnv({ MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: "121" })).toThrow(
      /MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR must be at most 120/,
    );
    expect(() => httpKnobsFromEnv({ MLFLOW_HTTP_REQUEST_TIMEOUT: "soon" })).toThrow(
      /MLFLOW_HTTP_REQUEST_TIMEOUT/,
    );
    const knobs = httpKnobsFromEnv({
      MLFLOW_HTTP_REQUEST_MAX_RETRIES: "3",
      MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: "0.5",
      MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: "0.25",
      MLFLOW_HTTP_REQUEST_TIMEOUT: "7",
    });
    expect(knobs.timeoutMs).toBe(7000);
    expect(retryFromKnobs(knobs)).toEqual({ reportAfter: 3, baseMs: 500, jitter: 0.5 });
    expect(httpKnobsFromEnv({}).timeoutMs).toBe(120_000);
  });

  test("insecure TLS reaches the https agent; DISABLE_MLFLOW_INTEGRATION refuses construction", () => {
    const agentOf = (client: MlflowClient) =>
      (
        client as unknown as {
          http: { defaults: { httpsAgent: { options: Record<string, unknown> } } };
        }
      ).http.defaults.httpsAgent.options;
    expect(
      agentOf(new MlflowClient({ baseUrl: "https://h", tls: { insecure: true } }))
        .rejectUnauthorized,
    ).toBe(false);
    expect(agentOf(new MlflowClient({ baseUrl: "https://h" })).rejectUnauthorized).toBe(true);
    expect(() => new MlflowCallback({ env: { DISABLE_MLFLOW_INTEGRATION: "TRUE" } })).toThrow(
      /DISABLE_MLFLOW_INTEGRATION/,
    );
  });

  test("MLFLOW_TRACKING_INSECURE_TLS takes true/false/1/0 only", () => {
    expect(tlsFromEnv({ MLFLOW_TRACKING_INSECURE_TLS: "true" }).insecure).toBe(true);
    expect(tlsFromEnv({ MLFLOW_TRACKING_INSECURE_TLS: "0" }).insecure).toBe(false);
    expect(() => tlsFromEnv({ MLFLOW_TRACKING_INSECURE_TLS: "yes" })).toThrow(
      /MLFLOW_TRACKING_INSECURE_TLS/,
    );
    expect(() =>
      tlsFromEnv({
        MLFLOW_TRACKING_INSECURE_TLS: "1",
        MLFLOW_TRACKING_SERVER_CERT_PATH: "/ca.pem",
      }),
    ).toThrow(/cannot both be set/);
  });
});

describe("error classification", () => {
  test.each([
    [408, "retry"],
    [429, "retry"],
    [500, "retry"],
    [502, "retry"],
    [503, "retry"],
    [504, "retry"],
    [400, "reject"],
    [409, "reject"],
    [413, "reject"],
    [401, "halt"],
    [403, "halt"],
    [404, "halt"],
    [501, "halt"],
    [302, "halt"],
  ])("HTTP %i -> %s", (status, kind) => {
    expect(classifyStatus(status)).toBe(kind);
  });

  test("Retry-After: seconds or an HTTP date", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter("0.5")).toBe(500);
    const now = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");
    expect(parseRetryAfter("Wed, 21 Oct 2026 07:28:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("garbage")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  test("DeliveryError keeps the kind and Retry-After", () => {
    const error = toDeliveryError(
      new MlflowRequestError("x", { status: 429, kind: "retry", retryAfterMs: 2000 }),
    );
    expect(error).toBeInstanceOf(DeliveryError);
    expect(error.kind).toBe("retry");
    expect(error.retryAfterMs).toBe(2000);
    expect(error.status).toBe(429);
    expect(toDeliveryError(new Error("Bearer abcdef123 failed")).message).not.toContain(
      "abcdef123",
    );
  });

  test("artifact upload URLs follow the run's artifact_uri", () => {
    const client = new MlflowClient({ baseUrl: "https://host/prefix.mlflow" });
    expect(
      client.artifactUploadUrl("mlflow-artifacts:/1/abc/artifacts", "checkpoint-2/a b.json"),
    ).toBe(
      "https://host/prefix.mlflow/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/checkpoint-2/a%20b.json",
    );
    expect(client.artifactUploadUrl("mlflow-artifacts://other:5000/1/abc/artifacts", "f")).toBe(
      "https://other:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/f",
    );
    expect(client.artifactUploadUrl("s3://bucket/1/abc/artifacts", "f")).toBeUndefined();
    expect(client.artifactUploadUrl("file:///tmp/a", "f")).toBeUndefined();
  });
});
