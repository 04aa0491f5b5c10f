// An HTTP proxy that sits between a client under test and a real server (e.g. a real MLflow
// tracking server) and injects the failures a remote tracker sees in the wild: 5xx bursts, 429
// with Retry-After, slow responses, connections reset before or after the server applied the
// request, and the whole endpoint going away. Everything it does not inject is forwarded
// faithfully and streamed, so large uploads pass through without being buffered.
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import { freePort } from "./free-port.js";
import { endToEndHeaders } from "./http-headers.js";

export type FaultStatus = 500 | 502 | 503 | 504;

/**
 * What to inject. Every part is optional and they combine. Counted faults are consumed by
 * matching requests in order of arrival, one fault per request, in this order of precedence:
 * resetBeforeForward, statusBurst, tooManyRequests, resetAfterForward. So
 * `{ statusBurst: { status: 503, count: 2 }, tooManyRequests: { count: 1, ... } }` answers the
 * next two matching requests with 503, the third with 429, and forwards the rest.
 */
export interface FaultPlan {
  /** The next `count` matching requests get `status` with an MLflow-style error body, unforwarded. */
  statusBurst?: { status: FaultStatus; count: number; body?: string };
  /** The next `count` matching requests get 429 with `Retry-After: retryAfterSeconds`, unforwarded. */
  tooManyRequests?: { count: number; retryAfterSeconds: number };
  /** Delay before each matching request is answered or forwarded (a slow server). */
  latencyMs?: number;
  /**
   * The next `count` matching requests are forwarded and the server's full response is awaited
   * (the server applied the request), then the client gets only part of it and a TCP reset:
   * the status line and headers plus `bodyBytes` body bytes (default: up to 4, always fewer than
   * the whole body), or nothing at all with `sendHead: false`.
   */
  resetAfterForward?: { count: number; sendHead?: boolean; bodyBytes?: number };
  /** The next `count` matching requests are answered with a TCP reset, unforwarded. */
  resetBeforeForward?: { count: number };
  /** Faults apply only to requests this accepts (path includes the query); others pass through. */
  match?: (method: string, path: string) => boolean;
}

export type FaultKind =
  "statusBurst" | "tooManyRequests" | "latency" | "resetAfterForward" | "resetBeforeForward";

export interface FaultProxyStats {
  /** Requests received. */
  requests: number;
  /** Requests sent on to the server (including those reset after forwarding). */
  forwarded: number;
  /** Faults injected, by kind. */
  injected: Record<string, number>;
}

export interface FaultLogEntry {
  method: string;
  /** Path with query, as the client sent it. */
  path: string;
  /**
   * The status the client got; "reset" when its connection was reset; "refused" when the server
   * behind the proxy could not be reached (then the client's connection is reset, or it gets 502
   * with `upstreamDown: "bad-gateway"`); also "reset" when the client hung up before an answer
   * (e.g. its timeout fired during injected latency); "pending" while in flight.
   */
  status: number | "reset" | "refused" | "pending";
  /** The fault injected into this request, if any ("latency" only when nothing else was). */
  fault?: FaultKind;
}

export interface FaultProxyOptions {
  /** The real server, e.g. "http://127.0.0.1:5000" (a path prefix is kept). */
  target: string;
  /** Port to listen on (127.0.0.1); a free one by default. */
  port?: number;
  /**
   * What the client sees when the server behind the proxy is unreachable: a reset connection
   * (default, what a direct connection to a dead server looks like to an HTTP client) or a 502
   * as a reverse proxy such as nginx would answer.
   */
  upstreamDown?: "reset" | "bad-gateway";
}

export interface FaultProxy {
  /**
   * http://127.0.0.1:<port> plus the target's path prefix, if any. Paths are forwarded as they
   * come, so a client configured with this URL sends the prefix itself.
   */
  url: string;
  port: number;
  /** Replaces the current plan (and its remaining counts). `setFaults({})` clears it. */
  setFaults(plan: FaultPlan): void;
  stats: FaultProxyStats;
  /** Every request seen, in order of arrival; the oldest are dropped beyond 10 000. */
  log: FaultLogEntry[];
  /**
   * Stop listening and close open connections (keep-alive ones included): new connections are
   * refused (ECONNREFUSED). Resolves a moment after, so a client in this process has seen its
   * pooled connections close and really opens a new one.
   */
  down(): Promise<void>;
  /** Listen again on the same port. */
  up(): Promise<void>;
  /** Stop for good. */
  stop(): Promise<void>;
}

