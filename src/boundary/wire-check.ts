import { isUtf8 } from "node:buffer";
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

/** Wire types of the protobuf encoding (protobuf.dev/programming-guides/encoding). */
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;
/** Longest varint: 64 bits in 7-bit groups (protobuf encoding). */
const MAX_VARINT_BYTES = 10;
/** Longest uint32 varint (tags and lengths). */
const MAX_VARINT32_BYTES = 5;
/** Nesting left to the full decoder beyond this (protobuf-es's own limit is 100; these schemas nest 3 deep). */
const MAX_DEPTH = 32;

/**
 * What the bytes of one known field must be. Every rule has every property,
 * so the walk reads them all through one object shape.
 */
interface Rule {
  wireType: number;
  /** The nested message a LEN field holds. */
  message: DescMessage | undefined;
  /** The rules of `message`, once looked up. */
  nested: Rules | undefined;
  /** A LEN field holding text that must be valid UTF-8. */
  utf8: boolean;
}

function rule(wireType: number, message?: DescMessage, utf8 = false): Rule {
  return { wireType, message, nested: undefined, utf8 };
}

/**
 * Per field number: its Rule, `null` for a known field this check does not
 * cover (maps, group-encoded messages), undefined for an unknown field.
 */
export type Rules = (Rule | null | undefined)[];

/** Bytes Go's proto.Unmarshal refuses though protobuf-es would decode them; Go's error text. */
export class InvalidWire extends Error {
  constructor() {
    super("proto: cannot parse invalid wire-format data");
    this.name = "InvalidWire";
  }
}

/** Thrown (one shared instance, no stack) when bytes are not what the fast check covers. */
class NotPlain {
  readonly notPlain = true;
}
const NOT_PLAIN = new NotPlain();

const rulesBySchema = new WeakMap<DescMessage, Rules>();

function scalarWireType(scalar: ScalarType): number {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return LEN;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return I64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return I32;
    default:
      return VARINT;
  }
}

function fieldRule(field: DescField): Rule | null {
  switch (field.fieldKind) {
    case "scalar":
      return rule(scalarWireType(field.scalar), undefined, field.scalar === ScalarType.STRING);
    case "enum":
      return rule(VARINT);
    case "message":
      return field.delimitedEncoding ? null : rule(LEN, field.message);
    case "list":
      if (field.listKind === "message") return field.delimitedEncoding ? null : rule(LEN, field.message);
      if (field.listKind === "enum") return rule(VARINT);
      return rule(scalarWireType(field.scalar), undefined, field.scalar === ScalarType.STRING);
    default:
      return null;
  }
}

/** The rules of `schema`'s fields, made once per schema. */
export function rulesOf(schema: DescMessage): Rules {
  let rules = rulesBySchema.get(schema);
  if (!rules) {
    rules = [];
    for (const field of schema.fields) rules[field.number] = fieldRule(field);
    rulesBySchema.set(schema, rules);
  }
  return rules;
}

/** True for a tag the walk covers: a field number from 1 and wire type VARINT, I64, LEN or I32. */
function plainTag(tag: number): boolean {
  const wireType = tag & 7;
  return tag >= 8 && wireType !== 3 && wireType !== 4 && wireType <= I32;
}

/** Where the varint starting at `pos` ends, before `end`. */
function varintEnd(bytes: Uint8Array, pos: number, end: number): number {
  for (let i = 0; ; i++) {
    if (i === MAX_VARINT_BYTES || pos >= end) throw NOT_PLAIN;
    const b = bytes[pos++]!;
    // The tenth byte carries bit 63 only: more overflows 64 bits, which Go refuses and protobuf-es would not.
    if (i === MAX_VARINT_BYTES - 1 && b > 1) throw new InvalidWire();
    if (b < 0x80) return pos;
  }
}

/** Where the I64 or I32 value starting at `pos` ends, before `end`. */
function fixedEnd(wireType: number, pos: number, end: number): number {
  const n = wireType === I64 ? 8 : 4;
  if (end - pos < n) throw NOT_PLAIN;
  return pos + n;
}

/**
 * A cursor over protobuf wire bytes that checks what it passes and throws
 * NOT_PLAIN at the first thing it does not cover, allocating nothing else.
 */
export class WireWalker {
  pos = 0;

  constructor(public bytes: Uint8Array) {}

  /** Starts over on `bytes`, so one walker can serve many walks. */
  reset(bytes: Uint8Array): this {
    this.bytes = bytes;
    this.pos = 0;
    return this;
  }

