/**
 * Request bodies decoded the way Go's json.Decoder decodes them into a
 * struct: only the first JSON value is read (trailing bytes are ignored),
 * unknown keys are skipped, keys match field names case-insensitively,
 * `null` leaves the zero value, and failures carry Go's error text
 * (`EOF`, `unexpected EOF`, `invalid character …`, `json: cannot unmarshal …`).
 */

/** Nesting beyond this is a syntax error (encoding/json maxNestingDepth). */
const MAX_NESTING_DEPTH = 10000;

/** A body that Go's decoder would reject; `message` is Go's error text. */
export class GoJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GoJsonError";
  }
}

/** A parsed JSON value that keeps number literals and key order as written. */
export type JsonValue =
  | { t: "string"; v: string }
  | { t: "number"; raw: string }
  | { t: "bool"; v: boolean }
  | { t: "null" }
  | { t: "array"; v: JsonValue[] }
  | { t: "object"; v: [string, JsonValue][] };

/** An object or array being parsed; `key` is the object key whose value comes next. */
type Container =
  | { t: "object"; v: [string, JsonValue][]; key: string }
  | { t: "array"; v: JsonValue[]; key: string };

/** Go's quoteChar for a character in syntax errors. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c).slice(1, -1);
  return `'${q}'`;
}

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}

class Parser {
  private i = 0;

  constructor(private readonly s: string) {}

  private fail(context: string): never {
    if (this.i >= this.s.length) throw new GoJsonError("unexpected EOF");
    throw new GoJsonError(`invalid character ${quoteChar(this.charAt())} ${context}`);
  }

  private charAt(): string {
    return String.fromCodePoint(this.s.codePointAt(this.i)!);
  }

  private skipSpace(): void {
    while (isSpace(this.s[this.i])) this.i++;
  }

  /** The first value; whatever follows a complete object or array is ignored. */
  parseFirst(): JsonValue {
    this.skipSpace();
    if (this.i >= this.s.length) throw new GoJsonError("EOF");
    const v = this.value();
    if (v.t !== "object" && v.t !== "array" && this.i < this.s.length && !isSpace(this.s[this.i])) {
      this.fail("after top-level value");
    }
    return v;
  }

  /** Parses one value with an explicit stack, so deep nesting cannot overflow the call stack. */
  private value(): JsonValue {
    const stack: Container[] = [];
    for (;;) {
      let done: JsonValue | undefined;
      const c = this.s[this.i];
      if (c === "{" || c === "[") {
        if (stack.length + 1 > MAX_NESTING_DEPTH) throw new GoJsonError("exceeded max depth");
        this.i++;
        this.skipSpace();
        const close = c === "{" ? "}" : "]";
        if (this.s[this.i] === close) {
          this.i++;
          done = c === "{" ? { t: "object", v: [] } : { t: "array", v: [] };
        } else {
          const container: Container = c === "{" ? { t: "object", v: [], key: "" } : { t: "array", v: [], key: "" };
          stack.push(container);
          if (c === "{") this.key(container);
          continue;
        }
      } else {
        done = this.scalar();
      }
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) return done;
        if (top.t === "object") top.v.push([top.key, done]);
        else top.v.push(done);
        this.skipSpace();
        const next = this.s[this.i];
        const close = top.t === "object" ? "}" : "]";
        if (next === close) {
          this.i++;
          stack.pop();
          done = top.t === "object" ? { t: "object", v: top.v } : { t: "array", v: top.v };
          continue;
        }
        if (next !== ",") this.fail(top.t === "object" ? "after object key:value pair" : "after array element");
        this.i++;
        this.skipSpace();
        if (top.t === "object") this.key(top);
        break;
      }
    }
  }

  /** Reads `"key":` into the open object and leaves the position at its value. */
  private key(container: Container): void {
    if (this.s[this.i] !== '"') this.fail("looking for beginning of object key string");
    container.key = this.string();
    this.skipSpace();
    if (this.s[this.i] !== ":") this.fail("after object key");
    this.i++;
    this.skipSpace();
  }

  private scalar(): JsonValue {
    const c = this.s[this.i];
    if (c === '"') return { t: "string", v: this.string() };
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return { t: "number", raw: this.number() };
    if (c === "t") return this.literal("true", { t: "bool", v: true });
    if (c === "f") return this.literal("false", { t: "bool", v: false });
    if (c === "n") return this.literal("null", { t: "null" });
    return this.fail("looking for beginning of value");
  }

  private literal<T extends JsonValue>(word: string, v: T): T {
    for (let k = 0; k < word.length; k++, this.i++) {
      if (this.s[this.i] !== word[k]) this.fail(`in literal ${word} (expecting '${word[k]}')`);
    }
    return v;
  }

  private digits(context: string): void {
    if (!/[0-9]/.test(this.s[this.i] ?? "")) this.fail(context);
    while (/[0-9]/.test(this.s[this.i] ?? "")) this.i++;
  }

  private number(): string {
    const start = this.i;
    if (this.s[this.i] === "-") this.i++;
    if (this.s[this.i] === "0") this.i++;
    else this.digits("in numeric literal");
    if (this.s[this.i] === ".") {
      this.i++;
      this.digits("after decimal point in numeric literal");
    }
    if (this.s[this.i] === "e" || this.s[this.i] === "E") {
      this.i++;
      if (this.s[this.i] === "+" || this.s[this.i] === "-") this.i++;
      this.digits("in exponent of numeric literal");
    }
    return this.s.slice(start, this.i);
  }

  private string(): string {
    this.i++;
    let out = "";
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) this.fail("in string literal");
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c < " ") this.fail("in string literal");
      if (c !== "\\") {
        out += c;
        this.i++;
        continue;
      }
      this.i++;
      const e = this.s[this.i];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && e in simple) {
        out += simple[e];
        this.i++;
      } else if (e === "u") {
        this.i++;
        let hex = "";
        for (let k = 0; k < 4; k++, this.i++) {
          if (!/[0-9a-fA-F]/.test(this.s[this.i] ?? "")) this.fail("in \\u hexadecimal character escape");
          hex += this.s[this.i];
        }
        out += String.fromCharCode(parseInt(hex, 16));
      } else {
        this.fail("in string escape code");
      }
    }
  }
}

