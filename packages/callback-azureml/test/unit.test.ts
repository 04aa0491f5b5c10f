// Azure ML configuration without a server: the workspace URI (azureml:// → https://, private
// link https://, loopback http), the token sources and refresh, availability reasons.
import { describe, expect, test, vi } from "vitest";
import azureml, {
  AzureMLCallback,
  azureMlAuth,
  azureMlAvailability,
  azureMlPlugin,
  parseAzureMlTrackingUri,
} from "../src/index.js";

const PATH =
  "/mlflow/v1.0/subscriptions/0000-1111/resourceGroups/my-rg/providers/Microsoft.MachineLearningServices/workspaces/my-ws";
const AZUREML = `azureml://westeurope.api.azureml.ms${PATH}`;

describe("the workspace tracking URI", () => {
  test("azureml:// becomes https:// with host and path kept", () => {
    expect(parseAzureMlTrackingUri(AZUREML)).toEqual({
      ok: true,
      baseUrl: `https://westeurope.api.azureml.ms${PATH}`,
      subscription: "0000-1111",
      resourceGroup: "my-rg",
      workspace: "my-ws",
      converted: true,
    });
    expect(parseAzureMlTrackingUri(`${AZUREML}/`)).toMatchObject({
      ok: true,
      baseUrl: `https://westeurope.api.azureml.ms${PATH}`,
    });
  });

  test("an https:// URI (private link: another host) is taken as it is; Azure's casing of the route is not required", () => {
    const privateLink = `https://ws-guid.workspace.westeurope.privatelink.api.azureml.ms${PATH}`;
    expect(parseAzureMlTrackingUri(privateLink)).toMatchObject({
      ok: true,
      baseUrl: privateLink,
      converted: false,
    });
    expect(
      parseAzureMlTrackingUri(privateLink.replace("resourceGroups", "resourcegroups")),
    ).toMatchObject({
      ok: true,
      resourceGroup: "my-rg",
    });
  });

  test("http:// only for a loopback host; the test switch turns azureml:// into http:// for loopback hosts only", () => {
    expect(parseAzureMlTrackingUri(`http://127.0.0.1:5000${PATH}`)).toMatchObject({
      ok: true,
      baseUrl: `http://127.0.0.1:5000${PATH}`,
    });
    const clear = parseAzureMlTrackingUri(`http://westeurope.api.azureml.ms${PATH}`);
    expect((clear as { reason: string }).reason).toMatch(/https:\/\/ only/);
    expect(
      parseAzureMlTrackingUri(`azureml://127.0.0.1:5000${PATH}`, { insecureHttp: true }),
    ).toMatchObject({
      ok: true,
      baseUrl: `http://127.0.0.1:5000${PATH}`,
      converted: true,
    });
    const remote = parseAzureMlTrackingUri(AZUREML, { insecureHttp: true });
    expect((remote as { reason: string }).reason).toMatch(
      /TRAINKIT_AZUREML_INSECURE_HTTP is for tests/,
    );
  });

  test("unset, other schemes, other paths: the reason says what to set", () => {
    const unset = parseAzureMlTrackingUri(undefined);
    expect((unset as { reason: string }).reason).toMatch(
      /MLFLOW_TRACKING_URI is not set.*az ml workspace show/,
    );
    for (const uri of [
      "http://127.0.0.1:5000",
      "https://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s",
      "file:///tmp/mlruns",
      "./mlruns",
      `${AZUREML}?x=1`,
      "azureml://u:p@westeurope.api.azureml.ms" + PATH,
    ]) {
      const parsed = parseAzureMlTrackingUri(uri);
      expect(parsed.ok, uri).toBe(false);
    }
  });
});

