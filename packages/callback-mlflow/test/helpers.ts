// Shared test helpers: a delivery context for driving the transport by hand, a logger that
// records, and a header-recording HTTP server.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { DeliveryContext } from "@trainkit/core/plugin";

export interface Captured {
  logger: { info(message: string): void; warn(message: string): void };
  infos: string[];
  warnings: string[];
}

export function captureLogger(): Captured {
  const infos: string[] = [];
  const warnings: string[] = [];
  return {
    logger: { info: (m) => void infos.push(m), warn: (m) => void warnings.push(m) },
    infos,
    warnings,
  };
}

/** A DeliveryContext whose meta lives in memory (what the outbox does with meta.json). */
export function deliveryContext(
  meta: Record<string, unknown>,
  logger = captureLogger().logger,
): DeliveryContext & { current(): Record<string, unknown> } {
  let current = { ...meta };
  const controller = new AbortController();
  return {
    get meta() {
      return current;
    },
    saveMeta(patch: Record<string, unknown>) {
      current = { ...current, ...patch };
    },
    signal: controller.signal,
    logger,
    current: () => current,
  };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP server on 127.0.0.1 that records requests and answers with `respond`. */
export async function recordingServer(
  respond: (request: RecordedRequest) => {
    status: number;
    body?: string;
    headers?: Record<string, string>;
  },
): Promise<{ url: string; requests: RecordedRequest[]; close(): Promise<void>; server: Server }> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      requests.push(request);
      const answer = respond(request);
      res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
      res.end(answer.body ?? "{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
