import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Edit, EditError, type MatchPass, applyEdits } from "../../src/files/edit-engine.js";

type EditSpec = [search: string, replace: string, replaceAll?: boolean];

function edits(specs: EditSpec[]): Edit[] {
  return specs.map(([search, replace, replaceAll = false]) => ({ search, replace, replaceAll }));
}

/** Applies the edits to UTF-8 text and returns the result as text. */
function apply(content: string, ...specs: EditSpec[]): string {
  return applyEdits(Buffer.from(content), edits(specs)).content.toString();
}

function passes(content: string, ...specs: EditSpec[]): MatchPass[] {
  return applyEdits(Buffer.from(content), edits(specs)).passes;
}

/** The EditError message an edit fails with. */
function failure(content: string, ...specs: EditSpec[]): string {
  try {
    applyEdits(Buffer.from(content), edits(specs));
  } catch (err) {
    assert.ok(err instanceof EditError, `not an EditError: ${String(err)}`);
    return err.message;
  }
  assert.fail("the edit applied");
}

const NOT_FOUND =
  "old_text not found in file. Verify that old_text matches the file content exactly, including whitespace and indentation";

describe("exact pass", () => {
  it("replaces a unique substring and reports the exact pass", () => {
    assert.equal(apply("foo bar", ["foo", "bar"]), "bar bar");
    assert.deepEqual(passes("foo bar", ["foo", "bar"]), ["exact"]);
  });

  it("replaces a multi-line substring", () => {
    assert.equal(apply("foo\nbar\nbaz\nqux", ["bar\nbaz", "frob"]), "foo\nfrob\nqux");
  });

  it("prefers the exact match over fuzzy ones", () => {
    assert.equal(apply("hello world", ["hello world", "goodbye world"]), "goodbye world");
  });

  it("keeps the bytes around a substring inside a line", () => {
    assert.equal(apply("foo\nfirst line\nbar\n", ["first line", "LINE"]), "foo\nLINE\nbar\n");
    assert.equal(
      apply("line with trailing spaces   \nno trailing ws\n", ["line with trailing spaces", "line with trailing spaces EDITED"]),
      "line with trailing spaces EDITED   \nno trailing ws\n",
    );
    assert.equal(
      apply("\ttab indented line 1\n\ttab indented line 2\n    spaces line 3\n", ["\ttab indented line 1", "\ttab indented line 1 EDITED"]),
      "\ttab indented line 1 EDITED\n\ttab indented line 2\n    spaces line 3\n",
    );
  });

  it("lets the caller fold a line by dropping the newline from new_text", () => {
    assert.equal(apply("foo\nline\nbar\n", ["line\n", "LINE"]), "foo\nLINEbar\n");
  });

  it("removes blank lines that old_text names exactly", () => {
    assert.equal(apply("above\n\n\nbelow\n", ["above\n\n\nbelow", "above\nbelow"]), "above\nbelow\n");
  });
});

describe("trailing-whitespace pass", () => {
  it("matches lines whose trailing spaces and tabs differ, keeping the file's trailing whitespace", () => {
    assert.equal(apply("foo   \nbar\t\t\nbaz", ["foo\nbar\nbaz", "replaced"]), "replaced   ");
    assert.deepEqual(passes("foo   \nbar\t\t\nbaz", ["foo\nbar\nbaz", "replaced"]), ["trailing_whitespace"]);
  });

  it("deletes a line whose trailing spaces old_text omits", () => {
    assert.equal(apply("foo\nline   \nbar\n", ["line\n", ""]), "foo\nbar\n");
  });

  it("keeps the file's (absent) trailing space and ending when search and replace agree on theirs", () => {
    assert.equal(apply("foo\nkey\nbar\n", ["key ", "KEY "]), "foo\nKEY\nbar\n");
  });

  it("matches LF old_text against CRLF lines and deletes the line", () => {
    assert.equal(apply("foo\r\nline\r\nbar\r\n", ["line\n", ""]), "foo\r\nbar\r\n");
  });

  it("does not skip blank lines the file has between matched lines", () => {
    assert.equal(failure("above\n\n\nbelow\n", ["above\nbelow", "above\nbelow"]), NOT_FOUND);
  });
});

