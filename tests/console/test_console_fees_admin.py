"""Fees and administration in the browser: a refund previewed before it is confirmed, the
lawyer-verification queue, reconciliation, and a queue longer than one page."""

from __future__ import annotations

from miniapp_stubs.client import MiniProgram
from tests.console.conftest import Court, eventually
from tests.console.steps import READY_MARK, file_one
from tests.factories import documents_served


async def paid_case(court: Court, mp: MiniProgram) -> tuple[str, str]:
    """An accepted case whose acceptance fee the plaintiff paid: (case_id, clerk username)."""
    clerk_name, _ = await court.staff("clerk")
    clerk = await court.api_staff(clerk_name)
    case_id = (await clerk.accept_filing(await file_one(mp))).body["case_id"]
    await documents_served(clerk, case_id)  # made after the commit
    notice = (await mp.fees(case_id)).body["notices"][0]
    order = await mp.pay_notice(notice["id"])
    assert order.status == 201, order.body
    assert (await mp.request_payment(order.body["pay_params"])).status == 200

    async def credited() -> bool:
        return bool((await mp.fees(case_id)).body["notices"][0]["status"] == "paid")

    await eventually(credited, timeout=10)
    return case_id, clerk_name


def test_refund_shows_its_computed_amount_before_it_is_confirmed(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")
        case_id, clerk_name = await paid_case(court, mp)
        page = await court.page()
        await court.sign_in(page, clerk_name)
        await page.goto(f"{court.console_url}#/cases/{case_id}")
        await page.get_by_role("tab", name="诉讼费").click()
        await page.click("[data-test=refund]")
        # withdrawal: half of the 2,300 yuan paid (Art. 15), shown before anything is sent
        await page.wait_for_selector("[data-test=refund-preview]:has-text('1,150.00 元')")
        await page.click("[data-test=refund-reason]")
        await page.get_by_role("option", name="减少诉讼请求金额，退还差额").click()
        await page.get_by_label("变更后的诉讼请求金额（元）").fill("50000")
        # fee on 100,000 (2,300) minus fee on 50,000 (1,050), by the fee schedule
        await page.wait_for_selector("[data-test=refund-preview]:has-text('1,250.00 元')")
        await court.shot(page, "refund-preview")
        await page.click("[data-test=submit-refund]")
        box = page.locator(".el-message-box")
        await box.wait_for()
        assert "1,250.00 元" in await box.inner_text()
        await court.shot(page, "refund-confirm")
        await box.get_by_role("button", name="确定退费").click()
        await page.wait_for_selector("[data-test=fees] .el-table__row:has-text('减少诉讼请求金额')")
        refunds = (await mp.fees(case_id)).body["refunds"]
        assert [(r["reason"], r["amount_fen"]) for r in refunds] == [("reduced_claim", 125_000)]
        await court.shot(page, "refund-listed")

    court.run(journey(), timeout=90)


def test_admin_verifies_a_lawyer_and_the_system_admin_reconciles(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("周律师", "401")
        applied = await mp.register_lawyer("11101201510123456", "北京某某律师事务所")
        assert applied.status == 200, applied.body
        admin, _ = await court.staff("admin", name="院管理员")
        page = await court.page()
        await court.sign_in(page, admin)
        await page.click("a.nav-link:has-text('律师审核')")
        row = page.locator(".el-table__row", has_text="北京某某律师事务所")
        await row.wait_for()
        await court.shot(page, "lawyer-queue")
        await row.get_by_role("button", name="通过").click()
        await page.wait_for_selector("text=暂无申请")
        assert (await mp.me()).body["role"] == "lawyer"

        system, _ = await court.staff("admin", court_id=None, name="系统管理员")
        page2 = await court.page()
        await court.sign_in(page2, system)
        await page2.click("a.nav-link:has-text('支付对账')")
        # today's bill does not exist yet: WeChat Pay makes it after 10:00 the next day
        picker = page2.get_by_label("对账日期")
        today = await page2.evaluate(
            "() => new Date().toLocaleDateString('en-CA', {timeZone: 'Asia/Shanghai'})"
        )
        await picker.fill(today)
        await page2.keyboard.press("Enter")
        await page2.click("[data-test=reconcile]")
        await page2.wait_for_selector(".el-alert--error")
        assert "账单" in await page2.locator(".el-alert--error").inner_text()
        await court.shot(page2, "reconcile-not-yet-billed")

    court.run(journey(), timeout=90)


def test_a_queue_longer_than_a_page_is_read_page_by_page(court: Court) -> None:
    async def journey() -> None:
        clerk_name, _ = await court.staff("clerk")
        mp = await court.litigant("张三", "201")
        ids = [await file_one(mp) for _ in range(23)]
        page = await court.page()
        await court.sign_in(page, clerk_name)
        rows = page.locator("[data-test=queue] .el-table__body-wrapper .el-table__row")
        await page.wait_for_selector("[data-test=next-page]:not([disabled])")
        assert await rows.count() == 20
        # a reload with the session kept: how soon the queue itself is on screen
        await page.reload()
        shown = await page.evaluate(READY_MARK, "queue-rendered")
        print(f"\nreview queue (first page) rendered {shown:.0f} ms after navigation")
        assert shown < 1000
        await page.click("[data-test=next-page]")
        await page.wait_for_selector("text=第 2 页")
        await eventually(lambda: _count_is(rows, 3))
        reads = [
            r for r in await page.evaluate("() => window.__consoleRequests") if "/review/" in r
        ]
        assert all("limit=20" in r for r in reads) and sum("cursor=" in r for r in reads) >= 1
        shown_ids = {
            (await b.get_attribute("data-test") or "").removeprefix("open-")
            for b in await page.locator("[data-test^=open-]").all()
        }
        assert shown_ids <= set(ids) and len(shown_ids) == 3
        await court.shot(page, "queue-page-2")

    court.run(journey(), timeout=120)


async def _count_is(rows: object, n: int) -> bool:
    return bool(await rows.count() == n)  # type: ignore[attr-defined]
