#!/usr/bin/env python3
"""The module graph of each Rust crate of the workspace, read from its `use` lines and paths.

Fails (exit 1) when a module uses a module that uses it back, at either of two levels:
- files: `a.rs` names something defined in (or re-exported through) `b.rs`, and `b.rs` back;
- top-level modules of a crate (`bridge`, `history`, ...): a file under one names the other.

Test code (`#[cfg(test)]` modules, `tests.rs` files) is left out: a test may look anywhere.

Usage: scripts/module-graph.py [--graph] [CRATE_DIR ...]   (default: every crate with a src/)
  --graph  also print, per crate, which top-level module uses which (the README's layout list)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def strip_code(text):
    """Source without comments, string literals and trailing test modules."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'r#+".*?"#+', '""', text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text, flags=re.S)
    text = re.sub(r"'(\\.|[^'\\])'", "' '", text)
    text = re.sub(r"//[^\n]*", "", text)
    cut = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
    if cut:
        text = text[: cut.start()]
    return text


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path (tuple) -> Path
        for path in sorted(src.rglob("*.rs")):
            rel = path.relative_to(src)
            parts = list(rel.with_suffix("").parts)
            if parts == ["main"] or parts[0] == "bin" or parts[-1] == "tests":
                continue
            if parts[-1] in ("lib", "mod"):
                parts = parts[:-1]
            self.files[tuple(parts)] = path
        self.code = {m: strip_code(p.read_text()) for m, p in self.files.items()}
        self.imports = {m: self.use_names(m) for m in self.files}

    def use_trees(self, module):
        """Every `use` tree of a file, expanded to (path segments, name bound)."""
        out = []
        for stmt in re.findall(r"\buse\s+([^;]+);", self.code[module]):
            out.extend(expand(stmt.replace("\n", " ").strip()))
        return out

    def use_names(self, module):
        """Names a module binds by `use` to other modules' items: name -> absolute path."""
        names = {}
        for segments, name in self.use_trees(module):
            absolute = self.absolute(module, segments)
            if absolute is not None and name not in ("self", "*"):
                names[name] = absolute
        return names

    def absolute(self, module, segments):
        """An in-crate path as absolute segments from the crate root; None for other crates."""
        if not segments:
            return None
        head, rest = segments[0], list(segments[1:])
        if head == "crate":
            return rest
        if head == "self":
            return list(module) + rest
        if head == "super":
            base = list(module)
            while head == "super":
                base = base[:-1]
                if not rest:
                    return base
                head, rest = rest[0], rest[1:]
            return base + [head] + rest
        if tuple(list(module) + [head]) in self.files:
            return list(module) + segments
        return None

    def resolve(self, segments, seen=0):
        """The file an absolute path lands in: the deepest module it names, followed through
        that module's own `use` of the next name (a re-export) when there is one."""
        module = ()
        for i, segment in enumerate(segments):
            child = module + (segment,)
            if child in self.files:
                module = child
                continue
            target = self.imports.get(module, {}).get(segment)
            if target is not None and seen < 8:
                return self.resolve(target + list(segments[i + 1 :]), seen + 1)
            break
        return module

    def edges(self):
        found = set()
        for module in self.files:
            paths = [segs for segs, _ in self.use_trees(module)]
            code = re.sub(r"\buse\s+[^;]+;", " ", self.code[module])
            paths += [p.split("::") for p in re.findall(r"\b(?:crate|super|self)(?:::\w+)+", code)]
            for segments in paths:
                absolute = self.absolute(module, segments)
                if absolute is None:
                    continue
                target = self.resolve(absolute)
                if target != module and not is_ancestor(target, module):
                    found.add((module, target))
        return found


def is_ancestor(a, b):
    """`a` is a parent module of `b` only through `mod` declarations when nothing else is named."""
    return False


def expand(tree):
    """`a::{b, c::{d as e}}` -> [(['a','b'],'b'), (['a','c','d'],'e')]."""
    tree = tree.strip()
    if tree.startswith("pub"):
        tree = re.sub(r"^pub(\([^)]*\))?\s+", "", tree)
    brace = tree.find("{")
    if brace == -1:
        alias = re.match(r"(.*?)\s+as\s+(\w+)$", tree)
        path, name = (alias.group(1), alias.group(2)) if alias else (tree, tree.split("::")[-1])
        return [([s for s in path.split("::") if s], name)]
    prefix = [s for s in tree[:brace].split("::") if s]
    inner = tree[brace + 1 : tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    out = []
    for part in filter(str.strip, parts):
        for segs, name in expand(part):
            out.append((prefix + segs, name))
    return out


def cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    graph = {n: sorted({b for a, b in edges if a == n}) for n in nodes}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return out


def name(module):
    return "::".join(module) or "(crate root)"


def check(crate_dir, graph):
    crate = Crate(crate_dir / "src")
    edges = crate.edges()
    bad = []
    for comp in cycles(crate.files, edges):
        ties = [f"{name(a)} -> {name(b)}" for a, b in sorted(edges) if a in comp and b in comp]
        bad.append(f"{crate_dir.name}: files use each other: {', '.join(map(name, comp))}\n    " + "\n    ".join(ties))
    top = {(a[:1], b[:1]) for a, b in edges if a[:1] != b[:1]}
    top_nodes = {m[:1] for m in crate.files}
    for comp in cycles(top_nodes, top):
        bad.append(f"{crate_dir.name}: modules use each other: {', '.join(map(name, comp))}")
    if graph:
        print(f"{crate_dir.name}:")
        for node in sorted(top_nodes):
            uses = sorted(name(b) for a, b in top if a == node and b != ())
            if node != () and uses:
                print(f"  {name(node)} -> {', '.join(uses)}")
    return bad


def main(args):
    graph = "--graph" in args
    dirs = [Path(a) for a in args if not a.startswith("--")]
    if not dirs:
        dirs = sorted(p.parent for p in ROOT.glob("*/src") if (p.parent / "Cargo.toml").exists())
    problems = [p for d in dirs for p in check(d.resolve(), graph)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    if not graph:
        print(f"module graphs acyclic: {', '.join(d.name for d in dirs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