describe("indentation pass", () => {
  it("matches regardless of leading whitespace and keeps the file's tab when search and replace agree", () => {
    assert.equal(apply("foo\r\n\tline\r\nbar\r\n", ["  line\n", "  LINE\n"]), "foo\r\n\tLINE\r\nbar\r\n");
    assert.equal(apply("foo\r\n\tline\r\nbar\r\n", ["       line\n", "       LINE\n"]), "foo\r\n\tLINE\r\nbar\r\n");
    assert.deepEqual(passes("foo\r\n\tline\r\nbar\r\n", ["  line\n", "  LINE\n"]), ["indentation"]);
  });

  it("writes new_text's indentation where the caller changed it", () => {
    assert.equal(apply("foo\r\n\tline\r\nbar\r\n", ["  line\n", "    LINE\n"]), "foo\r\n    LINE\r\nbar\r\n");
    assert.equal(apply("foo\n\tline\n\tbar\n", ["\tline\n", "  line\n"]), "foo\n  line\n\tbar\n");
  });

  it("does not fold the next line into the replacement", () => {
    assert.equal(apply("\titem one\n\titem two\n", ["  item one\n", "  item one EDITED\n"]), "\titem one EDITED\n\titem two\n");
  });

  it("drops matched lines a shorter replacement leaves out without merging the next line", () => {
    assert.equal(apply("\tone\n\ttwo\n\tthree\n\tafter\n", ["    one\n    two\n    three\n", "    ONE\n    TWO\n"]), "\tONE\n\tTWO\n\tafter\n");
    assert.equal(apply("foo\nkeep\ndrop\nbar\n", ["keep\ndrop\n", "keep\n"]), "foo\nkeep\nbar\n");
  });

  it("keeps a collapsed region's following line intact (Coder's httpapi reproduction)", () => {
    const content =
      "\tnameValidator := func(fl validator.FieldLevel) bool {\n\t\tf := fl.Field().Interface()\n\t\tstr, ok := f.(string)\n" +
      "\t\tif !ok {\n\t\t\treturn false\n\t\t}\n\t\tvalid := codersdk.NameValid(str)\n\t\treturn valid == nil\n\t}\n";
    const search =
      "        f := fl.Field().Interface()\n        str, ok := f.(string)\n        if !ok {\n            return false\n" +
      "        }\n        valid := codersdk.NameValid(str)";
    const replace = "        f := fl.Field().Interface()\n        str, _ := f.(string)\n        valid := codersdk.NameValid(str)";
    assert.equal(
      apply(content, [search, replace]),
      "\tnameValidator := func(fl validator.FieldLevel) bool {\n\t\tf := fl.Field().Interface()\n\t\tstr, _ := f.(string)\n" +
        "\t\tvalid := codersdk.NameValid(str)\n\t\treturn valid == nil\n\t}\n",
    );
  });

  it("matches old_text whose trailing line has no newline and takes the file's CRLF", () => {
    assert.equal(apply("foo\r\nkey\r\nbar\r\n", ["  key", "KEY"]), "foo\r\nKEY\r\nbar\r\n");
  });

  it("gives an empty-bodied replacement line no whitespace from the file", () => {
    assert.equal(apply("prefix\n  code  \nsuffix\n", ["code\n", "\n"]), "prefix\n\nsuffix\n");
  });
});

