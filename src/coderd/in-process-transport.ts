import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createHandlerContext,
  type ServiceImpl,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";

import { decodeRemembering, wireBytes } from "./known-encoding.js";

type UnaryHandler = (request: unknown, context: ReturnType<typeof createHandlerContext>) => unknown;

/**
 * A Connect Transport that calls a service implementation in this process.
 * Messages cross it as bytes (encoded, then decoded), so a caller and the
 * implementation never share objects and everything sent is encodable, as on
 * a real wire. A request whose bytes are known (rememberEncoding) is not
 * encoded again, and the decoded copy the implementation receives remembers
 * those bytes. Only unary methods are served.
 */
export function createInProcessTransport<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
): Transport {
  const handlers = impl as Record<string, UnaryHandler | undefined>;
  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const handler = handlers[method.localName];
      if (method.parent.typeName !== service.typeName || !handler) {
        throw new ConnectError(`${method.parent.typeName}.${method.name} is not implemented`, Code.Unimplemented);
      }
      const message = create(method.input, input);
      const request = decodeRemembering(method.input, wireBytes(method.input, message));
      const context = createHandlerContext({
        service,
        method,
        protocolName: "in-process",
        requestMethod: "POST",
        url: `/${service.typeName}/${method.name}`,
        timeoutMs,
        requestSignal: signal,
        requestHeader: header,
      });
      let output: MessageInitShape<O>;
      try {
        output = (await handler(request, context)) as MessageInitShape<O>;
      } catch (err) {
        throw ConnectError.from(err);
      } finally {
        // The call is over, as when a server finishes a request: this stops
        // the deadline timer and ends the handler's signal.
        context.abort();
      }
      return {
        stream: false,
        service,
        method,
        header: context.responseHeader,
        message: fromBinary(method.output, toBinary(method.output, create(method.output, output))),
        trailer: context.responseTrailer,
      };
    },
    stream(): never {
      throw new ConnectError("streaming is not supported in process", Code.Unimplemented);
    },
  };
}