/** Parses the first JSON value of `body` as Go's json.Decoder reads it; throws GoJsonError with Go's text. */
export function parseGoJson(body: Buffer | string): JsonValue {
  return new Parser(typeof body === "string" ? body : body.toString("utf8")).parseFirst();
}

/** The Go types a request field can have. */
export type GoFieldType = "string" | "bool" | "uint64" | "map[string]string";

/** A Go struct: its name (for error text) and JSON field names with their types. */
export interface GoStruct {
  /** e.g. `workspacesdk.StartProcessRequest` */
  typeName: string;
  fields: Record<string, GoFieldType>;
}

type Decoded = Record<string, string | boolean | number | Record<string, string> | undefined>;

/** The JSON kind Go names in unmarshal errors (`string`, `number`, `object`, …). */
export function kindOf(v: JsonValue): string {
  return v.t === "bool" ? "bool" : v.t;
}

/**
 * Decodes `body` into the fields of `shape`. Absent, null and unknown keys
 * leave a field undefined (the caller applies zero values).
 */
export function decodeGoJson(body: Buffer | string, shape: GoStruct): Decoded {
  const root = parseGoJson(body);
  const out: Decoded = {};
  if (root.t === "null") return out;
  if (root.t !== "object") {
    throw new GoJsonError(`json: cannot unmarshal ${kindOf(root)} into Go value of type ${shape.typeName}`);
  }
  const shortName = shape.typeName.slice(shape.typeName.lastIndexOf(".") + 1);
  const names = Object.keys(shape.fields);
  let firstError: GoJsonError | undefined;
  for (const [key, value] of root.v) {
    const name = names.find((n) => n === key) ?? names.find((n) => n.toLowerCase() === key.toLowerCase());
    if (!name || value.t === "null") {
      if (name && shape.fields[name] === "map[string]string") out[name] = undefined;
      continue;
    }
    const fail = (what: string, field = name, type: string = shape.fields[name]!) =>
      (firstError ??= new GoJsonError(
        `json: cannot unmarshal ${what} into Go struct field ${shortName}.${field} of type ${type}`,
      ));
    switch (shape.fields[name]) {
      case "string":
        if (value.t === "string") out[name] = value.v;
        else fail(kindOf(value));
        break;
      case "bool":
        if (value.t === "bool") out[name] = value.v;
        else fail(kindOf(value));
        break;
      case "uint64": {
        if (value.t !== "number") {
          fail(kindOf(value));
          break;
        }
        const n = /^\d+$/.test(value.raw) ? BigInt(value.raw) : -1n;
        if (n < 0n || n > 0xffffffffffffffffn) fail(`number ${value.raw}`);
        else out[name] = Number(n);
        break;
      }
      case "map[string]string": {
        if (value.t !== "object") {
          fail(kindOf(value));
          break;
        }
        const map = (out[name] as Record<string, string> | undefined) ?? {};
        for (const [k, v] of value.v) {
          if (v.t === "string") map[k] = v.v;
          else if (v.t === "null") map[k] ??= "";
          else fail(kindOf(v), `${name}.${k}`, "string");
        }
        out[name] = map;
        break;
      }
    }
  }
  if (firstError) throw firstError;
  return out;
}