describe("tabs against spaces", () => {
  it("edits a tab-indented file through a space-indented old_text", () => {
    assert.equal(
      apply("\tif true {\n\t\tfoo()\n\t}", ["    if true {\n        foo()\n    }", "\tif true {\n\t\tbar()\n\t}"]),
      "\tif true {\n\t\tbar()\n\t}",
    );
    assert.equal(
      apply("func main() {\n\tresult := compute()\n\tfmt.Println(result)\n}", [
        "  result := compute()\n  fmt.Println(result)\n",
        "\tresult := compute()\n\tlog.Println(result)\n",
      ]),
      "func main() {\n\tresult := compute()\n\tlog.Println(result)\n}",
    );
  });

  it("matches old_text at the wrong depth", () => {
    assert.equal(apply("\t\t\tdeep()\n\t\t\tnested()", ["\tdeep()\n\tnested()", "\t\t\tdeep()\n\t\t\tchanged()"]), "\t\t\tdeep()\n\t\t\tchanged()");
  });

  it("keeps Coder's output when paired middle lines change depth (their indentation leaks)", () => {
    const content = "func main() {\n\tif condition {\n\t\tdoSomething()\n\t\tdoMore()\n\t}\n}\n";
    const search = "    if condition {\n        doSomething()\n        doMore()\n    }";
    assert.equal(apply(content, [search, "    doSomething()\n    doMore()"]), "func main() {\n\tdoSomething()\n    doMore()\n}\n");
  });
});

describe("deeper indentation of inserted lines", () => {
  it("wraps a line in a new block in a tab file from a 4-space caller", () => {
    const content = 'func main() {\n\tfmt.Println("hello")\n\tfmt.Println("world")\n}\n';
    const search = '    fmt.Println("hello")\n    fmt.Println("world")';
    const replace = '    fmt.Println("hello")\n    if verbose {\n        fmt.Println("world")\n    }';
    assert.equal(apply(content, [search, replace]), 'func main() {\n\tfmt.Println("hello")\n\tif verbose {\n\t\tfmt.Println("world")\n\t}\n}\n');
  });

  it("wraps a line in a new block in a 2-space file from a 4-space caller", () => {
    const content = "function main() {\n  console.log('hello')\n  console.log('world')\n}\n";
    const search = "    console.log('hello')\n    console.log('world')";
    const replace = "    console.log('hello')\n    if (verbose) {\n        console.log('world')\n    }";
    assert.equal(apply(content, [search, replace]), "function main() {\n  console.log('hello')\n  if (verbose) {\n    console.log('world')\n  }\n}\n");
  });

  it("expands one line into an error-handling block", () => {
    const content = "func main() {\n\tx := getValue()\n\tfmt.Println(x)\n}\n";
    const replace = "    x, err := getValue()\n    if err != nil {\n        log.Fatal(err)\n    }";
    assert.equal(
      apply(content, ["    x := getValue()", replace]),
      "func main() {\n\tx, err := getValue()\n\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n\tfmt.Println(x)\n}\n",
    );
  });

  it("inserts a block after an existing one", () => {
    const content =
      "func loadConfig() (*Config, error) {\n\tvar cfg Config\n\terr = json.Unmarshal(data, &cfg)\n\tif err != nil {\n" +
      "\t\treturn nil, err\n\t}\n\n\treturn &cfg, nil\n}\n";
    const search =
      "    var cfg Config\n    err = json.Unmarshal(data, &cfg)\n    if err != nil {\n        return nil, err\n    }\n\n    return &cfg, nil";
    const replace =
      "    var cfg Config\n    err = json.Unmarshal(data, &cfg)\n    if err != nil {\n" +
      '        return nil, fmt.Errorf("unmarshal: %w", err)\n    }\n    if err := cfg.Validate(); err != nil {\n' +
      '        return nil, fmt.Errorf("validate: %w", err)\n    }\n\n    return &cfg, nil';
    assert.equal(
      apply(content, [search, replace]),
      "func loadConfig() (*Config, error) {\n\tvar cfg Config\n\terr = json.Unmarshal(data, &cfg)\n\tif err != nil {\n" +
        '\t\treturn nil, fmt.Errorf("unmarshal: %w", err)\n\t}\n\tif err := cfg.Validate(); err != nil {\n' +
        '\t\treturn nil, fmt.Errorf("validate: %w", err)\n\t}\n\n\treturn &cfg, nil\n}\n',
    );
  });
});

