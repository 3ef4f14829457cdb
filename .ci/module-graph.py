#!/usr/bin/env python3
"""Prints the library's module graph (top-level modules, from their `crate::` paths outside
comments and unit tests) and fails if it has a cycle."""
import glob
import re
import sys

graph = {}
for path in glob.glob("src/**/*.rs", recursive=True):
    rel = path[len("src/"):]
    if rel.startswith("bin/") or rel == "lib.rs":
        continue
    module = rel.split("/")[0].removesuffix(".rs")
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", text, flags=re.S)
    code = "\n".join(l for l in text.splitlines() if not l.strip().startswith("//"))
    uses = set(re.findall(r"crate::([a-z_]+)", code)) - {module}
    graph.setdefault(module, set()).update(uses)

def cycle_from(start):
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, ()):
            if dep == start:
                return path + [start]
            if dep in graph and dep not in seen:
                seen.add(dep)
                stack.append((dep, path + [dep]))
    return None

for module in sorted(graph):
    print(f"{module} -> {', '.join(sorted(d for d in graph[module] if d in graph)) or '(nothing)'}")
cycles = [c for c in map(cycle_from, sorted(graph)) if c]
if cycles:
    print("import cycles:", *(" -> ".join(c) for c in cycles), sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"{len(graph)} modules, no import cycle")
