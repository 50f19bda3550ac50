"""`camelid push REF REPO_ID`: export a checkpoint (camelid.hf.export, model card included) and upload the folder to
the Hugging Face Hub through huggingface_hub. The repository is created private unless --public; the endpoint
is huggingface_hub's (HF_ENDPOINT changes it) and the token its usual one (`hf auth login`, HF_TOKEN) or --token.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from camelid.config.args import open_registry
from camelid.errors import CamelidError
from camelid.hf.export import add_registry_args, export
from camelid.log import get_logger
from camelid.registry import Registry

log = get_logger("push")


def push(ref: str, repo_id: str, registry: Registry, *, public: bool = False, token: str | None = None,
         message: str | None = None, api=None) -> str:
    """Export ``ref`` and upload it to ``repo_id`` (created if missing); returns the commit URL.

    ``api``: an HfApi (tests pass one bound to a local endpoint); by default a new one.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = api or HfApi(token=token)
    art = registry.resolve(ref)
    with tempfile.TemporaryDirectory(prefix="camelid-push-") as tmp:
        folder = export(art.ref, Path(tmp) / "export", registry)
        try:
            repo = api.create_repo(repo_id, private=not public, repo_type="model", exist_ok=True)
            info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                     commit_message=message or f"camelid push {art.ref} ({art.hash})")
        except HfHubHTTPError as e:
            raise CamelidError(f"push to {repo_id} failed: {str(e).splitlines()[0]} (log in with `hf auth login` "
                               "or set HF_TOKEN; check that the repository name is yours)") from None
        except OSError as e:  # no network, refused connection, offline mode
            raise CamelidError(f"push to {repo_id}: cannot reach the Hub ({str(e).splitlines()[0][:200]}); "
                               "`camelid export` writes the same folder locally") from None
    log.info("pushed %s to %s (%s)", art.ref, getattr(repo, "url", repo_id), "public" if public else "private")
    return getattr(info, "commit_url", None) or str(info)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="camelid push", description="Export a checkpoint (weights, tokenizer, generation config, model card) and "
        "upload it to a Hugging Face Hub model repository, created private unless --public.")
    p.add_argument("ref", help="registry ref, e.g. ppo, sft@v2")
    p.add_argument("repo_id", help="Hub repository, e.g. your-name/camelid-ppo")
    p.add_argument("--public", action="store_true", help="create the repository public (default: private)")
    p.add_argument("--token", default=None, help="Hub token (default: huggingface_hub's login or HF_TOKEN)")
    p.add_argument("--message", default=None, help="commit message")
    add_registry_args(p)
    args = p.parse_args(argv)
    registry = open_registry(args.registry, args.config, args.profile)
    print(push(args.ref, args.repo_id, registry, public=args.public, token=args.token, message=args.message))
    return 0