describe("inserted lines", () => {
  it("takes the file's indentation for a line appended after the last pair", () => {
    assert.equal(apply("foo\n\tline\nbar\n", ["    line\n", "    line\n    extra\n"]), "foo\n\tline\n\textra\nbar\n");
  });

  it("indents an inserted line inside a block at the file's depth", () => {
    const content =
      "\tnameValidator := func(fl validator.FieldLevel) bool {\n\t\tf := fl.Field().Interface()\n\t\tstr, ok := f.(string)\n" +
      "\t\tif !ok {\n\t\t\treturn false\n\t\t}\n\t\tvalid := codersdk.NameValid(str)\n\t\treturn valid == nil\n\t}\n";
    const search =
      "        f := fl.Field().Interface()\n        str, ok := f.(string)\n        if !ok {\n            return false\n" +
      "        }\n        valid := codersdk.NameValid(str)";
    const replace =
      "        f := fl.Field().Interface()\n        str, ok := f.(string)\n        if !ok {\n" +
      '            log.Println("type assertion failed")\n            return false\n        }\n        valid := codersdk.NameValid(str)';
    assert.equal(
      apply(content, [search, replace]),
      "\tnameValidator := func(fl validator.FieldLevel) bool {\n\t\tf := fl.Field().Interface()\n\t\tstr, ok := f.(string)\n" +
        '\t\tif !ok {\n\t\t\tlog.Println("type assertion failed")\n\t\t\treturn false\n\t\t}\n\t\tvalid := codersdk.NameValid(str)\n' +
        "\t\treturn valid == nil\n\t}\n",
    );
  });

  it("translates inserted lines but keeps Coder's leaked middle lines (tab file)", () => {
    const content =
      "func transform(items []Item) []Result {\n\tvar results []Result\n\tfor _, item := range items {\n\t\tif item.Valid {\n" +
      "\t\t\tresults = append(results, convert(item))\n\t\t}\n\t}\n\treturn results\n}\n";
    const search =
      "    var results []Result\n    for _, item := range items {\n        if item.Valid {\n" +
      "            results = append(results, convert(item))\n        }\n    }\n    return results";
    const replace =
      "    var results []Result\n    for _, item := range items {\n        result, err := convert(item)\n" +
      "        if err != nil {\n            continue\n        }\n        results = append(results, result)\n    }\n    return results";
    assert.equal(
      apply(content, [search, replace]),
      "func transform(items []Item) []Result {\n\tvar results []Result\n\tfor _, item := range items {\n" +
        "\t\tresult, err := convert(item)\n        if err != nil {\n            continue\n\t\t}\n" +
        "\t\tresults = append(results, result)\n\t}\n\treturn results\n}\n",
    );
  });

  it("translates inserted lines but keeps Coder's leaked middle lines (2-space file)", () => {
    const content =
      "function transform(items) {\n  const results = [];\n  for (const item of items) {\n    if (item.valid) {\n" +
      "      results.push(convert(item));\n    }\n  }\n  return results;\n}\n";
    const search =
      "    const results = [];\n    for (const item of items) {\n        if (item.valid) {\n" +
      "            results.push(convert(item));\n        }\n    }\n    return results;";
    const replace =
      "    const results = [];\n    for (const item of items) {\n        const result = convert(item);\n" +
      "        if (!result) {\n            continue;\n        }\n        results.push(result);\n    }\n    return results;";
    assert.equal(
      apply(content, [search, replace]),
      "function transform(items) {\n  const results = [];\n  for (const item of items) {\n    const result = convert(item);\n" +
        "        if (!result) {\n            continue;\n    }\n    results.push(result);\n  }\n  return results;\n}\n",
    );
  });
});

