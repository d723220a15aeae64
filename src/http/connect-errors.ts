import { createAsyncIterable, type UniversalHandler, type UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * How connect-es words a request it cannot decode as protobuf binary; it
 * reports that as `internal` although the client sent the bad bytes.
 */
const PARSE_BINARY_PREFIX = "parse binary:";

/** HTTP status of `invalid_argument` in the Connect protocol (connect.build/docs/protocol, error codes). */
const INVALID_ARGUMENT_HTTP_STATUS = 400;

/**
 * Wraps a Connect handler so that a malformed protobuf unary request answers
 * `invalid_argument` (HTTP 400) instead of connect-es's `internal` (500): the
 * fault is the client's. (The server speaks HTTP/1.1, so plain gRPC, which
 * needs HTTP/2, never reaches it.)
 */
export function invalidProtobufAsInvalidArgument(handler: UniversalHandler): UniversalHandler {
  const wrapped = async (...args: Parameters<UniversalHandler>) => rewrite(await handler(...args));
  return Object.assign(wrapped, handler);
}

async function rewrite(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (isConnectUnaryError(res)) return rewriteConnectUnary(res);
  return res;
}

function isConnectUnaryError(res: UniversalServerResponse): res is Required<UniversalServerResponse> {
  const header = res.header;
  return (
    res.status === 500 &&
    res.body !== undefined &&
    header !== undefined &&
    (header.get("content-type") ?? "").startsWith("application/json") &&
    !header.has("content-encoding")
  );
}

async function rewriteConnectUnary(res: Required<UniversalServerResponse>): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const error = parseError(bytes);
  if (error?.code !== "internal" || !error.message?.startsWith(PARSE_BINARY_PREFIX)) {
    return { ...res, body: createAsyncIterable([bytes]) };
  }
  const body = Buffer.from(JSON.stringify({ ...error, code: "invalid_argument" }));
  res.header.set("content-length", String(body.byteLength));
  return { ...res, status: INVALID_ARGUMENT_HTTP_STATUS, body: createAsyncIterable([body]) };
}

function parseError(bytes: Buffer): { code?: unknown; message?: string } | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString("utf8"));
    return typeof value === "object" && value !== null ? (value as { code?: unknown; message?: string }) : undefined;
  } catch {
    return undefined;
  }
}
