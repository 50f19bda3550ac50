"""`camelid registry ls | show REF | lineage REF | alias NAME ALIAS VERSION | gc`."""

from __future__ import annotations

import argparse
import json
import os

from camelid.cli_common import open_registry
from camelid.config import DEFAULT_CONFIG


def _fmt_metrics(m: dict, limit: int = 4) -> str:
    flat = [(k, v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in flat[:limit])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="camelid registry", description="Inspect the local artifact registry.")
    p.add_argument("--registry", default=None, help="registry folder (default: from pipelines.yaml)")
    p.add_argument("--config", default=os.environ.get("CAMELID_CONFIG", DEFAULT_CONFIG))
    p.add_argument("--profile", default=None)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ls", help="list artifacts, versions and aliases")
    s = sub.add_parser("show", help="print an artifact's manifest")
    s.add_argument("ref")
    s = sub.add_parser("lineage", help="show what an artifact was built from, recursively")
    s.add_argument("ref")
    s = sub.add_parser("alias", help="point NAME@ALIAS at VERSION (e.g. best)")
    s.add_argument("name")
    s.add_argument("alias")
    s.add_argument("version")
    s = sub.add_parser("gc", help="remove leftover staging folders (and, with --keep N, old unaliased versions)")
    s.add_argument("--keep", type=int, default=None)
    s.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    reg = open_registry(args.registry, args.config, args.profile)

    if args.cmd == "ls":
        names = reg.names()
        if not names:
            print(f"{reg.root}: empty")
            return 0
        print(f"registry {reg.root}")
        for name in names:
            aliases = reg.aliases(name)
            for v in reg.versions(name):
                art = reg.resolve(f"{name}@{v}")
                tags = ",".join(a for a, tv in sorted(aliases.items()) if tv == v)
                print(f"  {art.ref:<24} {art.kind or '?':<8} {art.manifest.get('created', ''):<26} "
                      f"{'[' + tags + ']' if tags else '':<16} {_fmt_metrics(art.manifest.get('metrics', {}))}")
    elif args.cmd == "show":
        art = reg.resolve(args.ref)
        if art.external:
            print(json.dumps({"ref": args.ref, "external": art.external, "model_path": art.model_path}, indent=2))
        else:
            print(f"# {art.path}")
            print(json.dumps(art.manifest, indent=2, sort_keys=True))
    elif args.cmd == "lineage":
        for depth, role, art in reg.lineage(args.ref):
            label = f"{role}: " if role else ""
            what = art.external or art.kind or "?"
            print(f"{'  ' * depth}{label}{art.ref}  ({what}{', ' + art.hash if art.hash else ''})")
    elif args.cmd == "alias":
        reg.set_alias(args.name, args.alias, args.version)
        print(f"{args.name}@{args.alias} -> {args.version}")
    elif args.cmd == "gc":
        removed = reg.gc(keep=args.keep, dry_run=args.dry_run)
        for path in removed:
            print(("would remove " if args.dry_run else "removed ") + str(path))
        print(f"{len(removed)} folder(s) {'to remove' if args.dry_run else 'removed'}")
    return 0
