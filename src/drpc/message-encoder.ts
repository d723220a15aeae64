import { create, ScalarType, toBinary, type DescField, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { putVarint, varintSize } from "./wire.js";

/**
 * A reply encoder for the hot path of the dRPC server: protobuf-es's
 * reflective `toBinary(create(...))` costs several microseconds for a small
 * reply, so messages built only of proto3 strings, bools, 32-bit varints,
 * enums, bytes and nested or repeated such messages are written directly,
 * byte for byte as protobuf-es writes them (fields in number order, proto3
 * defaults left out). Any other message shape, and any value carrying
 * unknown fields, goes through protobuf-es.
 */

/** Presence of a proto3 scalar without `optional` (FeatureSet.FieldPresence.IMPLICIT). */
const IMPLICIT_PRESENCE = 2;
/** Protobuf wire types. */
const VARINT = 0;
const LENGTH_DELIMITED = 2;

type Kind = "string" | "bytes" | "bool" | "int32" | "uint32" | "message";

interface FieldPlan {
  localName: string;
  tag: number;
  kind: Kind;
  repeated: boolean;
  /** Packed repeated varints: one length-delimited run. */
  packed: boolean;
  message?: Plan;
}

interface Plan {
  fields: FieldPlan[];
}

type Value = Record<string, unknown>;

const SCALAR_KINDS = new Map<ScalarType, Kind>([
  [ScalarType.STRING, "string"],
  [ScalarType.BYTES, "bytes"],
  [ScalarType.BOOL, "bool"],
  [ScalarType.INT32, "int32"],
  [ScalarType.UINT32, "uint32"],
]);


/** A negative int32 travels as its 64-bit two's complement: ten bytes. */
const NEGATIVE_INT32_BYTES = 10;

function int32Size(n: number): number {
  return n < 0 ? NEGATIVE_INT32_BYTES : varintSize(n);
}

function putInt32(buf: Buffer, at: number, n: number): number {
  if (n >= 0) return putVarint(buf, at, n);
  // Low 28 bits first, then the sign-extended high bits, as protobuf writes an int64.
  let lo = n >>> 0;
  for (let i = 0; i < 4; i++) {
    buf[at++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  buf[at++] = (lo & 0x0f) | 0x70 | 0x80;
  for (let i = 0; i < 4; i++) buf[at++] = 0xff;
  buf[at++] = 0x01;
  return at;
}

function fieldPlan(field: DescField, seen: Map<DescMessage, Plan | undefined>): FieldPlan | undefined {
  if (field.oneof !== undefined) return undefined;
  const base = { localName: field.localName, repeated: false, packed: false };
  switch (field.fieldKind) {
    case "scalar": {
      const kind = SCALAR_KINDS.get(field.scalar);
      if (!kind || field.presence !== IMPLICIT_PRESENCE) return undefined;
      return { ...base, kind, tag: field.number * 8 + (kind === "string" || kind === "bytes" ? LENGTH_DELIMITED : VARINT) };
    }
    case "enum":
      if (field.presence !== IMPLICIT_PRESENCE) return undefined;
      return { ...base, kind: "int32", tag: field.number * 8 + VARINT };
    case "message": {
      const message = field.delimitedEncoding ? undefined : planOf(field.message, seen);
      return message && { ...base, kind: "message", message, tag: field.number * 8 + LENGTH_DELIMITED };
    }
    case "list": {
      if (field.listKind === "message") {
        const message = field.delimitedEncoding ? undefined : planOf(field.message, seen);
        return message && { ...base, repeated: true, kind: "message", message, tag: field.number * 8 + LENGTH_DELIMITED };
      }
      const kind = field.listKind === "enum" ? "int32" : SCALAR_KINDS.get(field.scalar);
      if (!kind) return undefined;
      const lengthDelimited = field.packed || kind === "string" || kind === "bytes";
      return { ...base, repeated: true, packed: field.packed, kind, tag: field.number * 8 + (lengthDelimited ? LENGTH_DELIMITED : VARINT) };
    }
    default:
      return undefined;
  }
}

function planOf(desc: DescMessage, seen: Map<DescMessage, Plan | undefined>): Plan | undefined {
  if (seen.has(desc)) return seen.get(desc);
  // A recursive message refers to the plan under construction; it is complete before use.
  const plan: Plan = { fields: [] };
  seen.set(desc, plan);
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    const f = fieldPlan(field, seen);
    if (!f) {
      seen.set(desc, undefined);
      return undefined;
    }
    plan.fields.push(f);
  }
  return plan;
}

/** True when protobuf-es would leave the value out as a proto3 default. */
function isDefault(kind: Kind, v: unknown): boolean {
  switch (kind) {
    case "string":
      return v === undefined || v === "";
    case "bytes":
      return v === undefined || (v as Uint8Array).length === 0;
    case "bool":
      return v !== true;
    case "message":
      return v === undefined;
    default:
      return v === undefined || v === 0;
  }
}

/**
 * Sizes of the encoding: `sizes` receives each nested message's and each
 * packed run's length in the order `write` needs them.
 */
class Encoding {
  readonly sizes: number[] = [];
  private read = 0;
  /** False once a value with unknown fields is found: protobuf-es must write it. */
  direct = true;

  messageSize(plan: Plan, value: Value): number {
    if ((value.$unknown as unknown[] | undefined)?.length) this.direct = false;
    let size = 0;
    for (const f of plan.fields) {
      const v = value[f.localName];
      if (!f.repeated) {
        if (!isDefault(f.kind, v)) size += varintSize(f.tag) + this.valueSize(f, v, true);
      } else if (f.packed) {
        const list = (v as number[] | undefined) ?? [];
        if (list.length === 0) continue;
        const slot = this.sizes.push(0) - 1;
        let run = 0;
        for (const item of list) run += this.valueSize(f, item, false);
        this.sizes[slot] = run;
        size += varintSize(f.tag) + varintSize(run) + run;
      } else {
        for (const item of (v as unknown[] | undefined) ?? []) size += varintSize(f.tag) + this.valueSize(f, item, true);
      }
    }
    return size;
  }

  private valueSize(f: FieldPlan, v: unknown, prefixed: boolean): number {
    switch (f.kind) {
      case "string": {
        const n = Buffer.byteLength(v as string, "utf8");
        return varintSize(n) + n;
      }
      case "bytes":
        return varintSize((v as Uint8Array).length) + (v as Uint8Array).length;
      case "bool":
        return 1;
      case "int32":
        return int32Size(v as number);
      case "uint32":
        return varintSize(v as number);
      case "message": {
        const slot = this.sizes.push(0) - 1;
        const n = this.messageSize(f.message!, v as Value);
        this.sizes[slot] = n;
        return prefixed ? varintSize(n) + n : n;
      }
    }
  }

  write(buf: Buffer, at: number, plan: Plan, value: Value): number {
    for (const f of plan.fields) {
      const v = value[f.localName];
      if (!f.repeated) {
        if (!isDefault(f.kind, v)) at = this.writeValue(buf, putVarint(buf, at, f.tag), f, v);
      } else if (f.packed) {
        const list = (v as number[] | undefined) ?? [];
        if (list.length === 0) continue;
        at = putVarint(buf, putVarint(buf, at, f.tag), this.sizes[this.read++]!);
        for (const item of list) at = f.kind === "int32" ? putInt32(buf, at, item) : putVarint(buf, at, +item);
      } else {
        for (const item of (v as unknown[] | undefined) ?? []) at = this.writeValue(buf, putVarint(buf, at, f.tag), f, item);
      }
    }
    return at;
  }

  private writeValue(buf: Buffer, at: number, f: FieldPlan, v: unknown): number {
    switch (f.kind) {
      case "string": {
        const n = Buffer.byteLength(v as string, "utf8");
        at = putVarint(buf, at, n);
        return at + buf.write(v as string, at, n, "utf8");
      }
      case "bytes":
        at = putVarint(buf, at, (v as Uint8Array).length);
        buf.set(v as Uint8Array, at);
        return at + (v as Uint8Array).length;
      case "bool":
        buf[at] = 1;
        return at + 1;
      case "int32":
        return putInt32(buf, at, v as number);
      case "uint32":
        return putVarint(buf, at, v as number);
      case "message":
        at = putVarint(buf, at, this.sizes[this.read++]!);
        return this.write(buf, at, f.message!, v as Value);
    }
  }
}

/** Encodes a handler's reply (a message or its init shape) as protobuf-es would. */
export type MessageEncoder<D extends DescMessage> = (value: MessageInitShape<D> | undefined) => Uint8Array;

/** Builds the encoder for `desc`: direct when the message's shape allows it, else protobuf-es. */
export function messageEncoder<D extends DescMessage>(desc: D): MessageEncoder<D> {
  const plan = planOf(desc, new Map());
  const reflective = (value: MessageInitShape<D> | undefined) => toBinary(desc, create(desc, value));
  if (!plan) return reflective;
  return (value) => {
    if (value === undefined) return new Uint8Array(0);
    const enc = new Encoding();
    const size = enc.messageSize(plan, value as Value);
    if (!enc.direct) return reflective(value);
    const buf = Buffer.allocUnsafe(size);
    enc.write(buf, 0, plan, value as Value);
    return buf;
  };
}