describe("CRLF files and forced endings", () => {
  it("keeps CRLF around an exact single-line edit", () => {
    assert.equal(apply("line one\r\nline two\r\nline three\r\n", ["line two", "line two EDITED"]), "line one\r\nline two EDITED\r\nline three\r\n");
  });

  it("writes CRLF for LF search and replace lines matched on a CRLF file", () => {
    assert.equal(
      apply("line one\r\nline two\r\nline three\r\n", ["line one\nline two\n", "line one EDITED\nline two EDITED\n"]),
      "line one EDITED\r\nline two EDITED\r\nline three\r\n",
    );
    assert.equal(apply("line1\r\nline2\r\nline3\r\n", ["line1\nline2\n", "line1\nINSERTED\nline2\n"]), "line1\r\nINSERTED\r\nline2\r\nline3\r\n");
  });

  it("forces CRLF into an exact-pass replacement on a CRLF file without a final newline", () => {
    assert.equal(apply("alpha\r\nbeta\r\ngamma", ["gamma", "gamma\ndelta\nepsilon"]), "alpha\r\nbeta\r\ngamma\r\ndelta\r\nepsilon");
    assert.equal(
      apply('package main\r\n\r\nfunc main() {\r\n\tprintln("hi")\r\n}', ['\tprintln("hi")\n}', '\tprintln("hi")\n\tprintln("bye")\n\treturn\n}']),
      'package main\r\n\r\nfunc main() {\r\n\tprintln("hi")\r\n\tprintln("bye")\r\n\treturn\r\n}',
    );
  });

  it("writes the file's LF when the caller sends CRLF search and replace", () => {
    assert.equal(apply("one\ntwo\nthree\n", ["one\r\ntwo\r\n", "ONE\r\nTWO\r\n"]), "ONE\nTWO\nthree\n");
  });

  it("keeps CRLF when the caller sent CRLF everywhere", () => {
    assert.equal(apply("a\r\nb\r\nc\r\n", ["a\r\nb\r\n", "A\r\nB\r\n"]), "A\r\nB\r\nc\r\n");
  });

  it("gives a multi-line replacement of a single-line search the file's CRLF", () => {
    assert.equal(apply("a\r\nx\r\nb\r\n", ["x", "X\nY"]), "a\r\nX\r\nY\r\nb\r\n");
    assert.equal(apply("a\r\nx\r\nb\r\n", ["x", "X"]), "a\r\nX\r\nb\r\n");
  });

  it("leaves the last line's own ending in an exact-pass replacement, as Coder does", () => {
    assert.equal(apply("a\r\nx\r\nb\r\n", ["x", "X\nY\n"]), "a\r\nX\r\nY\n\r\nb\r\n");
  });

  it("takes LF when CRLF lines do not outnumber LF lines", () => {
    assert.equal(apply("a\r\nb\nx\n", ["x", "X\r\nY"]), "a\r\nb\nX\nY\n");
  });
});

describe("caller ending intent", () => {
  it("honours new_text's endings when old_text's endings match the file and differ from new_text's", () => {
    assert.equal(apply("x\r\ny\r\nz\r\n", ["x\r\ny\r\n", "X\nY\n"]), "X\nY\nz\r\n");
  });

  it("refuses to bridge endings in the fuzzy passes once the caller signalled intent", () => {
    assert.equal(
      failure("x\r\ny\r\nz\r\n", ["x\ny\n", "X\r\nY\r\n"]),
      "old_text not found in file. Verify that old_text matches the file content exactly, including whitespace, indentation, and line endings",
    );
  });
});

