#!/usr/bin/env python3
"""The docs stay true: every relative link and anchor of README.md, CHANGELOG.md and docs/*.md
resolves, and every count they quote of something the tree holds (modules, migrations, benches,
plan cases, `.sqlx/` files) is the tree's count.

    python3 .ci/docs-check.py              # check this repository
    python3 .ci/docs-check.py --self-test  # plant a broken link, anchor and count; all found

A link is checked outside fenced code blocks; an anchor against the target file's headings,
slugged as GitHub slugs them (lower case, punctuation but `-` and `_` dropped, spaces to `-`,
repeats numbered `-1`, `-2`).
"""

import os
import re
import subprocess
import sys
import tempfile

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

# What a count is written as, and how to count it in the tree.
COUNTS = [
    (re.compile(r"(\d[\d,]*) modules in \d+ layers"), "modules"),
    (re.compile(r"(\d[\d,]*) (?:reversible )?migrations\b"), "migrations"),
    (re.compile(r"(\d[\d,]*) (?:criterion )?benches\b"), "benches"),
    (re.compile(r"(\d[\d,]*) (?:hot queries|plan cases)"), "plan cases"),
    (re.compile(r"(\d[\d,]*) `\.sqlx/` (?:query )?files"), ".sqlx files"),
]


def documents(root):
    docs = [os.path.join(root, name) for name in ("README.md", "CHANGELOG.md")]
    folder = os.path.join(root, "docs")
    if os.path.isdir(folder):
        docs += sorted(
            os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".md")
        )
    return [d for d in docs if os.path.isfile(d)]


def prose(text):
    """The lines outside fenced code blocks, with their numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    text = re.sub(r"`|\*\*|\*|_(?=\W)|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path not in cache:
        seen, found = {}, set()
        with open(path, encoding="utf-8") as f:
            for _, line in prose(f.read()):
                m = HEADING.match(line)
                if not m:
                    continue
                base = slug(m.group(2))
                n = seen.get(base, 0)
                found.add(base if n == 0 else f"{base}-{n}")
                seen[base] = n + 1
        cache[path] = found
    return cache[path]


def tree_counts(root):
    def count(folder, test):
        path = os.path.join(root, folder)
        return sum(1 for name in os.listdir(path) if test(name)) if os.path.isdir(path) else 0

    counts = {
        "migrations": count("migrations", lambda n: n.endswith(".up.sql")),
        ".sqlx files": count(".sqlx", lambda n: n.startswith("query-") and n.endswith(".json")),
    }
    cargo = os.path.join(root, "Cargo.toml")
    if os.path.isfile(cargo):
        with open(cargo, encoding="utf-8") as f:
            counts["benches"] = f.read().count("[[bench]]")
    plans = os.path.join(root, "tests/db/plans.rs")
    if os.path.isfile(plans):
        with open(plans, encoding="utf-8") as f:
            counts["plan cases"] = len(re.findall(r"^\s*Case \{", f.read(), re.M))
    graph = os.path.join(root, ".ci/module-graph.py")
    if os.path.isfile(graph):
        out = subprocess.run(
            [sys.executable, graph], cwd=root, capture_output=True, text=True
        ).stdout
        m = re.search(r"^(\d+) modules in", out, re.M)
        if m:
            counts["modules"] = int(m.group(1))
    return counts


def check(root):
    problems = []
    counts = None
    for doc in documents(root):
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        rel = os.path.relpath(doc, root)
        lines = list(prose(text))
        # Links may break across lines: match on the prose as one text (code blocks blanked).
        numbered = {n: line for n, line in lines}
        last = max(numbered, default=0)
        body = "\n".join(numbered.get(n, "") for n in range(1, last + 1))
        for m in LINK.finditer(body):
            target = m.group(1)
            number = body.count("\n", 0, m.start()) + 1
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: ...
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            if not os.path.exists(resolved):
                problems.append(f"{rel}:{number}: link to {target}: no such file")
                continue
            if anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                problems.append(f"{rel}:{number}: link to {target}: no such heading")
        for number, line in lines:
            for pattern, what in COUNTS:
                for m in pattern.finditer(line):
                    if counts is None:
                        counts = tree_counts(root)
                    quoted = int(m.group(1).replace(",", ""))
                    actual = counts.get(what)
                    if actual is not None and quoted != actual:
                        problems.append(
                            f"{rel}:{number}: says {m.group(0)!r}; the tree has {actual} {what}"
                        )
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "docs"))
        os.makedirs(os.path.join(root, "migrations"))
        for n in (1, 2):
            open(os.path.join(root, f"migrations/000{n}_x.up.sql"), "w").close()
        with open(os.path.join(root, "README.md"), "w") as f:
            f.write(
                "# Top\n\n## Using `ledger` in your service\n\n"
                "[ok](docs/a.md#a-heading) [ok too](#using-ledger-in-your-service)\n"
                "[missing file](docs/gone.md) [missing heading across a\nline](docs/a.md#nowhere)\n"
                "```\n[not a link in code](nowhere.md)\n```\n"
                "The 2 migrations are right; the 3 migrations are not.\n"
            )
        with open(os.path.join(root, "docs/a.md"), "w") as f:
            f.write("# A heading\n\n[back](../README.md#top)\n")
        found = check(root)
        expected = ["docs/gone.md", "docs/a.md#nowhere", "'3 migrations'"]
        for needle in expected:
            if not any(needle in p for p in found):
                print(f"self-test: not found: {needle}\n" + "\n".join(found), file=sys.stderr)
                return 1
        if len(found) != len(expected):
            print("self-test: found too much:\n" + "\n".join(found), file=sys.stderr)
            return 1
    print("docs-check self-test: a broken link, a broken anchor and a wrong count are found")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = check(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(documents(root))} documents: every relative link and anchor resolves, every quoted count is the tree's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
