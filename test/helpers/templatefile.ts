/**
 * Renders a template as Terraform's templatefile() does for the subset the
 * Coder module uses: `${NAME}` takes the variable's value (an unset one is an
 * error, as in Terraform) and `$${` stands for a literal `${`.
 */
export function renderTemplate(text: string, vars: Record<string, string | number | boolean>): string {
  return text.replace(/\$\$\{|\$\{([A-Za-z_]+)\}/g, (match, name: string | undefined) => {
    if (match === "$${") return "${";
    if (!name || !(name in vars)) throw new Error(`template variable ${name} is not set`);
    return String(vars[name]);
  });
}

/** The `${NAME}` placeholders of a template, ignoring escaped `$${…}`. */
export function templateVariables(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<!\$)\$\{([A-Za-z_]+)\}/g)].map((m) => m[1]!));
}
