import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/** Messages whose exact wire bytes are known, so passing them on need not encode them again. */
const encodings = new WeakMap<object, Uint8Array>();

/**
 * Records that `message` is exactly what `bytes` decode to, so the in-process
 * transport (and a store keeping requests as bytes) can use those bytes
 * instead of encoding the message again. Only for messages that are not
 * changed afterwards: a later change would not be seen in the bytes.
 */
export function rememberEncoding<T extends object>(message: T, bytes: Uint8Array): T {
  encodings.set(message, bytes);
  return message;
}

/** The bytes recorded for `message` by rememberEncoding, if any. */
export function knownEncoding(message: object): Uint8Array | undefined {
  return encodings.get(message);
}

/** Decodes `bytes` into a fresh message that remembers them. */
export function decodeRemembering<T extends DescMessage>(schema: T, bytes: Uint8Array): MessageShape<T> {
  return rememberEncoding(fromBinary(schema, bytes), bytes);
}

/** The wire bytes of `message`: those it was decoded from when known, else its encoding. */
export function wireBytes<T extends DescMessage>(schema: T, message: MessageShape<T>): Uint8Array {
  return knownEncoding(message) ?? toBinary(schema, message);
}
