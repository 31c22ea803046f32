"""``WeChatAdapter`` against the emulator over real HTTP: requests on the IOLoop (aiohttp),
one token fetch for many calls at once, and WeChat's failures as ``WeChatError``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.wechat.miniprogram import WeChatAdapter, WeChatError
from tests.wechat.test_emulator import APPID, SECRET, call, running, wx_login


@pytest.mark.gen_test(timeout=20)
async def test_calls_at_once_fetch_one_token_and_each_get_their_verdict() -> None:
    async with running() as emu:
        issued: list[Any] = []
        issue = emu.state.issue_token

        def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
            issued.append(args)
            return issue(*args, **kwargs)

        emu.state.issue_token = counted  # type: ignore[method-assign]
        await call(emu, "POST", "/_emulator/content/risky-words", {"words": ["赌博"]})
        openid, _ = await wx_login(emu)
        adapter = WeChatAdapter(APPID, SECRET, emu.url)
        try:
            texts = [f"请问第{i}号案件何时开庭" for i in range(20)] + ["我要赌博"]
            verdicts = await asyncio.gather(*(adapter.check_text(openid, t) for t in texts))
        finally:
            await adapter.aclose()
        assert len(issued) == 1  # twenty-one calls waited for one fetch
        assert [v.suggest for v in verdicts] == ["pass"] * 20 + ["risky"]


@pytest.mark.gen_test(timeout=20)
async def test_an_http_error_or_no_answer_is_an_outage() -> None:
    async with running() as emu:
        openid, _ = await wx_login(emu)
        for base in (f"{emu.url}/nowhere", "http://127.0.0.1:9"):  # 404s; nothing listening
            adapter = WeChatAdapter(APPID, SECRET, base, timeout=2.0)
            try:
                with pytest.raises(WeChatError) as failed:
                    await adapter.check_text(openid, "你好")
            finally:
                await adapter.aclose()
            assert failed.value.errcode is None, base