describe("replace_all in each pass", () => {
  it("replaces every exact occurrence", () => {
    assert.equal(apply("foo bar foo baz foo", ["foo", "qux", true]), "qux bar qux baz qux");
  });

  it("replaces every trailing-whitespace match, each keeping its own trailing space", () => {
    assert.equal(apply("hello   \nworld\nhello   \nagain", ["hello\n", "bye\n", true]), "bye   \nworld\nbye   \nagain");
    assert.equal(apply("key\nkey\nother\n", ["key ", "KEY ", true]), "KEY\nKEY\nother\n");
  });

  it("replaces every indentation match, at every depth", () => {
    assert.equal(
      apply("\t\talpha\n\t\tbeta\n\t\talpha\n\t\tgamma", ["    alpha\n", "\t\tREPLACED\n", true]),
      "\t\tREPLACED\n\t\tbeta\n\t\tREPLACED\n\t\tgamma",
    );
    const content = "package main\n\nfunc a() {\n\t\tif err != nil {\n\t\t\treturn err\n\t\t}\n\t\t\tif err != nil {\n\t\t\t\treturn err\n\t\t\t}\n}\n";
    const search = "    if err != nil {\n        return err\n    }\n";
    const replace = '    if err != nil {\n        return fmt.Errorf("wrap: %w", err)\n    }\n';
    assert.equal(
      apply(content, [search, replace, true]),
      'package main\n\nfunc a() {\n\t\tif err != nil {\n\t\t\treturn fmt.Errorf("wrap: %w", err)\n\t\t}\n' +
        '\t\t\tif err != nil {\n\t\t\t\treturn fmt.Errorf("wrap: %w", err)\n\t\t\t}\n}\n',
    );
  });

  it("expands every match with translated indentation", () => {
    const block = (p: string) => `\thttp.HandleFunc("/${p}", func(w http.ResponseWriter, r *http.Request) {\n`;
    const content = `func handlers() {\n${block("a")}\t\tdata := readBody(r)\n\t\tprocess(data)\n\t})\n${block("b")}\t\tdata := readBody(r)\n\t\tprocess(data)\n\t})\n}\n`;
    const replace = "        data := readBody(r)\n        if data == nil {\n            return\n        }\n        process(data)";
    const body = "\t\tdata := readBody(r)\n\t\tif data == nil {\n\t\t\treturn\n\t\t}\n\t\tprocess(data)\n\t})\n";
    assert.equal(
      apply(content, ["        data := readBody(r)\n        process(data)", replace, true]),
      `func handlers() {\n${block("a")}${body}${block("b")}${body}}\n`,
    );
  });

  it("expands every match on a CRLF file with CRLF throughout", () => {
    assert.equal(apply("key\r\nother\r\nkey\r\n", ["key\n", "KEY\nEXTRA\n", true]), "KEY\r\nEXTRA\r\nother\r\nKEY\r\nEXTRA\r\n");
    assert.equal(apply("line one\r\nother\r\nline one\r\n", ["line one\n", "LINE\n", true]), "LINE\r\nother\r\nLINE\r\n");
  });
});

describe("ambiguous matches", () => {
  const ambiguous = (n: number) =>
    `old_text matches ${n} occurrences (expected exactly 1). Include more surrounding context to make the match unique, or set replace_all to true`;

  it("refuses an exact old_text found several times and counts them", () => {
    assert.equal(failure("foo bar foo baz foo", ["foo", "qux"]), ambiguous(3));
    assert.equal(failure("a\na\na\nother\n", ["a", "A"]), ambiguous(3));
  });

  it("counts non-overlapping exact occurrences as Go's strings.Count does", () => {
    assert.equal(failure("aaaa", ["aa", "b"]), ambiguous(2));
  });

  it("refuses a fuzzy old_text matching several windows", () => {
    assert.equal(failure("x  \ny\nx \ny\n", ["x\ny\n", "z\n"]), ambiguous(2));
    assert.equal(failure("\tx\n  x\n", ["    x\n", "z\n"]), ambiguous(2));
  });
});

