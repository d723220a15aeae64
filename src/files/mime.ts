/** Go's mime package built-in table (mime/type.go builtinTypesLower). */
const BUILTIN_TYPES: Record<string, string> = {
  ".avif": "image/avif",
  ".css": "text/css; charset=utf-8",
  ".gif": "image/gif",
  ".htm": "text/html; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".jpeg": "image/jpeg",
  ".jpg": "image/jpeg",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".mjs": "text/javascript; charset=utf-8",
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
  ".webp": "image/webp",
  ".xml": "text/xml; charset=utf-8",
};

/** What read-file answers when the extension names no type. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** Go's filepath.Ext: the suffix from the last dot of the last element, or "". */
export function goExt(p: string): string {
  const base = p.slice(p.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot === -1 ? "" : base.slice(dot);
}

/** The Content-Type for `filePath` by extension, as mime.TypeByExtension picks it (case-insensitively). */
export function contentTypeOf(filePath: string): string {
  const ext = goExt(filePath);
  return BUILTIN_TYPES[ext] ?? BUILTIN_TYPES[ext.toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
