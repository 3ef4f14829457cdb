#!/usr/bin/env python3
"""Prints the library's module graph and fails on an import cycle or an import that goes up a layer.

The layers are the folders of `src/`, lowest first in LAYERS: a module is `src/<layer>/<name>.rs`
or `src/<layer>/<name>/`, and may use modules of its own layer and the ones below, never one
above. A source file outside the layer folders (but for `lib.rs` and the binary's `bin/`) is in
no layer and fails the check.

An edge is any path to another module outside comments and unit tests:
- `crate::users::create`, and every item of a grouped import
  (`use crate::{Error, payments::{self, Payment}}`);
- through a layer's folder: `crate::tables::users`, `crate::tables::{users, accounts}`;
- through `super::`: `super::accounts` in `src/tables/users/mod.rs` is `src/tables/accounts`;
- a name the crate root re-exports (`crate::Error` is `error`'s, as `src/lib.rs` says with
  `pub use error::{Error, ...}`).

`--self-test` plants a cycle, a layer violation and a file in no layer, each only visible through
a grouped import, a layer path, a `super::` path or a root re-export, in a scratch tree, and fails
unless all are found.
"""
import os
import re
import sys
import tempfile

# Lowest first. `net` (configuration, multi-host lists, sessions, replicas) stands on `ground`
# alone; the tables need neither it nor anything above them.
LAYERS = ["ground", "net", "tables", "money", "ops"]


def strip(text):
    """The code of a file without its unit tests, comments and string literals' contents."""
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def group_items(text, start):
    """The path of every item of the brace group that opens at text[start], as segment lists:
    `{tables::{users, accounts}, Error}` is `tables::users`, `tables::accounts` and `Error`."""
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
    out = []
    for i in items:
        if not i.strip():
            continue
        head = segments(i)
        brace = i.find("{")
        if brace >= 0:
            # A nested group: its prefix, then each of its items after the prefix.
            inner = group_items(i, brace)
            out.extend(head + rest for rest in inner if rest)
            if not inner or any(not rest for rest in inner):
                out.append(head)
        else:
            out.append(head)
    return out


def segments(path):
    """`tables::users::{self, User}` as `["tables", "users"]`; `self` and `as` stop it."""
    out = []
    for part in re.split(r"::", path.strip()):
        part = part.strip()
        m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", part)
        if not m or m.group(0) == "self":
            break
        out.append(m.group(0))
        if m.end() != len(part):
            break
    return out


def paths_after(code, prefix):
    """Every path that follows `prefix::`, as (the prefix as written, segment list); a grouped
    one item by item. `prefix` is a regular expression: `crate`, or `(?:super::)*super`."""
    found = []
    ident = r"[A-Za-z_][A-Za-z0-9_]*"
    pattern = r"\b(" + prefix + r")::((?:" + ident + r"::)*)(\{|" + ident + r")"
    for m in re.finditer(pattern, code):
        head = [s for s in m.group(2).split("::") if s]
        if m.group(3) == "{":
            found.extend((m.group(1), head + item) for item in group_items(code, m.start(3)))
        else:
            found.append((m.group(1), head + [m.group(3)]))
    return found


def module_of(rel):
    """(layer, module) of a file's path below `src/`, or None for lib.rs, bin/ and a layer's
    own mod.rs; (None, rel) for a file in no layer."""
    parts = rel.split(os.sep)
    if parts[0] == "bin" or rel == "lib.rs":
        return None
    if parts[0] in LAYERS and len(parts) >= 2:
        if len(parts) == 2 and parts[1] == "mod.rs":
            return None
        return parts[0], parts[1].removesuffix(".rs")
    return None, rel


def root_reexports(lib_text, modules):
    """Names the crate root re-exports from its modules: `pub use error::{Error, Result}`,
    `pub use tables::users`, `pub use ground::error::Error`."""
    names = {}
    for m in re.finditer(r"pub use ((?:[a-z_]+::)+)(\{[^;]*\}|[A-Za-z_][A-Za-z0-9_]*)\s*;", strip(lib_text)):
        path = [s for s in m.group(1).split("::") if s]
        rest = m.group(2)
        items = [i[0] for i in group_items(rest, 0) if i] if rest.startswith("{") else [rest]
        owner = next((s for s in reversed(path) if s in modules), None)
        for item in items:
            if owner is not None:
                names[item] = owner
            elif path[-1] in LAYERS and item in modules:
                names[item] = item
    return names


def resolve(path, modules):
    """The module a crate-relative path names, or None."""
    if not path:
        return None
    if path[0] in LAYERS and len(path) > 1 and path[1] in modules:
        return path[1]
    return path[0] if path[0] in modules else None