describe("not found, with each hint kind", () => {
  it("fails without a hint when nothing resembles old_text", () => {
    assert.equal(failure("original content", ["this does not exist in the file", "whatever"]), NOT_FOUND);
    assert.equal(failure("hello\n", ["Hello\n", "HELLO\n"]), NOT_FOUND);
    assert.equal(failure("package foo\n\nfunc bar() {}\n", ["func zzzz() {}\n", "new\n"]), NOT_FOUND);
  });

  it("names a repeated character the old_text has too few of", () => {
    const content = `<header>\n{/* SECTION HEADING ${"─".repeat(37)} */}\n<body/>\n`;
    assert.equal(
      failure(content, [`{/* SECTION HEADING ${"─".repeat(32)} */}\n`, "{/* REPLACED */}\n"]),
      `${NOT_FOUND}. Your old_text has 32 "─" (U+2500); the file has 37 at line 2`,
    );
    assert.equal(
      failure("title\nsection =======\nbody\n", ["section =====\n", "section *****\n"]),
      `${NOT_FOUND}. Your old_text has 5 "=" (U+003D); the file has 7 at line 2`,
    );
  });

  it("lists every candidate line, five at most", () => {
    assert.equal(
      failure("section =======\nsection ===\n", ["section =====\n", "section *****\n"]),
      `${NOT_FOUND}. Your old_text has 5 "=" (U+003D); the file has 7 at line 1, 3 at line 2`,
    );
    const six = "section ==\nsection ===\nsection ======\nsection =======\nsection ========\nsection =========\n";
    assert.equal(
      failure(six, ["section =====\n", "section *****\n"]),
      `${NOT_FOUND}. Your old_text has 5 "=" (U+003D); the file has 2 at line 1, 3 at line 2, 6 at line 3, 7 at line 4, 8 at line 5 and 1 more`,
    );
  });

  it("counts a character only the file has", () => {
    assert.equal(
      failure("section ==bb\n", ["section ==\n", "section --\n"]),
      `${NOT_FOUND}. Your old_text has 0 "b" (U+0062); the file has 2 at line 1`,
    );
  });

  it("gives no miscount hint for two differing characters or a single extra one", () => {
    assert.equal(failure("first\na===b\nlast\n", ["a=====b!\n", "unused\n"]), NOT_FOUND);
    assert.equal(failure("first\nxa\nlast\n", ["xab\n", "unused\n"]), NOT_FOUND);
  });

  it("caps miscount hints at three", () => {
    const message = failure("section ==\ndivider ++\nline ##\nheader @@\n", ["section ====\ndivider ++++\nline ####\nheader @@@@\n", "unused\n"]);
    assert.equal(
      message,
      `${NOT_FOUND}. Your old_text has 4 "=" (U+003D); the file has 2 at line 1. ` +
        `Your old_text has 4 "+" (U+002B); the file has 2 at line 2. ` +
        `Your old_text has 4 "#" (U+0023); the file has 2 at line 3. and 1 more`,
    );
  });

  it("asks whether old_text and new_text were swapped when new_text is in the file", () => {
    const content = "package main\n\nfunc adder(a int, b int) int { return a + b }\n\n// trailing comment\n";
    assert.equal(
      failure(content, ["func adder(a, b int) int {\n\treturn a + b\n}\n", "func adder(a int, b int) int { return a + b }\n"]),
      `${NOT_FOUND}. Did you swap "old_text" and "new_text"? Your new_text string appears at line 3`,
    );
  });

  it("lists the swap hint's lines once each, five at most, overlapping matches included", () => {
    const body = "matching block body of substantial length\n";
    const absent = "this search text is absent from the file\n";
    const swap = `${NOT_FOUND}. Did you swap "old_text" and "new_text"? Your new_text string appears at line `;
    assert.equal(failure(`a\n${body}b\n${body}c\n${body}d\n`, [absent, body]), `${swap}2, 4, 6`);
    assert.equal(failure(body.repeat(7), [absent, body]), `${swap}1, 2, 3, 4, 5 and 2 more`);
    assert.equal(failure("alpha\n" + "beta\n".repeat(7) + "gamma\n", [absent, "beta\n"]), `${swap}2, 3, 4, 5, 6 and 2 more`);
    const a = "A".repeat(20);
    assert.equal(failure(`prefix\n${a} ${a} ${a}\nsuffix\n`, [absent, `${a}\n`]), `${swap}2`);
    const b = "B".repeat(20);
    assert.equal(failure(`${a}\n${b}\n${a}\n${b}\n${a}\n`, [absent, `${a}\n${b}\n${a}\n`]), `${swap}1, 3`);
  });

  it("finds the swapped new_text through the fuzzy passes too", () => {
    const swap = `${NOT_FOUND}. Did you swap "old_text" and "new_text"? Your new_text string appears at line 2`;
    const absent = "absent search line not in file at all\n";
    const body = "matching block body of substantial length";
    assert.equal(failure(`preamble\n${body}   \ntrailer\n`, [absent, `${body}\n`]), swap);
    assert.equal(failure(`preamble\n\t\t${body}\ntrailer\n`, [absent, `${body}\n`]), swap);
  });

  it("skips the miscount hint when comparing every line would cost over a million line pairs", () => {
    const file = "section ==\n".repeat(600);
    assert.equal(failure(file, ["section ====\n".repeat(2000), "x\n"]), NOT_FOUND);
    const hint = 'Your old_text has 4 "=" (U+003D); the file has 2 at line 1, 2 at line 2, 2 at line 3, 2 at line 4, 2 at line 5 and 595 more';
    assert.equal(failure(file, ["section ====\n".repeat(2), "x\n"]), `${NOT_FOUND}. ${hint}. ${hint}`);
  });

  it("prefers the miscount hint over the swap hint", () => {
    const content = `<header>\n{/* SECTION HEADING ${"─".repeat(8)} */}\n<body>\ndoSomethingWithLongName(ctx)\n</body>\n`;
    assert.equal(
      failure(content, [`{/* SECTION HEADING ${"─".repeat(6)} */}\n`, "doSomethingWithLongName(ctx)\n"]),
      `${NOT_FOUND}. Your old_text has 6 "─" (U+2500); the file has 8 at line 2`,
    );
  });
});

