import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { createContextKey, createContextValues, type ContextValues, type HandlerContext } from "@connectrpc/connect";

/**
 * The request exactly as it arrived on the wire, in every handler's
 * `context.values`, for a handler that must see or relay the raw bytes.
 */
export const REQUEST_BYTES_KEY = createContextKey<Uint8Array>(new Uint8Array(0), { description: "dRPC request bytes" });

/** What a context needs from the call it belongs to: its cancellation, made on demand. */
export interface CallSignal {
  /** The call's abort signal; created on first use. */
  signal(): AbortSignal;
}

/**
 * A Connect HandlerContext for one dRPC call. Connect's createHandlerContext
 * builds three Headers, a deadline and a linked AbortController for every
 * call (about 20 µs); dRPC carries no headers or deadline, so this one makes
 * each part only when a handler reads it.
 */
export class DrpcHandlerContext implements HandlerContext {
  readonly requestMethod = "POST";
  readonly protocolName = "drpc";
  private headers: { request?: Headers; response?: Headers; trailer?: Headers } = {};
  private contextValues: ContextValues | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    readonly url: string,
    private readonly call: CallSignal,
    private readonly requestBytes: Uint8Array,
  ) {}

  get signal(): AbortSignal {
    return this.call.signal();
  }

  /** dRPC has no deadlines: always undefined. */
  timeoutMs(): number | undefined {
    return undefined;
  }

  get requestHeader(): Headers {
    return (this.headers.request ??= new Headers());
  }

  get responseHeader(): Headers {
    return (this.headers.response ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.headers.trailer ??= new Headers());
  }

  get values(): ContextValues {
    return (this.contextValues ??= createContextValues().set(REQUEST_BYTES_KEY, this.requestBytes));
  }
}
