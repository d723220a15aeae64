import { goQuote } from "../process/errors.js";

/** One entry of codersdk.Response's `validations`. */
export interface Validation {
  field: string;
  detail: string;
}

/** The message Coder answers every query validation failure with. */
export const INVALID_QUERY_MESSAGE = "Query parameters have invalid values.";

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * Reads query parameters as Coder's httpapi.QueryParamParser does: every
 * problem is collected (required and empty, repeated, not a non-negative
 * 64-bit integer, not a known parameter) with Coder's detail texts, so one
 * answer lists them all.
 */
export class QueryParser {
  readonly errors: Validation[] = [];
  private readonly parsed = new Set<string>();

  constructor(
    private readonly query: URLSearchParams,
    private readonly requiredNotEmpty: readonly string[] = [],
  ) {}

  /** A string parameter, `def` when absent or empty. */
  string(name: string, def = ""): string {
    return this.value(name) ?? def;
  }

  /** PositiveInt64: a base-10 int64 that is not negative; `def` when absent or empty. */
  positiveInt64(name: string, def: number): number {
    const raw = this.value(name);
    if (raw === undefined) return def;
    const fail = (why: string) => {
      this.errors.push({
        field: name,
        detail: `Query param ${goQuote(name)} must be a valid 64-bit positive integer: ${why}`,
      });
      return def;
    };
    if (!/^[+-]?[0-9]+$/.test(raw)) return fail(`strconv.ParseInt: parsing ${goQuote(raw)}: invalid syntax`);
    const n = BigInt(raw);
    if (n > INT64_MAX || n < INT64_MIN) return fail(`strconv.ParseInt: parsing ${goQuote(raw)}: value out of range`);
    if (n < 0n) return fail("value is negative");
    return Number(n);
  }

  /** Adds an error for each parameter no reader asked for (ErrorExcessParams). */
  finish(): Validation[] {
    for (const name of new Set(this.query.keys())) {
      if (!this.parsed.has(name)) this.errors.push({ field: name, detail: `${goQuote(name)} is not a valid query param` });
    }
    return this.errors;
  }

  /** The single value of `name`, or undefined when absent or empty (recording Coder's errors). */
  private value(name: string): string | undefined {
    this.parsed.add(name);
    const values = this.query.getAll(name);
    if (this.requiredNotEmpty.includes(name) && (values.length === 0 || values[0] === "")) {
      this.errors.push({ field: name, detail: `Query param ${goQuote(name)} is required and cannot be empty` });
      return undefined;
    }
    if (values.length === 0 || values[0] === "") return undefined;
    if (values.length > 1) {
      this.errors.push({
        field: name,
        detail: `Query param ${goQuote(name)} provided more than once, found ${values.length} times. Only provide 1 instance of this query param.`,
      });
      return undefined;
    }
    return values[0];
  }
}