  /** A uint32 varint of at most 5 bytes ending before `end`. */
  uint32(end: number): number {
    const { bytes } = this;
    if (this.pos < end && bytes[this.pos]! < 0x80) return bytes[this.pos++]!;
    let value = 0;
    for (let i = 0; i < MAX_VARINT32_BYTES; i++) {
      if (this.pos >= end) throw NOT_PLAIN;
      const b = bytes[this.pos++]!;
      if (i === MAX_VARINT32_BYTES - 1 && b > 0x0f) throw NOT_PLAIN;
      value += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return value;
    }
    throw NOT_PLAIN;
  }

  /** A varint of up to 64 bits as a number (exact below 2^53); negative int64s come out as their two's complement. */
  varint(end: number): number {
    const start = this.pos;
    this.skip(VARINT, end);
    let value = 0;
    for (let i = this.pos - 1; i >= start; i--) value = value * 128 + (this.bytes[i]! & 0x7f);
    return value;
  }

  /** A tag: returns field number * 8 + wire type; field 0 and wire types 3, 4, 6 and 7 are not covered. */
  tag(end: number): number {
    const tag = this.uint32(end);
    if (!plainTag(tag)) throw NOT_PLAIN;
    return tag;
  }

  /** Passes a length-delimited field's length; returns where its bytes end. */
  length(end: number): number {
    const length = this.uint32(end);
    if (length > end - this.pos) throw NOT_PLAIN;
    return this.pos + length;
  }

  /** Passes the value of a field of `wireType`, ending before `end`. */
  skip(wireType: number, end: number): void {
    if (wireType === VARINT) this.pos = varintEnd(this.bytes, this.pos, end);
    else if (wireType === LEN) this.pos = this.length(end);
    else this.pos = fixedEnd(wireType, this.pos, end);
  }

  /**
   * Passes one field's value (its tag read) of a message with `rules`,
   * checked by the field's kind. The position is kept in a local while the
   * value's own bytes are read: this runs for every field of every log.
   */
  field(rules: Rules, tag: number, end: number, depth: number): void {
    const wireType = tag & 7;
    const fieldNo = tag >>> 3;
    const rule = fieldNo < rules.length ? rules[fieldNo] : undefined;
    if (rule === null || (rule !== undefined && rule.wireType !== wireType)) throw NOT_PLAIN;
    const bytes = this.bytes;
    let pos = this.pos;
    if (wireType !== LEN) {
      this.pos = wireType === VARINT ? varintEnd(bytes, pos, end) : fixedEnd(wireType, pos, end);
      return;
    }
    let length: number;
    if (pos < end && bytes[pos]! < 0x80) length = bytes[pos++]!;
    else {
      length = this.uint32(end);
      pos = this.pos;
    }
    if (length > end - pos) throw NOT_PLAIN;
    const fieldEnd = pos + length;
    if (rule !== undefined) {
      if (rule.message !== undefined) {
        this.pos = pos;
        this.message((rule.nested ??= rulesOf(rule.message)), fieldEnd, depth + 1);
      } else if (rule.utf8) {
        let any = 0;
        for (let i = pos; i < fieldEnd; i++) any |= bytes[i]!;
        // Plain ASCII is checked without a native call.
        if (any >= 0x80 && !isUtf8(bytes.subarray(pos, fieldEnd))) throw NOT_PLAIN;
      }
    }
    this.pos = fieldEnd;
  }

  /** Passes the fields of a message with `rules` that fill the bytes up to `end` exactly. */
  message(rules: Rules, end: number, depth: number): void {
    if (depth > MAX_DEPTH) throw NOT_PLAIN;
    const bytes = this.bytes;
    while (this.pos < end) {
      const b = bytes[this.pos]!;
      // One-byte tags (fields 1 to 15) are read here; longer ones by tag().
      if (b < 0x80 && plainTag(b)) {
        this.pos++;
        this.field(rules, b, end, depth);
      } else this.field(rules, this.tag(end), end, depth);
    }
  }
}

/**
 * Runs `walk` (a use of a WireWalker); false when it met something the walker does
 * not cover (the caller then asks the full decoder), true when the walk
 * completed. What a completed walk passed is well-formed for the schema the
 * walk used: fields of the right wire types, every length within its
 * message, nested messages ending on their length, strings valid UTF-8,
 * unknown fields (other than groups) skipped. That is stricter than
 * protobuf-es's fromBinary and Go's proto.Unmarshal (which both take a known
 * field of the wrong wire type, for one), so all it passes, both decode. A
 * varint over 64 bits, which Go refuses and protobuf-es takes, throws
 * InvalidWire instead of falling back to the full decoder.
 */
export function walked(walk: () => void): boolean {
  try {
    walk();
    return true;
  } catch (err) {
    if (err === NOT_PLAIN) return false;
    throw err;
  }
}
