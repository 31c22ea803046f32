"""The emulator's face verification (人脸核身) for government-service mini-programs.

The phone's part: ``wx.startFacialRecognitionVerify({name, idCardNumber})`` compares the face
with the photo of that ID card and gives the page ``res.verifyResult``; the control path
``POST /_emulator/face/verify`` {openid, name, id_number, outcome: "pass" | "fail"} plays it
and returns that ``verify_result``.

The server's part: ``POST /cityservice/face/identify/getinfo?access_token=`` {verify_result}
answers ``errcode`` 0 with ``identify_ret`` (0: passed; a failed face gives 10004, "比对人脸
信息不匹配" in WeChat's list of face results), ``openid``, ``identify_time`` (Unix seconds),
``validate_data``, and the MD5 of the ID number and of the name (UTF-8, lower-case hex), so
that the server can check the result is for the details it was given. A verify_result WeChat
never issued, or one older than ``RESULT_TTL``, answers an errcode instead (the emulator's
choice of 47001 "data format error": WeChat publishes none for it).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from miniapp_stubs.wechat_rules import WeChatError

IDENTIFY_PASSED = 0
IDENTIFY_FACE_MISMATCH = 10004
RESULT_TTL = 3600.0
OUTCOMES = {"pass": IDENTIFY_PASSED, "fail": IDENTIFY_FACE_MISMATCH}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class FaceResult:
    openid: str
    name: str
    id_number: str
    identify_ret: int
    at: float


class FaceVerifications:
    """Every verify_result issued, by its value."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.results: dict[str, FaceResult] = {}

    def reset(self) -> None:
        self.results.clear()

    def verify(self, openid: str, body: dict[str, Any]) -> str:
        """What the phone does; returns the verify_result the page receives."""
        name, number, outcome = body.get("name"), body.get("id_number"), body.get("outcome")
        if not isinstance(name, str) or not name or not isinstance(number, str) or not number:
            raise WeChatError(47001, "data format error: name and id_number required")
        if outcome not in OUTCOMES:
            raise WeChatError(47001, 'data format error: outcome must be "pass" or "fail"')
        result = secrets.token_urlsafe(32)
        # WeChat checks the number against the ID card register, which writes the check
        # character X in upper case: the MD5 it answers is of that form
        number = number.strip().upper()
        self.results[result] = FaceResult(openid, name, number, OUTCOMES[outcome], self.clock())
        return result

    def age(self, verify_result: str, seconds: float) -> None:
        """Make a result older (tests of expiry), as if verified ``seconds`` earlier."""
        self.results[verify_result].at -= seconds

    def get_info(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /cityservice/face/identify/getinfo."""
        value = body.get("verify_result")
        found = self.results.get(value) if isinstance(value, str) else None
        if found is None or self.clock() - found.at > RESULT_TTL:
            raise WeChatError(47001, "data format error: invalid verify_result")
        return {
            "errcode": 0,
            "errmsg": "ok",
            "identify_ret": found.identify_ret,
            "identify_time": int(found.at),
            "validate_data": "",
            "openid": found.openid,
            "user_id_key": "",
            "finish_time": int(found.at),
            "id_card_number_md5": _md5(found.id_number),
            "name_utf8_md5": _md5(found.name),
        }
