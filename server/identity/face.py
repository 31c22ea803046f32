"""Real-name verification as courts use it: WeChat's face verification (人脸核身) for
government-service mini-programs, behind a pluggable verifier.

The page calls ``wx.startFacialRecognitionVerify`` with the claimed name and ID number; WeChat
compares the face with the photo of that ID card and gives the page ``verifyResult``. The page
sends it to us and we ask WeChat what it means: POST
``/cityservice/face/identify/getinfo?access_token=`` {verify_result} answers ``identify_ret``
(0: the face matched), the ``openid`` that verified, ``identify_time`` and the MD5 of the ID
number and of the name (UTF-8) that were verified. Only that answer counts: a verify_result the
page invents is not known to WeChat, and one that passed for other details or another user
does not match the claim. WeChat's newer pair (getVerifyId, then queryVerifyInfo with
``verify_ret`` 10000 for success) slots in as another ``FaceVerifier``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Protocol

from server.identity.errors import (
    FaceVerificationExpired,
    FaceVerificationFailed,
    FaceVerificationForged,
    FaceVerificationMismatch,
)
from server.wechat.errors import WeChatOutage
from server.wechat.miniprogram import FaceInfo, WeChatAdapter, WeChatError, is_outage

IDENTIFY_PASSED = 0  # identify_ret of a face that matched the ID card's photo


@dataclass(frozen=True)
class Claim:
    """What the user claimed and who they are on WeChat."""

    openid: str
    name: str
    id_number: str


class FaceVerifier(Protocol):
    """Confirms a verify_result for a claim, or raises one of the 422 face errors."""

    name: str

    async def confirm(self, claim: Claim, verify_result: str, now: dt.datetime) -> None: ...


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class WeChatFaceVerifier:
    """The verifier of a mini-program in the government-service category: WeChat's getinfo."""

    name = "wechat_face"

    def __init__(self, wechat: WeChatAdapter, max_age: dt.timedelta) -> None:
        self.wechat = wechat
        self.max_age = max_age

    async def confirm(self, claim: Claim, verify_result: str, now: dt.datetime) -> None:
        try:
            info = await self.wechat.face_identify_info(verify_result)
        except WeChatError as e:
            if is_outage(e):
                raise WeChatOutage() from None
            raise FaceVerificationForged() from None  # WeChat does not know this result
        check_face_info(info, claim, now, self.max_age)


def check_face_info(info: FaceInfo, claim: Claim, now: dt.datetime, max_age: dt.timedelta) -> None:
    """The rules a getinfo answer must meet to confirm ``claim``, most telling first."""
    if info.openid != claim.openid:
        raise FaceVerificationForged()  # another user's verification, replayed
    if info.identify_ret != IDENTIFY_PASSED:
        raise FaceVerificationFailed(details={"identify_ret": info.identify_ret})
    same = info.id_card_number_md5.lower() == md5_hex(
        claim.id_number
    ) and info.name_utf8_md5.lower() == md5_hex(claim.name)
    if not same:
        raise FaceVerificationMismatch()
    verified_at = dt.datetime.fromtimestamp(info.identify_time, dt.UTC)
    if now - verified_at > max_age:
        raise FaceVerificationExpired()
