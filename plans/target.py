"""Throwaway: project today's import graph onto the planned tree; list package edges and cycles."""
import json, subprocess, sys
from collections import defaultdict
A = "authentications."
MOVE = {  # old module -> new module (whole-module moves)
 "models": "connections.models", "oauth": "connections.oauth", "credentials": "connections.credentials",
 "tokens": "connections.tokens", "policies": "connections.policies", "changes": "connections.changes",
 "diagnostics": "connections.diagnostics", "links": "connections.link_tokens",
 "retention": "connections.retention", "signin": "signin.flows",
 "certificate_models": "certificates.models", "certificates": "certificates.keypairs",
 "certificate_flows": "certificates.flows", "certificate_forms": "certificates.forms",
 "certificate_reminders": "certificates.cron",
 "endpoints": "endpoints.models", "endpoint_forms": "endpoints.forms", "endpoint_runs": "endpoints.runs",
 "endpoint_exports": "endpoints.exports", "endpoint_moves": "endpoints.moves",
 "subscription_models": "webhooks.models", "subscriptions": "webhooks.subscriptions",
 "subscription_forms": "webhooks.forms", "subscription_cron": "webhooks.cron",
 "notification_inbox": "webhooks.inbox", "notification_delivery": "webhooks.delivery",
 "notification_views": "webhooks.views", "change_tasks": "webhooks.tasks",
 "change_notifications": "webhooks.handlers", "link_failures": "signin.failures",
 "notifications": "mail", "fields": "kit.fields", "validators": "kit.validators", "keys": "kit.keys",
 "formatting": "kit.formatting", "decorators": "kit.decorators", "per_process": "kit.per_process",
 "reporting": "kit.reporting", "admin_urls": "kit.admin_urls",
 "admin.authentication": "admin.connections", "admin.views": "admin.connection_views",
 "admin.endpoint": "admin.endpoints", "admin.subscription": "admin.webhooks",
}
# Split modules: the new edges of each part, by hand from the functions that move (see plan).
SPLIT = {
 "connections.consent": ["connections.oauth", "connections.link_tokens"],
 "signin.consent": ["connections.oauth", "connections.models", "kit.validators"],
 "signin.views": ["signin.flows", "signin.failures", "connections.models", "connections.oauth", "kit.admin_urls", "kit.decorators", "kit.validators"],
 "links.views": ["connections.link_tokens", "signin.flows", "signin.views", "connections.models", "connections.oauth", "kit.decorators"],
 "links.emails": ["connections.link_tokens", "mail", "kit.formatting", "connections.models"],
 "signin.emails": ["mail"],
 "connections.forms": ["kit.fields", "connections.models"],
 "links.forms": [],
 "connections.cron": ["mail", "connections.models", "connections.tokens"],
 "management.housekeeping": ["connections.cron", "certificates.cron", "connections.retention"],
}
DROP = {"admin_consent", "views", "link_email", "forms", "cron"}  # replaced by SPLIT parts
# Edges rewritten by the decisions of the plan (old src, old dst) -> new dst or None (cut)
REWRITE = {
 ("tokens", "admin_consent"): "connections.consent", ("changes", "admin_consent"): "connections.consent",
 ("signin", "admin_consent"): "signin.consent", ("signin", "link_email"): "signin.emails",
 ("models", "certificate_models"): None, ("models", "endpoints"): None, ("models", "subscription_models"): None,
 ("credentials", "certificates"): None,  # for_msal: certificate.msal_credential()
 ("credentials", "models"): "connections.models",
 ("endpoints", "models"): None, ("subscription_models", "models"): None,  # string FKs
 ("cron", "certificate_reminders"): None,
 ("certificate_reminders", "models"): "connections.models",
 ("notification_delivery", "change_tasks"): "webhooks.tasks",
 ("admin.authentication", "forms"): "connections.forms", ("admin.views", "forms"): "links.forms",
 ("admin.authentication", "link_email"): "links.emails", ("admin.views", "link_email"): "links.emails",
 ("admin.displays", "cron"): "connections.cron", ("management.commands.refresh_tokens", "cron"): "connections.cron",
 ("urls", "views"): ["signin.views", "links.views"],
}
EXTRA = [("certificates.models", "connections.models"),  # none really: string FK; kept empty
]
EXTRA = [("management.commands.refresh_tokens", "management.housekeeping"),
         ("management.commands.purge_history", "management.housekeeping"),
         ("certificates.cron", "connections.cron"), ("certificates.models", "kit.fields"),
         ("models", "connections.models"), ("models", "certificates.models"),
         ("models", "endpoints.models"), ("models", "webhooks.models"),
         ("sdk", "connections.tokens"), ("sdk", "connections.models"), ("sdk", "endpoints.models"),
         ("sdk", "webhooks.handlers")]
