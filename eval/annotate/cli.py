"""`camelid annotate`: serve the annotation app, fill its queue, manage users, export labels."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from camelid.errors import CamelidError
from camelid.eval.annotate.db import AnnotationDB

DEFAULT_DB = "annotations.sqlite"
IMPORT_HELP = """\
Formats (JSONL, detected per row):
  canonical preference pairs   {"prompt": [messages], "chosen": ..., "rejected": ..., ...}
                               (annotators label them afresh; the old rating is kept in meta only)
  A/B pairs                    {"prompt": [messages] | "text", "response_a": ..., "response_b": ...,
                                "id"?, "category"?, "source"?}
  `camelid compare` rows       {"prompt": [messages] | "text", "responses": {"ckpt-1": ..., "ckpt-2": ...}}
                               every two checkpoints of a row make one pair
Or sample new pairs from registry checkpoints, as Llama 2 did:
  --from-checkpoints sft@v1 --prompts prompts.jsonl            one model, two temperatures
  --from-checkpoints sft@v1 ppo@v1 --prompts prompts.jsonl     one sample from each model
A pair already in the queue (same prompt and responses) is not added twice."""


def _db(args, *, create: bool = False) -> AnnotationDB:
    """The database --db names; only import and add-user create one (a typo must not serve an empty queue)."""
    path = Path(args.db)
    if not create and not path.exists():
        raise CamelidError(f"annotation database {path} does not exist; create it with `camelid annotate import "
                           f"FILE --db {path}` (pairs to label) and `camelid annotate add-user NAME --db {path}` "
                           "(annotators)")
    return AnnotationDB(path)


def cmd_serve(args) -> int:
    import uvicorn

    from camelid.eval.annotate.app import create_app

    app = create_app(_db(args).path)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print("warning: tokens travel in clear over plain HTTP; put a TLS proxy in front for a public host",
              file=sys.stderr)
    print(f"camelid annotate: serving {args.db} on http://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_import(args) -> int:
    from camelid.eval.annotate import importers

    db = _db(args, create=True)
    if args.from_checkpoints:
        if args.file or not args.prompts:
            raise CamelidError("--from-checkpoints needs --prompts FILE and no positional FILE")
        prompts = importers.load_prompts(Path(args.prompts))
        items, same = importers.items_from_checkpoints(
            args.from_checkpoints, prompts, registry_root=Path(args.registry),
            temperatures=tuple(args.temperatures), top_p=args.top_p, max_new_tokens=args.max_new_tokens,
            seed=args.seed)
        if same:
            print(f"dropped {same} prompt(s) whose two responses were identical or empty")
    elif args.file:
        items = importers.items_from_file(Path(args.file))
    else:
        raise CamelidError("give a FILE to import, or --from-checkpoints REF [REF2] --prompts FILE")
    added, dup = db.add_pairs(items, k=args.k)
    print(f"queued {added} pair(s) with k={args.k}" + (f"; {dup} already in the queue" if dup else ""))
    return 0


def cmd_add_user(args) -> int:
    db = _db(args, create=True)
    token = db.add_user(args.name, admin=args.admin, reset_token=args.reset_token)
    role = "admin" if db.user_for_token(token).is_admin else "annotator"
    print(f"{role} {args.name}: token (shown once, give it to them privately):", file=sys.stderr)
    print(token)
    return 0


def cmd_users(args) -> int:
    for u in _db(args).users():
        print(f"{u.name}{'  (admin)' if u.is_admin else ''}")
    return 0


def cmd_export(args) -> int:
    from camelid.eval.annotate.export import export_records, publish, to_jsonl, write_atomic

    if not args.out and not args.publish:
        raise CamelidError("give --out FILE and/or --publish NAME")
    if args.min_votes is not None and args.min_votes < 1:
        raise CamelidError(f"--min-votes must be 1 or more, got {args.min_votes}")
    db = _db(args)
    records, summary = export_records(db, args.mode, args.min_votes)
    wanted = "the k labels it was queued with" if args.min_votes is None else f"{args.min_votes}+ labels"
    if not records and args.mode == "per-annotator":
        raise CamelidError(f"nothing to export from {args.db}: no labels yet")
    if not records:
        held = summary["n_below_min_votes"]
        raise CamelidError(f"nothing to export from {args.db}: no pair has {wanted} and a majority yet"
                           + (f" ({held} labelled pair(s) wait for more labels; --min-votes 1 exports them now)"
                              if held else ""))
    text = to_jsonl(records)
    if args.out:
        write_atomic(Path(args.out), text)
        print(f"wrote {len(records)} preference pair(s) to {args.out}")
    if args.publish:
        ref = publish(text, summary, args.publish, Path(args.registry), Path(args.db),
                      "k" if args.min_votes is None else args.min_votes)
        print(f"published {ref}")
    if summary["n_ties_dropped"]:
        print(f"dropped {summary['n_ties_dropped']} pair(s) whose annotators tied on the preferred side")
    if summary["n_below_min_votes"]:
        print(f"held back {summary['n_below_min_votes']} labelled pair(s) without {wanted} yet "
              "(--min-votes N exports pairs with N or more)")
    if summary["n_below_k"]:
        print(f"warning: {summary['n_below_k']} exported pair(s) have fewer labels than the k they were queued "
              "with", file=sys.stderr)
    return 0


def cmd_stats(args) -> int:
    from camelid.eval.annotate.export import admin_stats

    s = admin_stats(_db(args))
    c, ag = s["counts"], s["agreement"]
    print(f"pairs {c['pairs']} (complete {c['complete_pairs']}), labels {c['labels']}, skips {c['skips']}")
    fk = ag["fleiss_kappa"]
    print(f"Fleiss' kappa (preferred side, {ag['n_pairs_multi']} multi-labelled pairs): "
          + ("n/a" if fk is None else f"{fk:.3f}"))
    for name, t in sorted(s["throughput"].items()):
        wm = ag["with_majority"].get(name, {})
        agree = "n/a" if wm.get("agreement") is None else f"{wm['agreement']:.0%} of {wm['n']}"
        print(f"  {name}: {t['total']} labels, {t['last_hour']} last hour, {t['last_24h']} last 24 h, "
              f"agrees with others' majority {agree}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="camelid annotate", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help_: str, **kw) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_, **kw)
        sp.add_argument("--db", default=DEFAULT_DB, help=f"SQLite database (default: {DEFAULT_DB})")
        sp.set_defaults(fn=fn)
        return sp

    sp = add("serve", cmd_serve, "Run the annotation web app")
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    sp.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    sp = add("import", cmd_import, "Add pairs to the annotation queue", epilog=IMPORT_HELP,
             formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("file", nargs="?", help="JSONL file of pairs (see formats below)")
    sp.add_argument("--k", type=int, default=1, help="labels wanted per pair, each from a different annotator")
    sp.add_argument("--from-checkpoints", nargs="+", metavar="REF", help="one or two registry model refs")
    sp.add_argument("--prompts", help="JSONL of prompts ({messages} or {prompt}) for --from-checkpoints")
    sp.add_argument("--registry", default="registry", help="registry folder (default: ./registry)")
    sp.add_argument("--temperatures", nargs=2, type=float, default=[0.7, 1.0], metavar=("T1", "T2"),
                    help="sampling temperatures: the two samples of one model, or T1 for both models")
    sp.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling top-p (default: 0.9)")
    sp.add_argument("--max-new-tokens", type=int, default=256, help="response length cap (default: 256)")
    sp.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")

    sp = add("add-user", cmd_add_user, "Create an annotator (or admin) and print their login token")
    sp.add_argument("name", help="user name: letters, digits, '.', '_' or '-'")
    sp.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                    help="may open the admin page (--no-admin takes that away); without either, a new user is "
                         "an annotator and --reset-token keeps the user's role")
    sp.add_argument("--reset-token", action="store_true", help="give an existing user a new token")

    add("users", cmd_users, "List users")

    sp = add("export", cmd_export, "Write labels as canonical preference pairs (JSONL) and/or publish them")
    sp.add_argument("--out", help="output JSONL file")
    sp.add_argument("--mode", default="majority", choices=["majority", "per-annotator"],
                    help="majority: one record per pair (ties dropped); per-annotator: one per label")
    sp.add_argument("--min-votes", type=int, default=None,
                    help="majority mode: skip pairs with fewer labels (default: each pair's own k, from import --k)")
    sp.add_argument("--publish", metavar="NAME", help="also publish as a dataset artifact NAME in the registry")
    sp.add_argument("--registry", default="registry", help="registry folder (default: ./registry)")

    add("stats", cmd_stats, "Print queue progress, throughput and agreement")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
