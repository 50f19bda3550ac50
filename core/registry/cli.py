"""`camelid registry ls | show REF | lineage REF | alias NAME ALIAS VERSION | verify [REF] | gc`."""

from __future__ import annotations

import argparse
import json
import os
import sys

from camelid.config import DEFAULT_CONFIG
from camelid.config.args import open_registry
from camelid.errors import RegistryError
from camelid.registry import BrokenArtifactError, Registry
from camelid.registry.hint import empty_registry_message


def _fmt_metrics(m: dict, limit: int = 4) -> str:
    flat = [(k, v) for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in flat[:limit])


def _ls(reg: Registry, config: str | None = None) -> None:
    """Every version of every name; a broken one is listed with its reason instead of stopping the list."""
    names = reg.names()
    if not names:
        print(empty_registry_message(reg.root, config))
        return
    print(f"registry {reg.root}")
    for name in names:
        versions = reg.versions(name)
        try:
            aliases = reg.aliases(name)
        except RegistryError as e:
            aliases = {"latest": versions[-1]}
            print(f"  {name}: aliases not shown: {e}")
        for v in versions:
            ref = f"{name}@{v}"
            try:
                art = reg.resolve(ref, verify=False)
            except BrokenArtifactError as e:
                print(f"  {ref:<24} BROKEN: {e.reason}")
                continue
            problems = reg.check_files(art)
            tags = ",".join(a for a, tv in sorted(aliases.items()) if tv == v)
            state = ("BROKEN: " + "; ".join(problems)) if problems else _fmt_metrics(art.manifest.get("metrics", {}))
            print(f"  {art.ref:<24} {art.kind:<8} {str(art.manifest.get('created', '')):<26} "
                  f"{'[' + tags + ']' if tags else '':<16} {state}")


def _verify(reg: Registry, ref: str | None) -> int:
    """Recompute every file's sha256; 1 if any artifact differs from its manifest or cannot be read."""
    refs = [ref] if ref else [f"{n}@{v}" for n in reg.names() for v in reg.versions(n)]
    failed = 0
    for r in refs:
        try:
            art = reg.resolve(r, verify=False)
            if art.external:
                raise RegistryError(f"{r!r} is a {art.external} model, not a registry artifact: nothing to verify")
            r, problems = art.ref, reg.check_files(art, full=True) + reg.lineage_problems(art)
        except BrokenArtifactError as e:
            problems = [e.reason]
        failed += bool(problems)
        print(f"FAILED {r}: {'; '.join(problems)}" if problems else f"ok {r}")
    print(f"{failed} of {len(refs)} artifact(s) failed" if failed else f"{len(refs)} artifact(s) verified")
    return 1 if failed else 0


def _gc(reg: Registry, keep: int | None, dry_run: bool, drop_lineage: bool) -> None:
    if drop_lineage and keep is None:
        raise RegistryError("gc: --drop-lineage only applies with --keep N (which versions to remove)")
    report = reg.gc(keep=keep, dry_run=dry_run, drop_lineage=drop_lineage)
    for path in report.removed:
        print(("would remove " if dry_run else "removed ") + str(path))
    for path, why in report.kept:
        print(f"kept {path}: {why}")
    print(f"{len(report.removed)} {'to remove' if dry_run else 'removed'}, {len(report.kept)} kept")


class _Subcommands:
    """Subparsers that also take --registry/--config/--profile after the subcommand (`registry ls --profile
    micro`), as every other command does; the value given there wins over one given before it."""

    def __init__(self, action):
        self.action = action
        self.shared = argparse.ArgumentParser(add_help=False)
        for flag in ("--registry", "--config", "--profile"):
            self.shared.add_argument(flag, default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    def add_parser(self, name: str, **kwargs):
        return self.action.add_parser(name, parents=[self.shared], **kwargs)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="camelid registry", description="Inspect the local artifact registry.")
    p.add_argument("--registry", default=None, help="registry folder (default: from pipelines.yaml)")
    p.add_argument("--config", default=os.environ.get("CAMELID_CONFIG", DEFAULT_CONFIG))
    p.add_argument("--profile", default=None, help="profile whose registry to open (e.g. micro: ./registry-micro)")
    sub = _Subcommands(p.add_subparsers(dest="cmd", required=True))
    sub.add_parser("ls", help="list artifacts, versions and aliases (broken ones marked with the reason)")
    s = sub.add_parser("show", help="print an artifact's manifest")
    s.add_argument("ref")
    s = sub.add_parser("lineage", help="show what an artifact was built from, recursively")
    s.add_argument("ref")
    s = sub.add_parser("alias", help="point NAME@ALIAS at VERSION (e.g. best; latest is always the newest)")
    s.add_argument("name")
    s.add_argument("alias")
    s.add_argument("version")
    s = sub.add_parser("verify", help="recompute the sha256 of every file of REF (default: every artifact) and "
                                      "check that what it was built from is still there")
    s.add_argument("ref", nargs="?")
    s = sub.add_parser("gc", help="remove staging folders of dead publishes (and, with --keep N, old unaliased "
                                  "versions no kept version was built from)")
    s.add_argument("--keep", type=int, default=None, help="keep the N newest versions of each name (N >= 0)")
    s.add_argument("--drop-lineage", action="store_true",
                   help="with --keep: also remove old versions that kept ones were built from (their lineage "
                        "then shows them missing; verify reports it)")
    s.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    reg = open_registry(args.registry, args.config, args.profile)

    if args.cmd == "ls":
        _ls(reg, args.config)
    elif args.cmd == "show":
        art = reg.resolve(args.ref, verify=False)
        if art.external:
            print(json.dumps({"ref": args.ref, "external": art.external, "model_path": art.model_path}, indent=2))
        else:
            print(f"# {art.path}")
            print(json.dumps(art.manifest, indent=2, sort_keys=True))
            for problem in reg.check_files(art):
                print(f"warning: {art.ref}: {problem}", file=sys.stderr)
    elif args.cmd == "lineage":
        for depth, role, art in reg.lineage(args.ref):
            label = f"{role}: " if role else ""
            what = art.external or art.kind or "?"
            if art.external in ("missing", "broken"):  # the name already says "(missing)"
                print(f"{'  ' * depth}{label}{art.ref}")
                continue
            print(f"{'  ' * depth}{label}{art.ref}  ({what}{', ' + art.hash if art.hash else ''})")
    elif args.cmd == "alias":
        reg.set_alias(args.name, args.alias, args.version)
        print(f"{args.name}@{args.alias} -> {args.version}")
    elif args.cmd == "verify":
        return _verify(reg, args.ref)
    elif args.cmd == "gc":
        _gc(reg, args.keep, args.dry_run, args.drop_lineage)
    return 0
