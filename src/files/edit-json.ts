import { GoJsonError } from "../process/go-json.js";
import type { Edit } from "./edit-engine.js";

/** workspacesdk.FileEdit's JSON keys and their Go types. */
const FIELDS = {
  old_text: "string",
  new_text: "string",
  replace_all: "bool",
  search: "string",
  replace: "string",
} as const;

type Field = keyof typeof FIELDS;
type Values = { [K in Field]?: (typeof FIELDS)[K] extends "bool" ? boolean : string };

/** The type word Go's decoder uses for a JSON value in "cannot unmarshal <kind>". */
function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "array";
  if (typeof value === "boolean") return "bool";
  return typeof value;
}

/**
 * Go's case-insensitive key match (bytes.EqualFold, simple Unicode folding),
 * including the two non-ASCII letters that fold onto ASCII ones: the long s
 * (U+017F) and the Kelvin sign (U+212A).
 */
function fold(key: string): string {
  return key.replace(/\u017f/g, "s").replace(/\u212a/g, "k").toLowerCase();
}

function fieldFor(key: string): Field | undefined {
  if (Object.hasOwn(FIELDS, key)) return key as Field;
  const folded = fold(key);
  return (Object.keys(FIELDS) as Field[]).find((name) => name === folded);
}

/**
 * One element of a file's `edits` array, parsed from the request JSON, as
 * workspacesdk.FileEdit's UnmarshalJSON reads it: `old_text`, `new_text`
 * and `replace_all`; when old_text and new_text are both empty (or absent),
 * the legacy `search` and `replace` keys instead. Keys match Go's way
 * (exact name, else case-insensitively; a later key overrides an earlier
 * one), `null` values and unknown keys are ignored, and a JSON `null` edit
 * is an edit with every field empty (which then fails as an empty old_text).
 * A value of the wrong type throws GoJsonError with Go's text.
 */
export function editFromJson(json: unknown): Edit {
  if (json === null) return { search: "", replace: "", replaceAll: false };
  if (typeof json !== "object" || Array.isArray(json)) {
    throw new GoJsonError(`json: cannot unmarshal ${kindOf(json)} into Go value of type workspacesdk.FileEdit`);
  }
  const values: Values = {};
  for (const [key, value] of Object.entries(json)) {
    const field = fieldFor(key);
    if (!field || value === null) continue;
    const type = FIELDS[field];
    if (kindOf(value) !== type) {
      throw new GoJsonError(`json: cannot unmarshal ${kindOf(value)} into Go struct field FileEdit.${field} of type ${type}`);
    }
    (values as Record<Field, unknown>)[field] = value;
  }
  const useLegacy = !values.old_text && !values.new_text;
  return {
    search: (useLegacy ? values.search : values.old_text) ?? "",
    replace: (useLegacy ? values.replace : values.new_text) ?? "",
    replaceAll: values.replace_all ?? false,
  };
}