def graph_of(src):
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                files[os.path.relpath(path, src)] = open(path, encoding="utf-8").read()
    homes = {rel: module_of(rel) for rel in files}
    modules = {h[1]: h[0] for h in homes.values() if h and h[0] is not None}
    reexports = root_reexports(files.get("lib.rs", ""), modules)
    graph, strays = {}, sorted(h[1] for h in homes.values() if h and h[0] is None)
    for rel, text in files.items():
        home = homes[rel]
        if not home or home[0] is None:
            continue
        layer, module = home
        code = strip(text)
        deps = set()
        for _, path in paths_after(code, "crate"):
            if path and path[0] in reexports:
                deps.add(reexports[path[0]])
            else:
                deps.add(resolve(path, modules))
        # `super::` from this file: its module path is [layer, module, ...] (a mod.rs is its
        # folder); each `super` goes one up.
        parts = rel.removesuffix(".rs").split(os.sep)
        if parts[-1] == "mod":
            parts.pop()
        for supers, path in paths_after(code, r"(?:super::)*super"):
            base = parts[: max(len(parts) - supers.count("super"), 0)]
            if not base:
                deps.add(resolve(path, modules))
            elif len(base) == 1 and path and path[0] in modules:
                deps.add(path[0])
        graph.setdefault(module, set()).update(d for d in deps if d and d != module)
    return graph, modules, strays


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


def layer_problems(graph, modules, strays):
    problems = [f"src/{s} is in no layer (move it into one of src/{{{','.join(LAYERS)}}}/)" for s in strays]
    for module in sorted(graph):
        for dep in sorted(graph[module]):
            mine, theirs = LAYERS.index(modules[module]), LAYERS.index(modules[dep])
            if theirs > mine:
                problems.append(f"{module} ({modules[module]}) uses {dep} ({modules[dep]})")
    return problems


def file_of(src, path):
    """The module a file is: its path under src without `.rs` (a folder's `mod.rs` is the folder)."""
    rel = os.path.relpath(path, src)[: -len(".rs")]
    return rel[: -len("/mod")] if rel.endswith("/mod") else rel


def file_pairs(src):
    """Files that import each other: within a module folder, `super::x` (or `super::super::x`
    from a nested file) names the sibling file or folder `x`; two files naming each other, however
    they do it, are a pair. A file naming its parent's own items (`super::LedgerEntry`) is no
    edge: only names that are files or folders count."""
    files = {}
    for folder, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs") and "/bin" not in os.path.join(folder, name)[len(src):]:
                path = os.path.join(folder, name)
                files[file_of(src, path)] = path
    edges = {f: set() for f in files}
    for module, path in files.items():
        with open(path, encoding="utf-8") as f:
            text = strip(f.read())
        for m in re.finditer(r"\b((?:super::)+)(\{[^}]*\}|[a-z_][a-z0-9_]*)", text):
            depth = m.group(1).count("super::")
            base = module
            for _ in range(depth):
                base = os.path.dirname(base)
            targets = re.findall(r"\b([a-z_][a-z0-9_]*)\b", m.group(2).strip("{}"))
            for name in targets[:1] if not m.group(2).startswith("{") else targets:
                target = f"{base}/{name}" if base else name
                if target in files and target != module:
                    edges[module].add(target)
    return sorted(
        (a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, set())
    )


