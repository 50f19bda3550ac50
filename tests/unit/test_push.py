"""`camelid push` against a local stand-in for the Hub on 127.0.0.1 (HF_ENDPOINT): the calls huggingface_hub
makes to create a repository and commit a folder, answered and recorded. The stand-in asks for every file as
a regular (base64 in the commit) upload, so the LFS / Xet transfer of large weights is not exercised here."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

LIFETIME_S = 120  # the server shuts itself down after this, whatever the test does


class FakeHub(BaseHTTPRequestHandler):
    calls: list  # (method, path, body) of every request
    files: dict  # path -> bytes of the last commit

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, b""))
        self._reply(404, {"error": "not here"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.calls.append(("POST", self.path, body))
        port = self.server.server_address[1]
        if self.headers.get("Authorization") != "Bearer hf_test_token":
            return self._reply(401, {"error": "Invalid credentials"})
        if self.path == "/api/repos/create":
            req = json.loads(body)
            return self._reply(200, {"url": f"http://127.0.0.1:{port}/{req['organization']}/{req['name']}"})
        if self.path == "/api/validate-yaml":  # the Hub checks the card's header: so does this
            content = json.loads(body)["content"]
            header = yaml.safe_load(content.split("---\n")[1]) if content.startswith("---\n") else None
            return self._reply(200, {"warnings": []} if isinstance(header, dict) else
                               {"errors": [{"message": "no YAML header"}]})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                               for f in files]})
        if "/commit/" in self.path:
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            oid, repo = "a" * 40, self.path.split("/")[3:5]  # /api/models/<ns>/<name>/commit/<rev>
            return self._reply(200, {"commitUrl": f"http://127.0.0.1:{port}/{'/'.join(repo)}/commit/{oid}",
                                     "commitOid": oid})
        self._reply(404, {"error": f"no route {self.path}"})


@pytest.fixture
def fake_hub(monkeypatch):
    handler = type("Handler", (FakeHub,), {"calls": [], "files": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(LIFETIME_S, server.shutdown)
    stopper.daemon = True
    stopper.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "ENDPOINT", endpoint)  # read at import: the env alone is too late here
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    yield handler
    stopper.cancel()
    server.shutdown()
    server.server_close()


def test_push_creates_a_private_repo_and_uploads_the_export(fake_hub, micro_base_registry, tmp_path):
    from huggingface_hub import ModelCard

    from camelid.hf.export import export
    from camelid.hf.push import push
    from camelid.registry import Registry

    registry = Registry(micro_base_registry)
    url = push("base", "me/camelid-base", registry)
    assert "/commit/" in url
    create = next(json.loads(b) for m, p, b in fake_hub.calls if p == "/api/repos/create")
    assert create == {"name": "camelid-base", "organization": "me", "visibility": "private", "type": "model"}
    assert any(p.startswith("/api/models/me/camelid-base/commit/main") for _, p, _ in fake_hub.calls)
    local = export("base", tmp_path / "same", registry)
    expected = {str(f.relative_to(local)): f.read_bytes() for f in local.rglob("*") if f.is_file()}
    assert fake_hub.files.keys() == expected.keys()
    for path, data in expected.items():
        assert fake_hub.files[path] == data, path
    assert ModelCard(fake_hub.files["README.md"].decode()).data.to_dict()["license"] == "apache-2.0"


def test_push_public_and_cli(fake_hub, micro_base_registry, capsys):
    from camelid.cli import main

    assert main(["push", "base", "me/open", "--public", "--registry", str(micro_base_registry)]) == 0
    create = next(json.loads(b) for m, p, b in fake_hub.calls if p == "/api/repos/create")
    assert create["visibility"] == "public"
    assert "/commit/" in capsys.readouterr().out


def test_push_with_a_bad_token_is_one_line(fake_hub, micro_base_registry, monkeypatch, capsys):
    from camelid.cli import main

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    assert main(["push", "base", "me/x", "--registry", str(micro_base_registry)]) == 2
    err = capsys.readouterr().err
    assert "push to me/x failed" in err and "HF_TOKEN" in err and "Traceback" not in err

