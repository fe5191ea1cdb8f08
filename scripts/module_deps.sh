#!/usr/bin/env bash
# Prints the crate's module graph (one line per edge "from -> to", from `crate::x` paths in the
# code of each top-level module under src/, comments and doc comments left out) and any import
# cycle between top-level modules. Exits 1 when there is a cycle.
#
#   scripts/module_deps.sh            # edges and cycles
#   scripts/module_deps.sh --cycles   # cycles only
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

def top(path):
    rel = os.path.relpath(path, "src")
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first

# Comments, strings and char literals, matched left to right so that each starts where the
# previous one ends (a `"` in a char literal or a `//` in a string is not taken for more).
LEXEMES = re.compile(
    r"//[^\n]*|/\*.*?\*/|b?r(#*)\".*?\"\1|b?\"(?:\\.|[^\"\\])*\"|b?'(?:\\.|[^'\\\n])'",
    re.S,
)

def strip(text):
    return LEXEMES.sub(" ", text)

def braces(text, i):
    """The top-level names inside the `{...}` group starting at text[i] == '{'."""
    depth, start, names = 0, i + 1, []
    for j in range(i, len(text)):
        c = text[j]
        if c == "{":
            depth += 1
            if depth == 1:
                start = j + 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                names.append(text[start:j])
                break
        elif c == "," and depth == 1:
            names.append(text[start:j])
            start = j + 1
    return [m.group(0) for n in names if (m := re.match(r"\w+", n.strip()))]

edges = {}
for root, _, files in os.walk("src"):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        src = top(path)
        if src == "lib":
            continue  # the crate root declares and re-exports every module
        text = strip(open(path, encoding="utf-8").read())
        for m in re.finditer(r"\bcrate::(\{|\w+)", text):
            targets = braces(text, m.start(1)) if m.group(1) == "{" else [m.group(1)]
            for t in targets:
                if t not in (src, "self"):
                    edges.setdefault(src, set()).add(t)

mods = {top(os.path.join(r, f)) for r, _, fs in os.walk("src") for f in fs if f.endswith(".rs")}
mods.discard("lib")
for a in edges:
    edges[a] = {b for b in edges[a] if b in mods}  # root re-exports (crate::Jwt) are not modules

# Strongly connected components (Tarjan): a component with more than one module is a cycle.
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(mods):
    if v not in index:
        visit(v)
cycles = [c for c in sccs if len(c) > 1]

if "--cycles" not in sys.argv:
    for a in sorted(edges):
        for b in sorted(edges[a]):
            print(f"{a} -> {b}")
    print(f"{len(mods)} modules, {sum(len(v) for v in edges.values())} edges")
if cycles:
    for c in cycles:
        inner = [f"{a} -> {b}" for a in c for b in sorted(edges.get(a, ())) if b in c]
        print("cycle among " + ", ".join(c) + ": " + "; ".join(inner))
    sys.exit(1)
print("no cycle")
PY
