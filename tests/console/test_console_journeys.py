"""More journeys in the browser: a hearing moved then cancelled, a paper service recorded, a
work order reassigned by a supervisor, a day reconciled with a finding mended, and a work
order answered and closed with the keyboard alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from playwright.async_api import Page

from server.platform.clock import SHANGHAI
from tests.console.conftest import Court
from tests.console.steps import accepted_case, file_one
from tests.factories import STAFF_PASSWORD, documents_served


def working_days(court: Court, count: int) -> list[dt.date]:
    """The next ``count`` working days of the court, from the day after tomorrow."""
    calendar = court.services.calendars.for_court("bj-chaoyang")
    day, found = dt.date.today() + dt.timedelta(days=2), []
    while len(found) < count:
        if calendar.is_working_day(day):
            found.append(day)
        day += dt.timedelta(days=1)
    return found


async def pick_time(page: Page, holder: str, value: str) -> None:
    """Types a time into an Element Plus date-time picker and confirms it."""
    await page.locator(f"[data-test={holder}] input").fill(value)
    await page.keyboard.press("Enter")


def test_a_hearing_is_moved_then_cancelled(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")
        case_id, judge_name, clerk_name = await accepted_case(court, mp)
        clerk = await court.api_staff(clerk_name)
        first, second = working_days(court, 2)
        made = await clerk.schedule_hearing(case_id, f"{first}T10:00:00+08:00", "第三法庭")
        assert made.status == 201, made.body
        hearing_id = made.body["id"] if "id" in made.body else made.body["hearings"][-1]["id"]

        page = await court.page()
        await court.sign_in(page, judge_name)
        await page.goto(f"{court.console_url}#/cases/{case_id}")
        await page.get_by_role("tab", name="庭审 (1)").click()
        rows = page.locator("[data-test=hearings] .el-table__row")
        await rows.filter(has_text=f"{first:%Y/%m/%d} 10:00").wait_for()

        # move it to another day and room
        await page.click(f"[data-test=move-{hearing_id}]")
        await page.wait_for_selector(".el-dialog:has-text('变更庭审时间')")
        await pick_time(page, "hearing-at", f"{second} 14:30")
        await page.fill("[data-test=hearing-room]", "第五法庭")
        await court.shot(page, "hearing-move-dialog")
        await page.click("[data-test=submit-hearing]")
        moved = rows.filter(has_text=f"{second:%Y/%m/%d} 14:30")
        await moved.filter(has_text="第五法庭").wait_for()
        assert "待开庭" in await moved.inner_text()
        (kept,) = (await clerk.get(f"/api/v1/cases/{case_id}")).body["hearings"]
        starts = dt.datetime.fromisoformat(kept["starts_at"]).astimezone(SHANGHAI)
        assert (starts.date(), starts.strftime("%H:%M"), kept["room"]) == (
            second,
            "14:30",
            "第五法庭",
        )

        # then cancel it, with the reason
        await page.click(f"[data-test=cancel-{hearing_id}]")
        await page.fill("[data-test=cancel-reason]", "原告申请延期审理")
        await page.click("[data-test=submit-cancel]")
        await moved.filter(has_text="已取消").wait_for()
        assert "原告申请延期审理" in await moved.inner_text()
        assert await page.locator(f"[data-test=move-{hearing_id}]").count() == 0
        await court.shot(page, "hearing-cancelled")
        (gone,) = (await clerk.get(f"/api/v1/cases/{case_id}")).body["hearings"]
        assert (gone["status"], gone["cancel_reason"]) == ("cancelled", "原告申请延期审理")

    court.run(journey(), timeout=90)


def test_a_paper_service_is_recorded(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")  # no consent to electronic service
        case_id, _, clerk_name = await accepted_case(court, mp)
        clerk = await court.api_staff(clerk_name)
        kase = (await clerk.get(f"/api/v1/cases/{case_id}")).body
        doc = kase["documents"][0]
        waiting = [r for r in doc["recipients"] if r["delivered_at"] is None]
        assert waiting, doc
        party_id = waiting[0]["party_id"]

        page = await court.page()
        await court.sign_in(page, clerk_name)
        await page.goto(f"{court.console_url}#/cases/{case_id}")
        await page.get_by_role("tab", name=f"送达 ({len(kase['documents'])})").click()
        await page.click(f"[data-test=paper-{doc['id']}-{party_id}]")
        await page.click("[data-test=paper-way]")
        await page.get_by_role("option", name="直接送达").click()
        yesterday = dt.datetime.now(SHANGHAI).date() - dt.timedelta(days=1)
        await pick_time(page, "paper-at", f"{yesterday} 15:20")
        await page.fill("[data-test=paper-note]", "当事人到庭签收送达回证")
        await court.shot(page, "paper-service-dialog")
        await page.click("[data-test=submit-paper]")
        # received before it was sent: the API's 422, beside the field
        await page.wait_for_selector(".el-form-item__error:has-text('时间不合理')")
        await court.shot(page, "paper-service-bad-time")
        # an hour from now, the court's clock being three hours on
        court.clock.shift = dt.timedelta(hours=3)
        signed = dt.datetime.now(SHANGHAI).replace(second=0, microsecond=0) + dt.timedelta(hours=1)
        await pick_time(page, "paper-at", f"{signed:%Y-%m-%d %H:%M}")
        await page.click("[data-test=submit-paper]")
        await page.wait_for_selector(".el-dialog", state="hidden")
        card = page.locator(".doc-card").first
        row = card.locator(".el-table__row", has_text="直接送达")
        await row.wait_for()
        assert f"{signed:%Y/%m/%d %H:%M}" in await row.inner_text()
        await court.shot(page, "paper-service-recorded")

        again = (await clerk.get(f"/api/v1/cases/{case_id}")).body["documents"][0]
        line = next(r for r in again["recipients"] if r["party_id"] == party_id)
        assert (line["method"], line["paper_way"]) == ("paper", "直接送达")
        delivered = dt.datetime.fromisoformat(line["delivered_at"]).astimezone(SHANGHAI)
        assert delivered == signed

    court.run(journey(), timeout=90)


def test_a_supervisor_reassigns_a_work_order(court: Court) -> None:
    async def journey() -> None:
        boss, _ = await court.staff("judge", name="赵庭长", supervisor=True)
        other, _ = await court.staff("judge", name="陈法官")
        mp = await court.litigant("张三", "201")
        sent = await mp.send_message("请问如何申请诉前调解？", "其他", court_id="bj-chaoyang")
        assert sent.status == 201, sent.body
        order_id = sent.body["id"]

        page = await court.page()
        await court.sign_in(page, boss)
        await page.click("a.nav-link:has-text('工单看板')")
        await page.click(f"[data-test=order-{order_id}]")
        await page.wait_for_selector("text=请问如何申请诉前调解？")
        await page.click("[data-test=reassign-to]")
        await page.get_by_role("option", name="陈法官（法官）").click()
        await court.shot(page, "reassign-pick")
        await page.click("[data-test=reassign]")
        await page.wait_for_selector(".el-descriptions:has-text('陈法官')")
        await court.shot(page, "reassigned")

        # the new assignee has it in their own list, and was told
        judge = await court.api_staff(other)
        mine = (await judge.get("/api/v1/workorders")).body["items"]
        assert [(o["id"], o["assignee"]["name"]) for o in mine] == [(order_id, "陈法官")]
        told = (await judge.notifications()).body["items"]
        assert any((n.get("data") or {}).get("workorder_id") == order_id for n in told), told

    court.run(journey(), timeout=90)


def test_the_system_admin_reconciles_a_day_and_a_lost_payment_is_mended(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")
        clerk_name, _ = await court.staff("clerk")
        clerk = await court.api_staff(clerk_name)
        case_id = (await clerk.accept_filing(await file_one(mp))).body["case_id"]
        await documents_served(clerk, case_id)  # made after the commit
        notice = (await mp.fees(case_id)).body["notices"][0]
        order = await mp.pay_notice(notice["id"])
        assert order.status == 201, order.body
        out_trade_no = f"MC{order.body['payment_id']}"
        court.emulator.pay.notifier.dropped.add(out_trade_no)  # every callback is lost
        assert (await mp.request_payment(order.body["pay_params"])).status == 200
        await court.emulator.pay.notifier.idle()
        assert (await mp.fees(case_id)).body["notices"][0]["status"] == "pending"

        # 11:00 (Beijing) the next day: WeChat Pay has made the day's bill
        paid_day = dt.datetime.now(SHANGHAI).date()
        ready = dt.datetime.combine(paid_day + dt.timedelta(days=1), dt.time(11), SHANGHAI)
        court.clock.shift = ready - dt.datetime.now(dt.UTC)

        system, _ = await court.staff("admin", court_id=None, name="系统管理员")
        page = await court.page()
        await court.sign_in(page, system)
        await page.click("a.nav-link:has-text('支付对账')")
        await page.get_by_label("对账日期").fill(paid_day.isoformat())
        await page.keyboard.press("Enter")
        await page.click("[data-test=reconcile]")
        await page.wait_for_selector(".el-result:has-text('发现差异')")
        finding = page.locator("[data-test=only-wechat] .el-table__row", has_text=out_trade_no)
        text = await finding.inner_text()
        assert "已补记" in text and "2,300.00 元" in text, text
        assert "支付成功" in text and "待支付" in text, text  # states in words, not codes
        summary = await page.locator(".el-result").inner_text()
        assert "微信账单 1 笔，本系统 0 笔" in summary, summary  # as found, before mending
        await court.shot(page, "reconcile-finding-mended")
        # mended through the callback's own move: the notice is paid, once
        assert (await mp.fees(case_id)).body["notices"][0]["status"] == "paid"

        await page.click("[data-test=reconcile]")
        await page.wait_for_selector(".el-result:has-text('账实相符')")
        assert await page.locator("[data-test=only-wechat] .el-table__row").count() == 0
        await court.shot(page, "reconcile-clean")

    court.run(journey(), timeout=120)


FOCUS = """() => {
  const el = document.activeElement;
  const s = getComputedStyle(el);
  const wrap = el.closest('.el-input__wrapper, .el-select__wrapper');
  return {
    tag: el.tagName, text: (el.innerText || el.value || '').trim().slice(0, 40),
    test: el.getAttribute('data-test') || '',
    // its own outline, or for a text field the ring its wrapper draws around it
    ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || Boolean(wrap
      && getComputedStyle(wrap).boxShadow.includes('245, 166, 35')),
  };
}"""


async def tab_to(page: Page, want: dict[str, str], limit: int = 60) -> dict[str, Any]:
    """Tab (forwards) until the focused element matches ``want``; it must show its ring."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused: dict[str, Any] = await page.evaluate(FOCUS)
        if all(v in str(focused.get(k, "")) for k, v in want.items()):
            assert focused["ring"], f"no visible focus on {focused}"
            return focused
    raise AssertionError(f"{want} never got the focus")


