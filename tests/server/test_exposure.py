"""Beyond loopback, /predict and /feedback need a token unless the loudly named flag says
otherwise (was: open whatever the bind address). Real uvicorn on 0.0.0.0, reached on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from core.auth import get_token_store
from core.errors import ValidationError
from core.server.app import create_app
from core.server.runner import BackgroundServer, is_loopback, make_server


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.org"]))


def test_the_default_app_beyond_loopback_requires_tokens(sqlite_ctx) -> None:
    assert make_server("0.0.0.0", 0).config.app.state.require_predict_token is True
    assert not make_server("127.0.0.1", 0).config.app.state.require_predict_token
    opened = make_server("0.0.0.0", 0, insecure_open_predict=True)
    assert not opened.config.app.state.require_predict_token


def test_an_open_app_is_refused_beyond_loopback(served) -> None:
    open_app = create_app(served.manager, background=False, require_predict_token=False)
    with pytest.raises(ValidationError, match="--insecure-open-predict"):
        BackgroundServer(host="0.0.0.0", port=0, app=open_app)


@pytest.mark.parametrize("insecure", [False, True])
def test_predict_beyond_loopback(served, kit, insecure: bool) -> None:
    app = create_app(served.manager, background=False, require_predict_token=not insecure)
    server = BackgroundServer(host="0.0.0.0", port=0, app=app, insecure_open_predict=insecure)
    server.start()
    port = server.url.rsplit(":", 1)[1]
    audio = {"audio": kit.call().tolist()}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            anonymous = client.post("/predict", json=audio)
            if insecure:
                assert anonymous.status_code == 200
                return
            assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"]
            feedback = client.post("/feedback", json={"request_id": "r", "true_label": "owl"})
            assert feedback.status_code == 401
            _, token = get_token_store().create("viewer", "field-recorder")
            auth = {"authorization": f"Bearer {token}"}
            assert client.post("/predict", json=audio, headers=auth).status_code == 200
    finally:
        server.stop()


def test_serve_documents_the_flag() -> None:
    from nightscan_tui.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--insecure-open-predict" in result.output
