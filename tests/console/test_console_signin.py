"""Serving the console, signing in and out, and the first page's speed."""

from __future__ import annotations

from miniapp_stubs.client import ApiSession
from tests.console.conftest import Court
from tests.console.steps import READY_MARK


def test_console_is_served_with_versioned_cacheable_assets(court: Court) -> None:
    async def journey() -> None:
        s = ApiSession(court.url)
        page = await s.get("/console/")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Cache-Control"] == "no-cache"
        assert "script-src 'self' 'unsafe-eval' 'sha256-" in page.headers["Content-Security-Policy"]
        html = page.body
        assert "法院工作台" in html and "%ASSET" not in html and "%IMPORTMAP%" not in html
        assert "http://" not in html and "https://" not in html  # no CDN: everything is ours
        vue = html.split('src="', 3)[1].split('"')[0]  # first script: vendored Vue
        assert vue.startswith("/console/assets/vendor/vue-3.5.47/vue.global.prod.js?v=")
        asset = await s.get(vue)
        assert asset.status == 200
        assert "max-age=31536000" in asset.headers["Cache-Control"]
        plain = await s.get("/console/assets/js/main.js")
        assert plain.status == 200 and plain.headers["Cache-Control"] == "no-cache"
        assert plain.headers["Etag"]
        again = await s.get(
            "/console/assets/js/main.js", headers={"If-None-Match": plain.headers["Etag"]}
        )
        assert again.status == 304
        assert (await s.get("/console/assets/nothing.js")).status == 404
        assert (await s.get("/console/assets/../server/app.py")).status in (403, 404)
        redirect = await s.request("GET", "/console", headers={})
        assert redirect.status in (200, 301)

    court.run(journey())


def test_clerk_signs_in_lands_on_the_queue_and_a_revoked_session_returns_to_sign_in(
    court: Court,
) -> None:
    async def journey() -> None:
        username, _ = await court.staff("clerk")
        # the first page's interactive time, from navigation start (Performance API), each
        # load in a fresh context (nothing cached); the best of up to three, as a busy shared
        # machine can stall any single one
        times = []
        for _ in range(3):
            page = await court.page()
            await page.goto(court.console_url)
            await page.wait_for_selector("text=工作人员登录")
            ready = await page.evaluate(READY_MARK, "login-ready")
            nav = await page.evaluate(
                "() => performance.getEntriesByType('navigation')[0].domInteractive"
            )
            times.append(ready)
            print(f"\nconsole first page interactive: {ready:.0f} ms (domInteractive {nav:.0f} ms)")
            if ready < 1000:
                break
            await page.context.close()
        assert min(times) < 1000, times
        await court.shot(page, "sign-in")

        # wrong password: the message in Chinese, still on the sign-in page
        await page.get_by_placeholder("请输入用户名").fill(username)
        await page.get_by_placeholder("请输入密码").fill("wrong-password")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("[data-test=login-error]:has-text('用户名或密码错误')")
        await court.shot(page, "sign-in-error")

        await page.get_by_placeholder("请输入密码").fill("correct-horse-battery")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("text=待审查的网上立案申请")
        assert page.url.endswith("#/review")
        await page.wait_for_selector(".feed-state.online")
        await court.shot(page, "review-queue-empty")

        # the session is revoked elsewhere (another tab logs out): back to sign-in, told why
        token = await page.evaluate(
            "() => JSON.parse(sessionStorage.getItem('microcourt.console.session')).token"
        )
        s = ApiSession(court.url)
        s.token = token
        assert (await s.post("/api/v1/auth/logout")).status == 204
        await page.get_by_role("button", name="刷新").click()
        await page.wait_for_selector("[data-test=flash]:has-text('登录已失效')")
        assert page.url.endswith("#/login")
        await court.shot(page, "session-revoked")

        # sign in again and log out: the token stops working
        await page.get_by_placeholder("请输入用户名").fill(username)
        await page.get_by_placeholder("请输入密码").fill("correct-horse-battery")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("text=待审查的网上立案申请")
        token = await page.evaluate(
            "() => JSON.parse(sessionStorage.getItem('microcourt.console.session')).token"
        )
        await page.click("[data-test=logout]")
        await page.wait_for_selector("[data-test=flash]:has-text('您已安全退出')")
        s.token = token
        assert (await s.get("/api/v1/me")).status == 401

    court.run(journey())
