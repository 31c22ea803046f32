// The review queue (立案审查): green channel first, then the nearest deadline, one page at a
// time by cursor. Refreshed when the live feed brings a filing notice, and after each
// (re)connection (a notice missed while offline is caught up).

import { get, query } from '../api.js';
import { onFeed } from '../feed.js';
import { go } from '../router.js';
import { fmtTime, fmtDate, usePages, GREEN_NAMES } from '../util.js';

const { ref, onMounted, onUnmounted } = Vue;
const PAGE = 20;

export default {
  setup() {
    const fresh = ref(new Set());
    let known = null; // the ids of the page last read: what a reload brings anew is marked
    const pages = usePages((cursor) => get(`/review/filings${query({ limit: PAGE, cursor })}`), {
      onPage(page) {
        if (known) fresh.value = new Set(page.items.map((i) => i.id).filter((id) => !known.has(id)));
        known = new Set(page.items.map((i) => i.id));
        if (!performance.getEntriesByName('queue-rendered').length) {
          Vue.nextTick(() => performance.mark('queue-rendered'));
        }
      },
    });
    const { load } = pages;
    const turn = (to) => () => {
      known = null;
      return to();
    };
    const off = onFeed((msg) => {
      if (msg.type === 'ready') load();
      else if (msg.notification.kind.startsWith('filing_')) load();
    });
    onMounted(load);
    onUnmounted(off);
    const rowClass = ({ row }) => [fresh.value.has(row.id) ? 'fresh' : '', row.overdue ? 'overdue' : ''].join(' ');
    return {
      ...pages, nextPage: turn(pages.nextPage), prevPage: turn(pages.prevPage), rowClass, go,
      fmtTime, fmtDate, GREEN_NAMES,
    };
  },
  template: `
    <section class="page">
      <div class="page-head">
        <h2>立案审查 <small>待审查的网上立案申请</small></h2>
        <el-button @click="load" :loading="loading">刷新</el-button>
      </div>
      <el-alert v-if="error" :title="error" type="error" show-icon :closable="false" />
      <el-table :data="items" v-loading="loading" :row-class-name="rowClass" data-test="queue"
        empty-text="暂无待审查的申请" stripe>
        <el-table-column label="优先" width="150">
          <template #default="{ row }">
            <el-tag v-for="g in row.green_channel" :key="g" type="success" size="small" effect="dark"
              class="tag">绿色通道·{{ GREEN_NAMES[g] || g }}</el-tag>
            <span v-if="!row.green_channel.length" class="muted">常规</span>
          </template>
        </el-table-column>
        <el-table-column prop="cause" label="案由" min-width="140" />
        <el-table-column label="原告" min-width="110">
          <template #default="{ row }">{{ row.plaintiff_names.join('、') }}</template>
        </el-table-column>
        <el-table-column label="被告" min-width="110">
          <template #default="{ row }">{{ row.defendant_names.join('、') }}</template>
        </el-table-column>
        <el-table-column label="提交时间" width="160">
          <template #default="{ row }">{{ fmtTime(row.submitted_at) }}</template>
        </el-table-column>
        <el-table-column label="审查期限" width="170">
          <template #default="{ row }">
            <div>{{ fmtDate(row.review_deadline) }}</div>
            <el-tag v-if="row.overdue" type="danger" size="small" effect="dark">已超期</el-tag>
            <span v-else :class="{ warn: row.working_days_left <= 1 }">剩 {{ row.working_days_left }} 个工作日</span>
          </template>
        </el-table-column>
        <el-table-column label="操作" width="100" fixed="right">
          <template #default="{ row }">
            <el-button type="primary" size="small" @click="go('/review/' + row.id)"
              :data-test="'open-' + row.id">审查</el-button>
          </template>
        </el-table-column>
      </el-table>
      <div class="pager">
        <el-button :disabled="cursors.length < 2" @click="prevPage">上一页</el-button>
        <span class="muted">第 {{ cursors.length }} 页</span>
        <el-button :disabled="!next" @click="nextPage" data-test="next-page">下一页</el-button>
      </div>
    </section>`,
};