def test_a_work_order_answered_and_closed_with_the_keyboard_alone(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")
        case_id, judge, _ = await accepted_case(court, mp)
        sent = await mp.send_message("请问何时开庭？", "庭审安排", case_id=case_id)
        order_id = sent.body["id"]

        page = await court.page()
        await page.goto(court.console_url)
        await page.wait_for_selector("input[name=username]:focus")  # focused on arrival
        await page.keyboard.type(judge)
        await tab_to(page, {"tag": "INPUT"})
        await page.keyboard.type(STAFF_PASSWORD)
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".shell")

        await tab_to(page, {"tag": "A", "text": "我的工单"})
        await court.shot(page, "keyboard-focus-nav")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(f"[data-test=order-{order_id}]")
        await tab_to(page, {"test": f"order-{order_id}"})
        await page.keyboard.press("Enter")
        await page.wait_for_selector("text=请问何时开庭？")
        await tab_to(page, {"test": "reply-content"})
        await page.keyboard.type("定于下周三上午九点开庭，传票将电子送达。")
        await tab_to(page, {"test": "send-reply"})
        await court.shot(page, "keyboard-focus-send")
        await page.keyboard.press("Space")
        await page.wait_for_selector("[data-test=wo-status]:has-text('已答复')")
        await tab_to(page, {"test": "close"})
        await page.keyboard.press("Enter")
        await page.wait_for_selector("[data-test=wo-status]:has-text('已办结')")
        await court.shot(page, "keyboard-closed")

        thread = (await mp.message(order_id)).body
        assert thread["status"] == "closed"
        assert thread["thread"][-1]["content"] == "定于下周三上午九点开庭，传票将电子送达。"

    court.run(journey(), timeout=90)