const LOG_CAP = 10_000;
const CLOSE_SETTLE_MS = 25;

const ERROR_CODE_BY_STATUS: Record<number, string> = {
  500: "INTERNAL_ERROR",
  502: "TEMPORARILY_UNAVAILABLE",
  503: "TEMPORARILY_UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
  429: "REQUEST_LIMIT_EXCEEDED",
};

function mlflowErrorBody(status: number): string {
  return JSON.stringify({
    error_code: ERROR_CODE_BY_STATUS[status] ?? "INTERNAL_ERROR",
    message: `injected by the trainkit fault proxy (HTTP ${status})`,
  });
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** A TCP RST (ECONNRESET on the client) rather than a polite FIN. */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  socket.resetAndDestroy();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== "http:") throw new Error(`fault proxy: only http targets, got ${target}`);
  const targetPrefix = target.pathname.replace(/\/+$/, "");
  // No keep-alive towards the server: a pooled socket to a server that was restarted would fail
  // the next request with a reset the proxy did not mean to inject.
  const upstreamAgent = new Agent({ keepAlive: false });
  const upstreamDown = options.upstreamDown ?? "reset";

  let plan: FaultPlan = {};
  // Counted faults left, copied from the plan so the caller's object is not mutated.
  let left = { resetBeforeForward: 0, statusBurst: 0, tooManyRequests: 0, resetAfterForward: 0 };
  const stats: FaultProxyStats = { requests: 0, forwarded: 0, injected: {} };
  const log: FaultLogEntry[] = [];

  const countInjected = (kind: FaultKind) => {
    stats.injected[kind] = (stats.injected[kind] ?? 0) + 1;
  };

  /** Decides, at arrival, which counted fault (if any) a matching request consumes. */
  function takeCountedFault(): FaultKind | undefined {
    for (const kind of [
      "resetBeforeForward",
      "statusBurst",
      "tooManyRequests",
      "resetAfterForward",
    ] as const) {
      if (left[kind] > 0) {
        left[kind]--;
        return kind;
      }
    }
    return undefined;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const entry: FaultLogEntry = { method, path, status: "pending" };
    stats.requests++;
    log.push(entry);
    if (log.length > LOG_CAP) log.splice(0, log.length - LOG_CAP);

    const matches = !plan.match || plan.match(method, path);
    const fault = matches ? takeCountedFault() : undefined;
    if (fault) {
      entry.fault = fault;
      countInjected(fault);
    }
    const latencyMs = matches ? (plan.latencyMs ?? 0) : 0;
    if (latencyMs > 0) {
      countInjected("latency");
      entry.fault ??= "latency";
    }
    // Snapshot what this request needs from the plan: setFaults may replace it meanwhile.
    const burst = plan.statusBurst;
    const throttle = plan.tooManyRequests;
    const partial = plan.resetAfterForward;

    const act = () => {
      if (req.socket.destroyed) {
        entry.status = "reset"; // the client gave up during the delay
        return;
      }
      switch (fault) {
        case "resetBeforeForward":
          entry.status = "reset";
          resetSocket(req.socket);
          return;
        case "statusBurst": {
          const status = burst?.status ?? 503;
          sendInjected(req, res, entry, status, {}, burst?.body ?? mlflowErrorBody(status));
          return;
        }
        case "tooManyRequests":
          sendInjected(
            req,
            res,
            entry,
            429,
            { "retry-after": String(throttle?.retryAfterSeconds ?? 1) },
            mlflowErrorBody(429),
          );
          return;
        default:
          forward(req, res, entry, fault === "resetAfterForward" ? (partial ?? {}) : undefined);
      }
    };
    if (latencyMs > 0) void sleep(latencyMs).then(act);
    else act();
  }

  function sendInjected(
    req: IncomingMessage,
    res: ServerResponse,
    entry: FaultLogEntry,
    status: number,
    headers: OutgoingHttpHeaders,
    body: string,
  ): void {
    req.resume(); // discard the unread request body so the connection stays usable
    entry.status = status;
    res.writeHead(status, {
      ...headers,
      "content-type": looksLikeJson(body) ? "application/json" : "text/plain",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    entry: FaultLogEntry,
    resetAfter: { sendHead?: boolean; bodyBytes?: number } | undefined,
  ): void {
    stats.forwarded++;
    const headers = endToEndHeaders(req.headers);
    // The server sees the Host it would see if called directly.
    headers.host = target.host;
    const upstream = httpRequest({
      agent: upstreamAgent,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url ?? "/",
      headers,
    });

    upstream.on("error", (error: NodeJS.ErrnoException) => {
      if (entry.status === "pending") {
        entry.status = error.code === "ECONNREFUSED" ? "refused" : "reset";
      }
      if (!res.headersSent && upstreamDown === "bad-gateway" && !req.socket.destroyed) {
        entry.status = 502;
        res.writeHead(502, { "content-type": "text/plain" });
        res.end(`fault proxy: ${error.message}`);
        return;
      }
      resetSocket(req.socket);
    });
    // The client went away before the exchange completed: do not leave the server waiting.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });

    upstream.on("response", (upstreamRes) => {
      if (resetAfter) {
        replyPartiallyThenReset(req, res, entry, upstreamRes, resetAfter);
        return;
      }
      entry.status = upstreamRes.statusCode ?? 502;
      res.writeHead(entry.status, upstreamRes.statusMessage, endToEndHeaders(upstreamRes.headers));
      upstreamRes.pipe(res);
      upstreamRes.on("error", () => resetSocket(req.socket));
    });

    req.pipe(upstream);
  }

  function replyPartiallyThenReset(
    req: IncomingMessage,
    res: ServerResponse,
    entry: FaultLogEntry,
    upstreamRes: IncomingMessage,
    how: { sendHead?: boolean; bodyBytes?: number },
  ): void {
    // This is the fault path: buffering the (small) API response is fine here.
    const chunks: Buffer[] = [];
    upstreamRes.on("data", (chunk: Buffer) => chunks.push(chunk));
    upstreamRes.on("error", () => resetSocket(req.socket));
    upstreamRes.on("end", () => {
      entry.status = "reset";
      const body = Buffer.concat(chunks);
      const bodyBytes = Math.min(how.bodyBytes ?? 4, body.length - 1);
      // A head alone would be a complete response for an empty body: send nothing then.
      if (how.sendHead === false || bodyBytes < 0) {
        resetSocket(req.socket);
        return;
      }
      const headers = endToEndHeaders(upstreamRes.headers);
      headers["content-length"] = body.length;
      res.writeHead(upstreamRes.statusCode ?? 200, upstreamRes.statusMessage, headers);
      res.flushHeaders();
      if (bodyBytes === 0) {
        // Let the head reach the client before the reset.
        setTimeout(() => resetSocket(req.socket), 20);
        return;
      }
      res.write(body.subarray(0, bodyBytes), () => setTimeout(() => resetSocket(req.socket), 20));
    });
  }

  const port = options.port ?? (await freePort());
  let server: Server | undefined;

  const listen = async () => {
    if (server) return;
    const fresh = createServer(handle);
    // Errors on client sockets (e.g. the client resets first) are part of the game here.
    fresh.on("clientError", (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      fresh.once("error", reject);
      fresh.listen(port, "127.0.0.1", () => {
        fresh.off("error", reject);
        resolve();
      });
    });
    server = fresh;
  };

  const close = async () => {
    const current = server;
    if (!current) return;
    server = undefined;
    const closed = new Promise<void>((resolve) => current.close(() => resolve()));
    current.closeAllConnections();
    await closed;
    await sleep(CLOSE_SETTLE_MS);
  };

  await listen();
  return {
    url: `http://127.0.0.1:${port}${targetPrefix}`,
    port,
    stats,
    log,
    setFaults(next: FaultPlan) {
      plan = next;
      left = {
        resetBeforeForward: next.resetBeforeForward?.count ?? 0,
        statusBurst: next.statusBurst?.count ?? 0,
        tooManyRequests: next.tooManyRequests?.count ?? 0,
        resetAfterForward: next.resetAfterForward?.count ?? 0,
      };
    },
    down: close,
    up: listen,
    async stop() {
      await close();
      upstreamAgent.destroy();
    },
  };
}