def root_paths(src):
    """Code that names a module through the root's re-export (`crate::accounts`) instead of its
    layer path (`crate::tables::accounts`): inside the crate the layers show in the paths. Doc
    comments are not code (they link to the public paths), nor is the binary."""
    layer_of = {}
    for layer in LAYERS:
        folder = os.path.join(src, layer)
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            stem = name[: -len(".rs")] if name.endswith(".rs") else name
            if stem != "mod":
                layer_of[stem] = layer
    found = []
    for folder, _, names in os.walk(src):
        if os.path.relpath(folder, src).split(os.sep)[0] == "bin":
            continue
        for name in names:
            if not name.endswith(".rs") or os.path.join(folder, name) == os.path.join(src, "lib.rs"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                text = strip(f.read())
            for m in re.finditer(r"\bcrate::(\{[^}]*\}|[a-z_][a-z0-9_]*)", text):
                named = re.findall(r"(?:^|[{,]\s*)([a-z_][a-z0-9_]*)", m.group(1).strip())
                for module in named if m.group(1).startswith("{") else [m.group(1)]:
                    if module in layer_of:
                        found.append(f"{os.path.relpath(path, src)}: crate::{module} "
                                     f"(crate::{layer_of[module]}::{module})")
    return found


def check(src, quiet=False):
    graph, modules, strays = graph_of(src)
    if not quiet:
        for module in sorted(graph, key=lambda m: (LAYERS.index(modules[m]), m)):
            print(f"[{modules[module]}] {module} -> {', '.join(sorted(graph[module])) or '(nothing)'}")
    return graph, cycles_of(graph), layer_problems(graph, modules, strays)


def self_test():
    planted = {
        "lib.rs": "mod ground;\nmod tables;\nmod money;\nuse ground::error;\n"
        "pub use tables::users;\npub use error::{Error, Result};\n",
        "ground/mod.rs": "pub mod error;\npub mod ids;\n",
        # error -> users only through a grouped import of a layer path.
        "ground/error.rs": "use crate::{tables::{users::UserId}, ids};\npub enum Error {}\n",
        "ground/ids.rs": "pub struct Id;\n",
        # users -> error only through the root re-export; users -> transactions (up to money)
        # only through `super::super::`; a comment is no edge.
        "tables/users/mod.rs": "use crate::Error;\n// crate::money::transactions in a comment\n"
        "use super::super::money::transactions::{self, f};\npub struct UserId;\n",
        # accounts -> users through `super::` from a nested file.
        "tables/accounts/query.rs": "use super::super::users::UserId;\n",
        "money/transactions.rs": "pub fn f() {}\n",
        # A module outside the layer folders.
        "stray.rs": "pub fn g() {}\n",
    }
    with tempfile.TemporaryDirectory() as src:
        for name, text in planted.items():
            os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        graph, cycles, problems = check(src, quiet=True)
    failures = []
    expected = {"error": {"users", "ids"}, "users": {"error", "transactions"}, "accounts": {"users"}}
    for module, deps in expected.items():
        if graph.get(module) != deps:
            failures.append(f"planted edges of {module} not seen: {graph}")
    if not any(c[0] == "error" and "users" in c for c in cycles):
        failures.append(f"the planted cycle error -> users -> error was not found: {cycles}")
    if "users (tables) uses transactions (money)" not in problems:
        failures.append(f"the planted layer violation was not found: {problems}")
    if not any(p.startswith("src/stray.rs is in no layer") for p in problems):
        failures.append(f"the planted file in no layer was not found: {problems}")
    with tempfile.TemporaryDirectory() as src:
        for name, text in {
            "money/transactions/mod.rs": "mod a;\nmod b;\nmod poster;\npub struct Entry;\n",
            # a -> b through a grouped `super::` import; b -> a through a plain one.
            "money/transactions/a.rs": "use super::{Entry, b::f};\npub fn g() {}\n",
            "money/transactions/b.rs": "use super::a::g;\npub fn f() {}\n",
            # A nested file naming its grandparent's sibling is an edge; the parent's item is not.
            "money/transactions/poster/mod.rs": "use super::Entry;\n",
            "money/transactions/poster/flush.rs": "use super::super::a::g;\n",
        }.items():
            os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        pairs = file_pairs(src)
    if pairs != [("money/transactions/a", "money/transactions/b")]:
        failures.append(f"the planted pair of files a <-> b was not found alone: {pairs}")
    with tempfile.TemporaryDirectory() as src:
        for name, text in {
            "tables/accounts.rs": "pub struct Account;\n",
            "ground/ids.rs": "pub struct Id;\n",
            # Through the root, once plainly and once in a group; the layer path and a doc
            # comment are fine.
            "money/a.rs": "use crate::accounts::Account;\n/// [`crate::ids`]\n"
            "use crate::tables::accounts;\n",
            "money/b.rs": "use crate::{Error, ids::Id};\n",
        }.items():
            os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        by_root = sorted(p.split(":")[0] for p in root_paths(src))
    if by_root != ["money/a.rs", "money/b.rs"]:
        failures.append(f"the planted root paths were not found alone: {by_root}")
    if failures:
        print("module-graph self-test failed:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print("self-test: a planted cycle, layer violation, file in no layer, pair of files that "
          "import each other and module named through the root are all found")


if __name__ == "__main__":
    if "--self-test" in sys.argv[1:]:
        self_test()
        sys.exit(0)
    graph, cycles, problems = check("src")
    pairs = file_pairs("src")
    by_root = root_paths("src")
    if by_root:
        print("modules named by the root's re-export, not their layer path:", *by_root,
              sep="\n  ", file=sys.stderr)
        problems = problems + by_root
    if pairs:
        print("files that import each other:", *(f"{a} <-> {b}" for a, b in pairs), sep="\n  ",
              file=sys.stderr)
        problems = problems + [f"{a} <-> {b}" for a, b in pairs]
    if cycles:
        print("import cycles:", *(" -> ".join(c) for c in cycles), sep="\n  ", file=sys.stderr)
    if problems:
        print("layer violations:", *problems, sep="\n  ", file=sys.stderr)
    if cycles or problems:
        sys.exit(1)
    print(f"{len(graph)} modules in {len(LAYERS)} layers (src/{{{','.join(LAYERS)}}}/), "
          "no import cycle, no import up a layer, no two files that import each other, "
          "every module named by its layer path")
