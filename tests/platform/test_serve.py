"""``microcourt serve`` as a user runs it: start, use, stop with a signal, start again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from server.platform.config import REPO_ROOT
from tests.factories import TEST_KEYS, clean_env, id_number, serving


def call(url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")  # urllib's default is form data: 415
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=30)


def wx_login(api: str, emulator: str, openid: str | None = None) -> dict[str, Any]:
    status, phone = call(f"{emulator}/_emulator/wx/login", {"openid": openid} if openid else {})
    assert status == 200
    status, body = call(f"{api}/api/v1/auth/wx-login", {"code": phone["code"]})
    assert status == 200, body
    return {"openid": phone["openid"], **body}


def test_serve_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    env = clean_env(MICROCOURT_ADMIN_PASSWORD="first-admin-password")
    with serving(tmp_path, env) as (proc, api, emulator):
        dbs = [
            c for c in children(proc.pid) if "secantusd" in Path(f"/proc/{c}/cmdline").read_text()
        ]
        assert len(dbs) == 1
        assert call(f"{api}/readyz") == (200, {"status": "ready"})
        status, admin = call(
            f"{api}/api/v1/auth/staff-login",
            {"username": "admin", "password": "first-admin-password"},
        )
        assert status == 200 and admin["user"]["role"] == "admin"
        user = wx_login(api, emulator)
        number = id_number(seq="777")
        status, me = call(f"{api}/api/v1/me/identity", None, user["token"])
        req = urllib.request.Request(
            f"{api}/api/v1/me/identity",
            method="PUT",
            data=json.dumps({"name": "钱七", "id_number": number}).encode(),
        )
        req.add_header("Authorization", f"Bearer {user['token']}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=20) as res:
            assert res.status == 202  # a claim, until WeChat's face verification confirms it
        face = {"openid": user["openid"], "name": "钱七", "id_number": number, "outcome": "pass"}
        status, verified = call(f"{emulator}/_emulator/face/verify", face)
        assert status == 200
        status, me = call(f"{api}/api/v1/me/identity/verify", verified, user["token"])
        assert status == 200 and me["identity"]["status"] == "verified"
        assert stop(proc, signal.SIGINT) == 0
        assert not alive(dbs[0]), "the embedded database outlived the server"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db", "secantusd.log", "secrets.json"]

    # started again without the admin password: the data, the keys and the sessions are kept
    with serving(tmp_path, clean_env()) as (proc, api, emulator):
        status, me = call(f"{api}/api/v1/me", token=user["token"])
        assert status == 200 and me["identity"]["id_number_masked"].endswith(number[-4:])
        again = wx_login(api, emulator, user["openid"])
        assert again["user"]["id"] == user["user"]["id"]
        status, _ = call(
            f"{api}/api/v1/auth/staff-login",
            {"username": "admin", "password": "first-admin-password"},
        )
        assert status == 200
        dbs = children(proc.pid)
        assert stop(proc, signal.SIGTERM) == 0
        assert not any(alive(pid) for pid in dbs)


def test_serve_with_a_mongodb_uri_starts_no_database(tmp_path: Path, mongo_uri: str) -> None:
    env = clean_env(
        MICROCOURT_MONGODB__URI=mongo_uri,
        MICROCOURT_MONGODB__DATABASE=f"serve_{os.getpid()}",
        MICROCOURT_SECURITY__TOKEN_SECRET=TEST_KEYS.token_secret.decode(),
        MICROCOURT_SECURITY__DATA_KEY="a" * 43 + "=",
        MICROCOURT_SECURITY__HASH_KEY=TEST_KEYS.hash_key.decode(),
    )
    with serving(tmp_path, env) as (proc, api, emulator):
        assert children(proc.pid) == []
        assert call(f"{api}/readyz") == (200, {"status": "ready"})
        wx_login(api, emulator)
        assert not (tmp_path / "db").exists()
        assert stop(proc, signal.SIGTERM) == 0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MICROCOURT_SERVER__MAX_JSON_BODY_BYTES": "abc"}, "server.max_json_body_bytes"),
        ({"MICROCOURT_MONGODB__STARTUP_TIMEOUT_SECONDS": "-1"}, "mongodb.startup_timeout_seconds"),
        ({"MICROCOURT_WECHAT__APPID": "not-an-appid"}, "wechat.appid"),
        ({"MICROCOURT_MONGODB__URI": "mongodb://127.0.0.1:1"}, "security.token_secret"),
        ({"MICROCOURT_SECURITY__DATA_KEY": "short"}, "security.data_key"),
        ({"MICROCOURT_SERVER__NO_SUCH": "1"}, "server.no_such"),
        ({"MICROCOURT_WECHATPAY__MCHID": "1230000109"}, "wechatpay.merchant_serial_no"),
        (
            {
                "MICROCOURT_COURTS": '[{"id": "x1", "name": "某法院", "code": "京01",'
                ' "case_types": {}, "fixed_fees": {"divorce_fen": 100}}]'
            },
            "courts.0.fixed_fees.divorce_fen",
        ),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    started = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("microcourt: invalid setting: ") and named in lines[0]
    assert time.monotonic() - started < 30
    assert not (tmp_path / "db").exists()
