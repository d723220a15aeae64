/**
 * A value built on first use by `load` (typically a dynamic `import()` of a
 * part's code, so an agentd nobody calls never holds it). Callers share one
 * load while it runs and its result afterwards. A load that failed is
 * forgotten: its callers see the error, and the next call loads again.
 */
export function lazily<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    if (loading) return loading;
    const attempt = Promise.resolve().then(load);
    loading = attempt;
    attempt.catch(() => {
      if (loading === attempt) loading = undefined;
    });
    return attempt;
  };
}