describe("the token", () => {
  test("MLFLOW_TRACKING_TOKEN as Bearer; the token option wins; no source: none", async () => {
    expect(await azureMlAuth({ MLFLOW_TRACKING_TOKEN: "env-tok" })!.header()).toBe(
      "Bearer env-tok",
    );
    expect(
      await azureMlAuth({ MLFLOW_TRACKING_TOKEN: "env-tok" }, { token: "opt" })!.header(),
    ).toBe("Bearer opt");
    expect(azureMlAuth({})).toBeUndefined();
    // Username/password are not Azure ML credentials.
    expect(
      azureMlAuth({ MLFLOW_TRACKING_USERNAME: "u", MLFLOW_TRACKING_PASSWORD: "p" }),
    ).toBeUndefined();
    expect(azureMlAuth({ MLFLOW_TRACKING_TOKEN: "env-tok" })!.refresh).toBeUndefined();
  });

  test("getToken: asked for the first token lazily, and again on refresh (after a 401)", async () => {
    let n = 0;
    const getToken = vi.fn(async () => `tok-${++n}`);
    const auth = azureMlAuth({}, { getToken })!;
    expect(getToken).not.toHaveBeenCalled();
    expect(await auth.header()).toBe("Bearer tok-1");
    expect(await auth.header()).toBe("Bearer tok-1");
    expect(await auth.refresh!()).toBe(true);
    expect(await auth.header()).toBe("Bearer tok-2");
    expect(getToken).toHaveBeenCalledTimes(2);
    // With a token given, getToken is only the refresh.
    const both = azureMlAuth({ MLFLOW_TRACKING_TOKEN: "env" }, { getToken: async () => "fresh" })!;
    expect(await both.header()).toBe("Bearer env");
    await both.refresh!();
    expect(await both.header()).toBe("Bearer fresh");
    const empty = azureMlAuth({}, { getToken: async () => "" })!;
    await expect(empty.header()).rejects.toThrow(/getToken\(\) returned no token/);
  });
});

describe("availability", () => {
  test("a workspace URI and a token source; DISABLE_MLFLOW_INTEGRATION does not apply", () => {
    const none = azureml.isAvailable({ env: {} } as never);
    expect(none.available).toBe(false);
    expect((none as { reason: string }).reason).toMatch(/MLFLOW_TRACKING_URI is not set/);
    const noToken = azureMlAvailability({ MLFLOW_TRACKING_URI: AZUREML });
    expect((noToken as { reason: string }).reason).toMatch(
      /no Azure ML token: set MLFLOW_TRACKING_TOKEN/,
    );
    expect(
      azureMlAvailability({ MLFLOW_TRACKING_URI: AZUREML, MLFLOW_TRACKING_TOKEN: "t" }),
    ).toEqual({
      available: true,
    });
    expect(
      azureMlAvailability({
        MLFLOW_TRACKING_URI: AZUREML,
        MLFLOW_TRACKING_TOKEN: "t",
        DISABLE_MLFLOW_INTEGRATION: "TRUE",
      }),
    ).toEqual({ available: true });
    // A plain MLflow server is not a workspace.
    const plain = azureMlAvailability({
      MLFLOW_TRACKING_URI: "https://mlflow.example.com",
      MLFLOW_TRACKING_TOKEN: "t",
    });
    expect(plain.available).toBe(false);
    // A token source given to the plugin in code.
    const withGetToken = azureMlPlugin({ getToken: async () => "t" });
    expect(withGetToken.isAvailable({ env: { MLFLOW_TRACKING_URI: AZUREML } } as never)).toEqual({
      available: true,
    });
    expect(withGetToken.name).toBe("azure_ml");
  });

  test("the callback is built with DISABLE_MLFLOW_INTEGRATION=TRUE (MLflow's switch only)", () => {
    const callback = new AzureMLCallback({
      env: {
        MLFLOW_TRACKING_URI: AZUREML,
        MLFLOW_TRACKING_TOKEN: "t",
        DISABLE_MLFLOW_INTEGRATION: "TRUE",
      },
    });
    expect(callback.checkConfig().trackingUri).toBe(`https://westeurope.api.azureml.ms${PATH}`);
    expect(callback.checkConfig().logParams).toBe(false);
    expect(callback.checkConfig().logArtifacts).toBe(false);
    expect(() =>
      new AzureMLCallback({ env: { MLFLOW_TRACKING_URI: AZUREML } }).checkConfig(),
    ).toThrow(/Azure ML: no token/);
  });
});
