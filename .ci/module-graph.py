#!/usr/bin/env python3
"""Prints the library's module graph and fails on an import cycle or an import that goes up a layer.

The graph's nodes are the top-level modules of `src/`. An edge is any `crate::` path outside
comments and unit tests: a plain path (`crate::users::create`), every item of a grouped import
(`use crate::{Error, payments::{self, Payment}}`), and a name the crate root re-exports
(`crate::Error` is `error`'s, as `src/lib.rs` says with `pub use error::{Error, ...}`).

`--self-test` plants a cycle and a layer violation, each only visible through a grouped import or
a root re-export, in a scratch tree and fails unless both are found.
"""
import os
import re
import sys
import tempfile

# Lowest first: a module may use its own layer and the ones below, never one above.
LAYERS = [
    ("ground", {"error", "ids", "kinds", "numeric", "document", "hosts", "config", "session", "cursor", "telemetry"}),
    ("tables", {"users", "accounts", "payments", "articles", "page", "bulk", "copy"}),
    ("money", {"transactions", "atomic"}),
    ("tooling", {"schema", "grants", "adopt", "dump", "fixture", "replica", "local", "demo"}),
]


def strip(text):
    """The code of a file without its unit tests, comments and string literals' contents."""
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def group_items(text, start):
    """The first path segment of every item of the brace group that opens at text[start]."""
    depth, item, items = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                items.append(item)
                break
        if depth == 1 and ch == ",":
            items.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    return [re.split(r"::|\s|\{", i.strip(), maxsplit=1)[0] for i in items if i.strip()]


def crate_names(code):
    """Every first segment named after `crate::`, grouped or not."""
    names = set()
    for m in re.finditer(r"\bcrate::(\{|[A-Za-z_][A-Za-z0-9_]*)", code):
        if m.group(1) == "{":
            names.update(group_items(code, m.start(1)))
        else:
            names.add(m.group(1))
    return names - {"self", ""}


def root_reexports(lib_text, modules):
    """Names the crate root re-exports from its own modules: `pub use error::{Error, Result}`."""
    names = {}
    for m in re.finditer(r"pub use ([a-z_]+)::(\{[^;]*\}|[A-Za-z_][A-Za-z0-9_]*)\s*;", strip(lib_text)):
        module, rest = m.group(1), m.group(2)
        if module not in modules:
            continue
        items = group_items(rest, 0) if rest.startswith("{") else [rest]
        for item in items:
            names[item] = module
    return names


def graph_of(src):
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                files[os.path.relpath(path, src)] = open(path, encoding="utf-8").read()
    modules = {
        rel.split(os.sep)[0].removesuffix(".rs")
        for rel in files
        if not rel.startswith("bin" + os.sep) and rel != "lib.rs"
    }
    reexports = root_reexports(files.get("lib.rs", ""), modules)
    graph = {}
    for rel, text in files.items():
        if rel.startswith("bin" + os.sep) or rel == "lib.rs":
            continue
        module = rel.split(os.sep)[0].removesuffix(".rs")
        deps = {reexports.get(n, n) for n in crate_names(strip(text))}
        graph.setdefault(module, set()).update(d for d in deps if d in modules and d != module)
    return graph


def cycles_of(graph):
    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for dep in sorted(graph.get(node, ())):
                if dep == start:
                    return path + [start]
                if dep not in seen:
                    seen.add(dep)
                    stack.append((dep, path + [dep]))
        return None

    return [c for c in map(cycle_from, sorted(graph)) if c]


def layer_of(module):
    for i, (_, members) in enumerate(LAYERS):
        if module in members:
            return i
    return None


def layer_problems(graph):
    problems = []
    for module in sorted(graph):
        if layer_of(module) is None:
            problems.append(f"{module} is in no layer (add it to LAYERS in .ci/module-graph.py)")
            continue
        for dep in sorted(graph[module]):
            if layer_of(dep) is not None and layer_of(dep) > layer_of(module):
                problems.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) uses {dep} ({LAYERS[layer_of(dep)][0]})"
                )
    return problems


def check(src, quiet=False):
    graph = graph_of(src)
    if not quiet:
        for module in sorted(graph, key=lambda m: (layer_of(m) or 0, m)):
            layer = LAYERS[layer_of(module)][0] if layer_of(module) is not None else "?"
            print(f"[{layer}] {module} -> {', '.join(sorted(graph[module])) or '(nothing)'}")
    cycles, problems = cycles_of(graph), layer_problems(graph)
    return graph, cycles, problems


def self_test():
    planted = {
        "lib.rs": "pub mod error;\npub mod users;\npub mod transactions;\npub use error::{Error, Result};\n",
        # error -> users only through a grouped import; users -> error only through the re-export.
        "error.rs": "use crate::{users::UserId, ids};\npub enum Error {}\n",
        "users.rs": "use crate::Error;\n// crate::transactions in a comment is no edge\npub struct UserId;\n",
        # A table module going up to money, through a grouped import's nested item.
        "transactions.rs": "pub fn f() {}\n",
    }
    planted["users.rs"] += "use crate::{\n    transactions::{self, f},\n};\n"
    with tempfile.TemporaryDirectory() as src:
        for name, text in planted.items():
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        graph, cycles, problems = check(src, quiet=True)
    failures = []
    if graph.get("error") != {"users"} or graph.get("users") != {"error", "transactions"}:
        failures.append(f"planted edges not seen: {graph}")
    if not any(c[0] == "error" and "users" in c for c in cycles):
        failures.append(f"the planted cycle error -> users -> error was not found: {cycles}")
    if not any("users (tables) uses transactions (money)" == p for p in problems):
        failures.append(f"the planted layer violation was not found: {problems}")
    if failures:
        print("module-graph self-test failed:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print("self-test: a planted cycle and a planted layer violation are both found")


if __name__ == "__main__":
    if "--self-test" in sys.argv[1:]:
        self_test()
        sys.exit(0)
    graph, cycles, problems = check("src")
    if cycles:
        print("import cycles:", *(" -> ".join(c) for c in cycles), sep="\n  ", file=sys.stderr)
    if problems:
        print("layer violations:", *problems, sep="\n  ", file=sys.stderr)
    if cycles or problems:
        sys.exit(1)
    print(f"{len(graph)} modules in {len(LAYERS)} layers, no import cycle, no import up a layer")
