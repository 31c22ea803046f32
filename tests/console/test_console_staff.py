"""Judges, supervisors and admins in the browser: a work order answered, the statistics'
charts, a clerk created by the admin, and a case administered (assign, hearing, service)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from miniapp_stubs.client import StaffConsole
from tests.console.conftest import Court
from tests.console.steps import accepted_case, file_one
from tests.factories import PDF, documents_served


def test_judge_answers_a_work_order_and_the_sender_sees_the_answer(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")
        case_id, judge, _ = await accepted_case(court, mp)
        page = await court.page()
        await court.sign_in(page, judge)
        assert page.url.endswith("#/cases")
        await page.wait_for_selector("[data-test=cases] .el-table__row")
        await court.shot(page, "judge-my-cases")
        await page.click("a.nav-link:has-text('我的工单')")
        await page.wait_for_selector("text=暂无工单")

        # the litigant writes to the judge; the order arrives on the open page
        sent = await mp.send_message("请问本案什么时候开庭？", "庭审安排", case_id=case_id)
        assert sent.status == 201, sent.body
        order_id = sent.body["id"]
        link = page.locator(f"[data-test=order-{order_id}]")
        await link.wait_for(timeout=3000)
        await court.shot(page, "judge-orders-live")

        # answer by keyboard, with an attachment
        await link.focus()
        await page.keyboard.press("Enter")
        await page.wait_for_selector("text=请问本案什么时候开庭？")
        await page.locator("[data-test=reply-content]").fill("已排期，传票将于近日电子送达。")
        await page.set_input_files(
            "[data-test=reply-files]",
            files=[
                {"name": "排期说明.pdf", "mimeType": "application/pdf", "buffer": PDF + b"plan"}
            ],
        )
        await page.click("[data-test=send-reply]")
        await page.wait_for_selector(".bubble.court:has-text('已排期')")
        await page.wait_for_selector("[data-test=wo-status]:has-text('已答复')")
        await court.shot(page, "judge-answered")

        # the sender sees the answer and its attachment
        thread = (await mp.message(order_id)).body
        answer = thread["thread"][-1]
        assert (answer["side"], answer["content"]) == ("court", "已排期，传票将于近日电子送达。")
        assert answer["name"] == "刘法官" and len(answer["attachments"]) == 1
        got = await mp.download(answer["attachments"][0])
        assert got.status == 200 and got.content == PDF + b"plan"

        await page.click("[data-test=close]")
        await page.wait_for_selector("[data-test=wo-status]:has-text('已办结')")
        assert (await mp.message(order_id)).body["status"] == "closed"

    court.run(journey(), timeout=90)


def test_supervisor_statistics_draw_their_charts_from_seeded_orders(court: Court) -> None:
    async def journey() -> None:
        boss, _ = await court.staff("judge", name="赵庭长", supervisor=True)
        supervisor = await court.api_staff(boss)
        senders = [await court.litigant(f"当事人{n}", str(300 + i)) for i, n in enumerate("甲乙丙")]
        categories = ["进度查询", "证据材料", "进度查询", "缴费退费", "进度查询"]
        ids = []
        for i, category in enumerate(categories):
            res = await senders[i % 3].send_message(
                f"第{i}件咨询", category, court_id="bj-chaoyang"
            )
            assert res.status == 201, res.body
            ids.append(res.body["id"])
        for order_id in ids[:3]:  # the supervisor answers three at the desk
            res = await supervisor.reply_message(order_id, "已收到，正在办理。")
            assert res.status == 201, res.body

        page = await court.page()
        await court.sign_in(page, boss)
        await page.click("a.nav-link:has-text('工单看板')")
        await page.wait_for_selector("[data-test=orders] .el-table__row")
        assert await page.locator("[data-test=orders] .el-table__row").count() == 5
        await court.shot(page, "supervisor-board")

        await page.click("a.nav-link:has-text('工单统计')")
        await page.get_by_text("按类别").click()
        await page.get_by_role("button", name="统计").click()

        async def option() -> dict[str, Any]:
            return dict(
                await page.evaluate(
                    """() => {
                      const c = (window.__consoleCharts || [])[0];
                      if (!c) return {};
                      const o = c.getOption();
                      return {x: o.xAxis[0].data, series: o.series.map((s) => s.data)};
                    }"""
                )
            )

        await page.wait_for_function(
            "() => (window.__consoleCharts || []).length === 2 &&"
            " window.__consoleCharts[0].getOption().xAxis[0].data.includes('证据材料')"
        )
        drawn = await option()
        received = dict(zip(drawn["x"], drawn["series"][0], strict=True))
        replied = dict(zip(drawn["x"], drawn["series"][1], strict=True))
        assert received == {"进度查询": 3, "证据材料": 1, "缴费退费": 1}
        assert sum(replied.values()) == 3
        assert await page.locator("[data-test=chart-volume] canvas").count() >= 1
        kpis = await page.locator("[data-test=kpis]").inner_text()
        assert "5" in kpis and "收到工单" in kpis
        async with page.expect_download() as download:
            await page.click("[data-test=csv]")
        csv = (await (await download.value).path()).read_text(encoding="utf-8-sig")
        assert csv.splitlines()[0].startswith("分组,收到,已答复")
        assert "合计,5,3" in csv
        await court.shot(page, "statistics-charts")

    court.run(journey(), timeout=90)


def test_admin_creates_a_clerk_who_then_signs_in(court: Court) -> None:
    async def journey() -> None:
        admin, _ = await court.staff("admin", name="系统管理员")
        page = await court.page()
        await court.sign_in(page, admin)
        assert page.url.endswith("#/admin/staff")
        await page.click("[data-test=new-staff]")
        await page.fill("[data-test=f-username]", "Bad Name")
        await page.fill("[data-test=f-password]", "short")
        await page.fill("[data-test=f-name]", "陈立案")
        await page.click("[data-test=create-staff]")
        # the API's 422, each message beside its own field
        await page.wait_for_selector(".el-form-item__error:has-text('格式不正确')")
        await page.wait_for_selector(".el-form-item__error:has-text('内容过短')")
        await court.shot(page, "create-staff-errors")
        await page.fill("[data-test=f-username]", "chen.clerk")
        await page.fill("[data-test=f-password]", "a-long-initial-password")
        await page.click("[data-test=create-staff]")
        await page.wait_for_selector("[data-test=staff] .el-table__row:has-text('chen.clerk')")
        await court.shot(page, "staff-list")
        await page.click("[data-test=logout]")

        await page.get_by_placeholder("请输入用户名").fill("chen.clerk")
        await page.get_by_placeholder("请输入密码").fill("a-long-initial-password")
        await page.keyboard.press("Enter")
        await page.wait_for_selector("text=待审查的网上立案申请")
        assert "陈立案" in await page.locator(".who").inner_text()

    court.run(journey())


def test_admin_edits_resets_and_disables_a_judge(court: Court) -> None:
    async def journey() -> None:
        admin, _ = await court.staff("admin", name="系统管理员")
        judge, _ = await court.staff("judge", name="刘法官")
        judge_session = await court.api_staff(judge)
        page = await court.page()
        await court.sign_in(page, admin)
        await page.wait_for_selector(f"[data-test=state-{judge}]:has-text('在用')")
        assert await page.locator(f"[data-test=toggle-{admin}]").count() == 0  # not oneself

        # flags, the team number and a new password
        await page.click(f"[data-test=edit-{judge}]")
        await page.click("[data-test=e-service-desk]")
        await page.fill("[data-test=e-team-phone]", "call me")
        await page.click("[data-test=save-staff]")
        await page.wait_for_selector("[data-test=edit-error]")  # the API's 422, shown
        await page.fill("[data-test=e-team-phone]", "010-12368")
        await page.fill("[data-test=e-password]", "a-brand-new-password")
        await page.click("[data-test=save-staff]")
        await page.wait_for_selector("text=原有登录已全部退出")
        row = page.locator("[data-test=staff] .el-table__row", has_text=judge)
        await row.locator("text=团队号码 010-12368").wait_for()
        await row.locator(".el-tag:has-text('服务台')").wait_for()
        await court.shot(page, "staff-edited")
        res = await judge_session.me()
        assert (res.status, res.error_code) == (401, "token_revoked")

        # 停用, confirmed: the judge cannot sign in; 启用 again: the new password works
        await page.click(f"[data-test=toggle-{judge}]")
        await page.get_by_role("button", name="停用").last.click()
        await page.wait_for_selector(f"[data-test=state-{judge}]:has-text('已停用')")
        await court.shot(page, "staff-disabled")
        again = StaffConsole(court.url)
        assert (await again.login(judge, "a-brand-new-password")).status == 401
        await page.click(f"[data-test=toggle-{judge}]")
        await page.wait_for_selector(f"[data-test=state-{judge}]:has-text('在用')")
        assert (await again.login(judge, "a-brand-new-password")).status == 200
        me = (await again.me()).body
        assert (me["service_desk"], me["team_phone"], me["active"]) == (True, "010-12368", True)

    court.run(journey())


def test_clerk_administers_a_case_assign_hearing_and_service(court: Court) -> None:
    async def journey() -> None:
        mp = await court.litigant("张三", "201")
        clerk_name, clerk_id = await court.staff("clerk", name="王书记员")
        _, judge_id = await court.staff("judge", name="刘法官")
        clerk = await court.api_staff(clerk_name)
        filing_id = await file_one(mp, consent_electronic_service=True)
        case_id = (await clerk.accept_filing(filing_id)).body["case_id"]
        await documents_served(clerk, case_id)  # made after the commit

        page = await court.page()
        await court.sign_in(page, clerk_name)
        await page.goto(f"{court.console_url}#/cases/{case_id}")
        await page.wait_for_selector("[data-test=judge]:has-text('未分案')")
        await page.click("[data-test=assign]")
        await page.click("[data-test=pick-judge]")
        await page.get_by_role("option", name="刘法官").click()
        await page.click("[data-test=pick-clerk]")
        await page.get_by_role("option", name="王书记员").click()
        await page.click("[data-test=submit-assign]")
        await page.wait_for_selector("[data-test=judge]:has-text('刘法官')")

        # a hearing in a room someone else holds then: the conflict is shown
        day = dt.date.today() + dt.timedelta(days=1)
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
        at = f"{day.isoformat()}T10:00:00+08:00"
        other_case = (await clerk.accept_filing(await file_one(mp))).body["case_id"]
        await documents_served(clerk, other_case)  # made after the commit
        assert (await clerk.assign_case(other_case, judge_id, clerk_id)).status == 200
        taken = await clerk.schedule_hearing(other_case, at, "第三法庭")
        if taken.status == 201:
            await page.click("[data-test=schedule]")
            await page.locator("[data-test=hearing-at] input").fill(f"{day.isoformat()} 10:00")
            await page.keyboard.press("Enter")
            await page.fill("[data-test=hearing-room]", "第三法庭")
            await page.click("[data-test=submit-hearing]")
            await page.wait_for_selector("[data-test=dialog-error]:has-text('已有安排')")
            await court.shot(page, "hearing-room-conflict")
            await page.fill("[data-test=hearing-room]", "第五法庭")
            await page.click("[data-test=submit-hearing]")
            await page.get_by_role("tab", name="庭审 (1)").click()
            await page.wait_for_selector("[data-test=hearings] .el-table__row:has-text('第五法庭')")
        else:  # tomorrow is a holiday: the court calendar refuses; the UI shows that too
            assert taken.status == 422, taken.body

        # serve a PDF: uploaded, then served electronically to the consenting plaintiff
        await page.click("[data-test=serve]")
        await page.set_input_files(
            "[data-test=serve-file]",
            files=[
                {"name": "举证通知书.pdf", "mimeType": "application/pdf", "buffer": PDF + b"notice"}
            ],
        )
        # besides those generated at acceptance and a 传票 to each party for the hearing
        before = len((await clerk.get(f"/api/v1/cases/{case_id}")).body["documents"])
        await page.click("[data-test=submit-serve]")
        await page.get_by_role("tab", name=f"送达 ({before + 1})").click()
        await court.shot(page, "case-documents")
        docs = (await mp.documents(case_id)).body["items"]
        served = [d for d in docs if d["title"] == "传票"]
        assert served, docs
        await page.get_by_role("tab", name="诉讼费").click()
        await page.wait_for_selector("[data-test=fees]")
        await court.shot(page, "case-fees")

    court.run(journey(), timeout=90)
