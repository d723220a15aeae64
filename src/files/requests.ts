import { GoJsonError, kindOf, parseGoJson, type JsonValue } from "../process/go-json.js";
import type { Edit } from "./edit-engine.js";

/** One entry of `files` in an edit-files request. */
export interface FileEditsEntry {
  path: string;
  edits: Edit[];
  /** agentd's precondition: the file's sha256 (hex) must be this; "" when absent. */
  expectedSha256: string;
}

/** workspacesdk.FileEditRequest as decoded. */
export interface EditFilesRequest {
  files: FileEditsEntry[];
  includeDiff: boolean;
}

/** workspacesdk.LSRequest as decoded. */
export interface ListDirectoryRequest {
  path: string[];
  relativity: string;
}

type Obj = Extract<JsonValue, { t: "object" }>;

/**
 * Decodes a JSON body into a struct the way Go's json.Decoder does: keys
 * match field names exactly or else case-insensitively, the last key wins,
 * unknown keys and nulls leave zero values, and a type mismatch fails with
 * Go's `json: cannot unmarshal …` text.
 */
class Struct {
  private readonly values = new Map<string, JsonValue>();

  constructor(
    obj: Obj,
    names: readonly string[],
    private readonly where: string,
  ) {
    for (const [key, value] of obj.v) {
      const name = names.find((n) => n === key) ?? names.find((n) => n.toLowerCase() === key.toLowerCase());
      if (name) this.values.set(name, value);
    }
  }

  private mismatch(value: JsonValue, name: string, type: string): never {
    throw new GoJsonError(`json: cannot unmarshal ${kindOf(value)} into Go struct field ${this.where}.${name} of type ${type}`);
  }

  string(name: string, type = "string"): string {
    const v = this.values.get(name);
    if (v === undefined || v.t === "null") return "";
    if (v.t !== "string") this.mismatch(v, name, type);
    return v.v;
  }

  bool(name: string): boolean {
    const v = this.values.get(name);
    if (v === undefined || v.t === "null") return false;
    if (v.t !== "bool") this.mismatch(v, name, "bool");
    return v.v;
  }

  array<T>(name: string, type: string, item: (v: JsonValue, where: string) => T): T[] {
    const v = this.values.get(name);
    if (v === undefined || v.t === "null") return [];
    if (v.t !== "array") this.mismatch(v, name, type);
    return v.v.map((e) => item(e, `${this.where}.${name}`));
  }
}

function root(body: Buffer, typeName: string): Obj | undefined {
  const value = parseGoJson(body);
  if (value.t === "null") return undefined;
  if (value.t !== "object") throw new GoJsonError(`json: cannot unmarshal ${kindOf(value)} into Go value of type ${typeName}`);
  return value;
}

function element<T>(name: string, type: string, decode: (s: Struct) => T): (v: JsonValue, where: string) => T | undefined {
  return (v, where) => {
    if (v.t === "null") return undefined;
    if (v.t !== "object") {
      throw new GoJsonError(`json: cannot unmarshal ${kindOf(v)} into Go struct field ${where} of type ${type}`);
    }
    return decode(new Struct(v, name === "" ? [] : name.split(","), where));
  };
}

/** An edit as workspacesdk.FileEdit unmarshals it: old_text/new_text, else the legacy search/replace. */
function decodeEdit(s: Struct): Edit {
  const oldText = s.string("old_text");
  const newText = s.string("new_text");
  const replaceAll = s.bool("replace_all");
  if (oldText === "" && newText === "") return { search: s.string("search"), replace: s.string("replace"), replaceAll };
  return { search: oldText, replace: newText, replaceAll };
}

/** Decodes an edit-files body; throws GoJsonError with Go's text. */
export function decodeEditFilesRequest(body: Buffer): EditFilesRequest {
  const obj = root(body, "workspacesdk.FileEditRequest");
  if (!obj) return { files: [], includeDiff: false };
  const s = new Struct(obj, ["files", "include_diff"], "FileEditRequest");
  const edit = element("old_text,new_text,replace_all,search,replace", "workspacesdk.FileEdit", decodeEdit);
  const file = element("path,edits,expected_sha256", "workspacesdk.FileEdits", (f) => ({
    path: f.string("path"),
    edits: f.array("edits", "[]workspacesdk.FileEdit", edit).map((e) => e ?? { search: "", replace: "", replaceAll: false }),
    expectedSha256: f.string("expected_sha256"),
  }));
  const files = s.array("files", "[]workspacesdk.FileEdits", file).map((f) => f ?? { path: "", edits: [], expectedSha256: "" });
  return { files, includeDiff: s.bool("include_diff") };
}

/** Decodes a list-directory body; throws GoJsonError with Go's text. */
export function decodeListDirectoryRequest(body: Buffer): ListDirectoryRequest {
  const obj = root(body, "workspacesdk.LSRequest");
  if (!obj) return { path: [], relativity: "" };
  const s = new Struct(obj, ["path", "relativity"], "LSRequest");
  const segments = s.array("path", "[]string", (v, where) => {
    if (v.t === "null") return "";
    if (v.t !== "string") throw new GoJsonError(`json: cannot unmarshal ${kindOf(v)} into Go struct field ${where} of type string`);
    return v.v;
  });
  return { path: segments, relativity: s.string("relativity", "workspacesdk.LSRelativity") };
}
