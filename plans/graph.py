"""Throwaway: intra-project import graph (incl. function-local imports) and its cycles."""
import ast, os, sys, json
from collections import defaultdict
ROOT = sys.argv[1] if len(sys.argv) > 1 else "/work/main"
PKGS = ("authentications", "bcconnect", "tests")
mods = {}
for pkg in PKGS:
    for dp, dn, fn in os.walk(os.path.join(ROOT, pkg)):
        dn[:] = [d for d in dn if d != "__pycache__"]
        for f in fn:
            if f.endswith(".py"):
                p = os.path.join(dp, f)
                rel = os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".")
                if rel.endswith(".__init__"):
                    rel = rel[:-9]
                mods[rel] = p

def resolve(cur, level, module):
    if level == 0:
        return module
    is_pkg = mods[cur].endswith("__init__.py")
    parts = cur.split(".")
    base = parts if is_pkg else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))

def target(name):
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None

edges = defaultdict(set)  # src -> {(dst, local, line)}
for m, p in mods.items():
    tree = ast.parse(open(p).read())
    # mark function-local
    local_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    local_nodes.add(id(sub))
    for node in ast.walk(tree):
        loc = id(node) in local_nodes
        if isinstance(node, ast.Import):
            for a in node.names:
                t = target(a.name)
                if t and t.split(".")[0] in PKGS:
                    edges[m].add((t, loc, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = resolve(m, node.level, node.module)
            if base.split(".")[0] not in PKGS:
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                t = full if full in mods else target(base)
                if t and t != m:
                    edges[m].add((t, loc, node.lineno))

def product(m):
    return (m.startswith("authentications") or m.startswith("bcconnect")) and ".migrations" not in m

mode = sys.argv[2] if len(sys.argv) > 2 else "edges"
if mode == "edges":
    for m in sorted(edges):
        for t, loc, ln in sorted(edges[m]):
            print(f"{m} -> {t}{'  [local L%d]' % ln if loc else ''}")
elif mode == "cycles":
    # Tarjan SCC on product code
    G = {m: {t for t, _, _ in edges[m] if product(t)} for m in mods if product(m)}
    idx, low, on, st, sccs, c = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in G.get(v, ()):
            if w not in idx:
                sc(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    for v in G:
        if v not in idx: sc(v)
    n_edges = sum(len(v) for v in G.values())
    print(f"product modules: {len(G)}, edges: {n_edges}")
    for comp in sccs:
        print(f"SCC ({len(comp)}): {comp}")
        S = set(comp)
        for v in comp:
            for t, loc, ln in sorted(edges[v]):
                if t in S:
                    print(f"   {v} -> {t}{'  [local L%d]' % ln if loc else ''}")
    # also SCC when only top-level imports counted
elif mode == "json":
    print(json.dumps({m: sorted({t for t, _, _ in v}) for m, v in edges.items()}, indent=1))