describe("empty old_text", () => {
  it("is refused, with or without replace_all", () => {
    const message = "old_text must not be empty; include the text you want to match";
    assert.equal(failure("hello\n", ["", "X"]), message);
    assert.equal(failure("hello\n", ["", "X", true]), message);
  });
});

describe("sequential edits", () => {
  it("lets a later edit see an earlier edit's result", () => {
    assert.equal(apply("foo bar", ["foo", "bar"], ["bar", "qux", true]), "qux qux");
    assert.deepEqual(passes("a\n  b\n", ["a", "c"], ["b\n", "B\n"]), ["exact", "exact"]);
    assert.deepEqual(passes("a\nb  \n", ["a\n", "c\n"], ["b\n", "B\n"], ["c\n    B\n", "d\n"]), ["exact", "trailing_whitespace", "indentation"]);
    assert.equal(apply("a\nb  \n", ["a\n", "c\n"], ["b\n", "B\n"]), "c\nB  \n");
  });

  it("fails when an earlier edit made a later one ambiguous", () => {
    assert.match(failure("foo bar", ["foo", "bar"], ["bar", "qux"]), /^old_text matches 2 occurrences/);
  });
});

describe("no newline at end of file", () => {
  it("keeps the missing final newline through exact edits", () => {
    assert.equal(apply("no trailing newline", ["no trailing newline", "no trailing newline EDITED"]), "no trailing newline EDITED");
    assert.equal(apply("foo\nbar", ["bar", "BAR"]), "foo\nBAR");
  });

  it("keeps interior newlines of a fuzzy multi-line replacement that ends at such a file's end", () => {
    assert.equal(apply("foo\nbar", ["foo\nbar\n", "foo\nbaz\nqux\n"]), "foo\nbaz\nqux");
    assert.equal(apply("foo\nbar", ["foo\nbar\n", "mid1\n\nmid2\n"]), "mid1\n\nmid2");
  });

  it("ends an inserted last line at such a file's end without a newline", () => {
    assert.equal(apply("x\n\tlast", ["    last", "    last\n    more"]), "x\n\tlast\n\tmore");
  });

  it("gives a fuzzy replacement's unterminated last line a newline when the match is not at the end", () => {
    assert.equal(apply("a\nb\n", ["a \n", "A"]), "A\nb\n");
  });
});
