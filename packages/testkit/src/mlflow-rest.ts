// Read-back helpers over MLflow's REST API, so tests assert on what the server really stored.
// Deliberately independent of the code under test (plain global fetch, no retries).

export interface MetricPoint {
  key: string;
  /** "NaN" / "Infinity" / "-Infinity" from the wire are turned into the numbers. */
  value: number;
  timestamp: number;
  step: number;
}

export interface MlflowExperiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  tags?: { key: string; value: string }[];
  [field: string]: unknown;
}

export interface MlflowRunInfo {
  run_id: string;
  run_name?: string;
  experiment_id: string;
  status: string;
  start_time?: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: string;
  [field: string]: unknown;
}

export interface MlflowRunView {
  info: MlflowRunInfo;
  data: {
    params: Record<string, string>;
    tags: Record<string, string>;
    /** Latest value per key (see metricHistory for every point). */
    metrics: Record<string, number>;
  };
}

export interface ArtifactFile {
  /** Relative to the run's artifact root, e.g. "checkpoint-2/model.json". */
  path: string;
  size: number;
}

export interface MlflowRest {
  /** undefined when no experiment has that name. */
  getExperimentByName(name: string): Promise<MlflowExperiment | undefined>;
  getRun(runId: string): Promise<MlflowRunView>;
  /** Every run matching (all pages), newest first. */
  searchRuns(experimentIds: string[], filter?: string): Promise<MlflowRunView[]>;
  /** Every point logged for `key`, following next_page_token. */
  metricHistory(runId: string, key: string, pageSize?: number): Promise<MetricPoint[]>;
  /** The history of every metric key of the run. */
  allMetricPoints(runId: string): Promise<Record<string, MetricPoint[]>>;
  /** Every file under `path` (default: the artifact root), recursively, sorted by path. */
  listArtifacts(runId: string, path?: string): Promise<ArtifactFile[]>;
  /** One artifact's bytes, through the server's mlflow-artifacts proxy. */
  downloadArtifact(runId: string, path: string): Promise<Buffer>;
}

interface WireKeyValue {
  key: string;
  value: string;
}
interface WireMetric {
  key: string;
  value: number | string;
  timestamp: number | string;
  step?: number | string;
}
interface WireRun {
  info: MlflowRunInfo;
  data?: { params?: WireKeyValue[]; tags?: WireKeyValue[]; metrics?: WireMetric[] };
}

const API = "/api/2.0/mlflow";

const toPoint = (m: WireMetric): MetricPoint => ({
  key: m.key,
  value: Number(m.value),
  timestamp: Number(m.timestamp),
  step: Number(m.step ?? 0),
});

function toRunView(run: WireRun): MlflowRunView {
  const pairs = (list: WireKeyValue[] | undefined) =>
    Object.fromEntries((list ?? []).map(({ key, value }) => [key, value]));
  return {
    info: run.info,
    data: {
      params: pairs(run.data?.params),
      tags: pairs(run.data?.tags),
      metrics: Object.fromEntries((run.data?.metrics ?? []).map((m) => [m.key, Number(m.value)])),
    },
  };
}

/** "mlflow-artifacts:/1/<run>/artifacts" or "mlflow-artifacts://host:port/1/<run>/artifacts" -> "1/<run>/artifacts". */
function proxiedArtifactPath(artifactUri: string): string {
  const match = /^mlflow-artifacts:(?:\/\/[^/]+)?\/(.*)$/.exec(artifactUri);
  if (!match?.[1]) {
    throw new Error(`artifact_uri ${artifactUri} is not served by the tracking server`);
  }
  return match[1].replace(/\/+$/, "");
}

const encodePath = (path: string) => path.split("/").map(encodeURIComponent).join("/");

export function mlflowRest(url: string): MlflowRest {
  const base = url.replace(/\/+$/, "");

  async function call<T>(path: string, init?: RequestInit): Promise<T> {
    const response = await fetch(base + path, init);
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`MLflow ${init?.method ?? "GET"} ${path} -> ${response.status}: ${text}`);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }
  const get = <T>(path: string, query: Record<string, string | number>) =>
    call<T>(
      `${path}?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`,
    );
  const post = <T>(path: string, body: unknown) =>
    call<T>(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  async function getRun(runId: string): Promise<MlflowRunView> {
    const { run } = await get<{ run: WireRun }>(`${API}/runs/get`, { run_id: runId });
    return toRunView(run);
  }

  async function metricHistory(runId: string, key: string, pageSize = 25_000) {
    const points: MetricPoint[] = [];
    let pageToken: string | undefined;
    do {
      const page = await get<{ metrics?: WireMetric[]; next_page_token?: string }>(
        `${API}/metrics/get-history`,
        {
          run_id: runId,
          metric_key: key,
          max_results: pageSize,
          ...(pageToken ? { page_token: pageToken } : {}),
        },
      );
      points.push(...(page.metrics ?? []).map(toPoint));
      pageToken = page.next_page_token;
    } while (pageToken);
    return points;
  }

  async function listArtifacts(runId: string, path?: string): Promise<ArtifactFile[]> {
    const { files = [] } = await get<{
      files?: { path: string; is_dir?: boolean; file_size?: number | string }[];
    }>(`${API}/artifacts/list`, { run_id: runId, ...(path ? { path } : {}) });
    const found: ArtifactFile[] = [];
    for (const file of files) {
      if (file.is_dir) found.push(...(await listArtifacts(runId, file.path)));
      else found.push({ path: file.path, size: Number(file.file_size ?? 0) });
    }
    return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  return {
    async getExperimentByName(name) {
      const response = await fetch(
        `${base}${API}/experiments/get-by-name?${new URLSearchParams({ experiment_name: name })}`,
      );
      if (response.status === 404) return undefined;
      const text = await response.text();
      if (!response.ok)
        throw new Error(`MLflow get-by-name ${name} -> ${response.status}: ${text}`);
      return (JSON.parse(text) as { experiment: MlflowExperiment }).experiment;
    },

    getRun,

    async searchRuns(experimentIds, filter) {
      const runs: MlflowRunView[] = [];
      let pageToken: string | undefined;
      do {
        const page = await post<{ runs?: WireRun[]; next_page_token?: string }>(
          `${API}/runs/search`,
          {
            experiment_ids: experimentIds,
            max_results: 1000,
            ...(filter ? { filter } : {}),
            ...(pageToken ? { page_token: pageToken } : {}),
          },
        );
        runs.push(...(page.runs ?? []).map(toRunView));
        pageToken = page.next_page_token;
      } while (pageToken);
      return runs;
    },

    metricHistory,

    async allMetricPoints(runId) {
      const keys = Object.keys((await getRun(runId)).data.metrics);
      const histories = await Promise.all(keys.map((key) => metricHistory(runId, key)));
      return Object.fromEntries(keys.map((key, i) => [key, histories[i] ?? []]));
    },

    listArtifacts,

    async downloadArtifact(runId, path) {
      const { info } = await getRun(runId);
      const artifactPath = `${proxiedArtifactPath(info.artifact_uri)}/${path}`;
      const response = await fetch(
        `${base}/api/2.0/mlflow-artifacts/artifacts/${encodePath(artifactPath)}`,
      );
      if (!response.ok) {
        throw new Error(
          `MLflow artifact ${artifactPath} -> ${response.status}: ${await response.text()}`,
        );
      }
      return Buffer.from(await response.arrayBuffer());
    },
  };
}