out = subprocess.run([sys.executable, "/tmp/i20/graph.py", "/work/main", "json"], capture_output=True, text=True).stdout
G = json.loads(out)
edges = set()
def new(m):
    return MOVE.get(m, m)
for src, dsts in G.items():
    if not src.startswith(A) or ".migrations" in src: continue
    s = src[len(A):]
    for d in dsts:
        if not d.startswith(A): continue
        d = d[len(A):]
        if s in DROP: continue
        key = (s, d)
        if key in REWRITE:
            r = REWRITE[key]
            for t in ([r] if isinstance(r, str) else (r or [])):
                edges.add((new(s), t))
            continue
        if d in DROP:
            raise SystemExit(f"unhandled edge into split module: {key}")
        edges.add((new(s), new(d)))
for s, ds in SPLIT.items():
    for d in ds: edges.add((s, d))
edges |= set(EXTRA)
edges = {(s, d) for s, d in edges if s != d}
def pkg(m):
    top = m.split(".")[0]
    return "management" if top == "management" else top
P = defaultdict(set)
for s, d in edges:
    if pkg(s) != pkg(d): P[pkg(s)].add(pkg(d))
for p in sorted(P): print(f"{p:14} -> {', '.join(sorted(P[p]))}")
# module cycles
import itertools
adj = defaultdict(set)
for s, d in edges: adj[s].add(d)
def reach(a, b, seen=None):
    seen = seen or set(); stack=[a]
    while stack:
        x = stack.pop()
        for y in adj[x]:
            if y == b: return True
            if y not in seen: seen.add(y); stack.append(y)
    return False
cyc = sorted({s for s, d in edges if reach(d, s)})
print("modules in cycles:", cyc or "none")
pc = [(a, b) for a in P for b in P[a] if a in P.get(b, set())]
print("package 2-cycles:", pc or "none")
print("module edges:", len(edges))

if len(sys.argv) > 1 and sys.argv[1] == "emit":
    import os
    root = sys.argv[2]
    mods = {m for e in edges for m in e}
    mods |= {"tokens", "change_notifications", "apps", "checks", "kit.keys", "kit.reporting",
             "kit.per_process", "links.forms", "endpoints", "migrations.m0001"}
    imps = defaultdict(set)
    for s, d in edges: imps[s].add(d)
    imps["tokens"].add("connections.tokens"); imps["change_notifications"].add("webhooks.handlers")
    imps["endpoints"].add("endpoints.models")
    imps["migrations.m0001"] |= {"kit.validators", "connections.models"}
    def path(m):
        return os.path.join(root, "authentications", *m.split("."))
    pk = set()
    for m in mods:
        parts = m.split(".")
        for i in range(1, len(parts)):
            pk.add(".".join(parts[:i]))
    for m in sorted(mods | pk):
        p = path(m)
        if m in pk:
            os.makedirs(p, exist_ok=True); f = os.path.join(p, "__init__.py")
        else:
            os.makedirs(os.path.dirname(p), exist_ok=True); f = p + ".py"
        with open(f, "a") as fh:
            for d in sorted(imps.get(m, ())):
                fh.write(f"import authentications.{d}\n")
            if m in ("connections.oauth",): fh.write("import msal\nimport requests\n")
            if m in ("connections.tokens",): fh.write("import requests\nimport bcconnect.client\n")
            if m in ("kit.validators",): fh.write("import bcconnect.client\n")
    open(os.path.join(root, "authentications", "__init__.py"), "a").close()
    os.makedirs(os.path.join(root, "bcconnect"), exist_ok=True)
    open(os.path.join(root, "bcconnect", "__init__.py"), "a").close()
    open(os.path.join(root, "bcconnect", "client.py"), "w").write("import requests\nimport bcconnect.errors\n")
    open(os.path.join(root, "bcconnect", "errors.py"), "w").write("")
    os.makedirs(os.path.join(root, "tests"), exist_ok=True)
    open(os.path.join(root, "tests", "__init__.py"), "w").write("")
    open(os.path.join(root, "tests", "helpers.py"), "w").write("import authentications.sdk\n")
