// Work orders (联系法官): a judge's or clerk's own, or for supervisors the court's board with
// overdue state, escalation level, assignee and category. Refreshed by the live feed.

import { get, query } from '../api.js';
import { onFeed } from '../feed.js';
import { go } from '../router.js';
import { isSupervisor } from '../store.js';
import { fmtTime, usePages, WO_CATEGORIES, WO_STATUS } from '../util.js';
import { colleagues } from './colleagues.js';

const { ref, reactive, onMounted, onUnmounted } = Vue;

export default {
  setup() {
    const board = isSupervisor();
    const filters = reactive({ status: '', category: '', assignee_id: '', overdue: false });
    const staff = ref([]);
    const pages = usePages((cursor) => get(`/workorders${query({
      limit: 20, cursor, status: filters.status,
      category: filters.category, assignee_id: filters.assignee_id,
      overdue: filters.overdue ? 'true' : '',
    })}`));
    const { load } = pages;
    const off = onFeed((msg) => {
      if (msg.type === 'ready' || msg.notification.kind.startsWith('workorder')) load();
    });
    onMounted(async () => {
      load();
      if (board) {
        try {
          staff.value = await colleagues();
        } catch {
          staff.value = [];
        }
      }
    });
    onUnmounted(off);
    const rowClass = ({ row }) => (row.overdue ? 'overdue' : '');
    return {
      ...pages, board, filters, staff, go, rowClass, fmtTime, WO_CATEGORIES, WO_STATUS,
    };
  },
  template: `
    <section class="page">
      <div class="page-head">
        <h2>{{ board ? '工单看板' : '我的工单' }} <small>{{ board ? '本院全部联系法官工单' : '分派给我或我承办案件的工单' }}</small></h2>
        <el-button @click="load" :loading="loading">刷新</el-button>
      </div>
      <form class="filters" @submit.prevent="search">
        <el-select v-model="filters.status" placeholder="全部状态" clearable aria-label="状态">
          <el-option v-for="(name, key) in WO_STATUS" :key="key" :label="name" :value="key" />
        </el-select>
        <el-select v-model="filters.category" placeholder="全部类别" clearable aria-label="类别">
          <el-option v-for="c in WO_CATEGORIES" :key="c" :label="c" :value="c" />
        </el-select>
        <el-select v-if="board" v-model="filters.assignee_id" placeholder="全部承办人" clearable aria-label="承办人">
          <el-option v-for="s in staff" :key="s.id" :label="s.name" :value="s.id" />
        </el-select>
        <el-checkbox v-model="filters.overdue">仅看超期</el-checkbox>
        <el-button type="primary" native-type="submit">查询</el-button>
      </form>
      <el-alert v-if="error" :title="error" type="error" :closable="false" />
      <el-table :data="items" v-loading="loading" stripe :row-class-name="rowClass" empty-text="暂无工单" data-test="orders">
        <el-table-column label="工单号" width="200">
          <template #default="{ row }"><a :href="'#/workorders/' + row.id" class="link" :data-test="'order-' + row.id">{{ row.no }}</a></template>
        </el-table-column>
        <el-table-column prop="category" label="类别" width="90" />
        <el-table-column prop="excerpt" label="内容" min-width="200" show-overflow-tooltip />
        <el-table-column label="案号" width="190"><template #default="{ row }">{{ row.case_no || '（无关联案件）' }}</template></el-table-column>
        <el-table-column label="承办人" width="90"><template #default="{ row }">{{ row.assignee ? row.assignee.name : '待分派' }}</template></el-table-column>
        <el-table-column label="状态" width="90"><template #default="{ row }"><el-tag size="small" disable-transitions :type="row.status === 'closed' ? 'info' : (row.replied ? 'success' : 'warning')">{{ row.status_name }}</el-tag></template></el-table-column>
        <el-table-column label="答复期限" width="150"><template #default="{ row }">{{ fmtTime(row.first_reply_due_at) }}</template></el-table-column>
        <el-table-column label="超期 / 督办" width="120"><template #default="{ row }">
          <el-tag v-if="row.overdue" type="danger" size="small" effect="dark">已超期</el-tag>
          <el-tag v-if="row.escalation_level" type="danger" size="small">{{ row.escalation_level === 1 ? '督办' : '庭长督办' }}</el-tag>
          <span v-if="!row.overdue && !row.escalation_level" class="muted">正常</span>
        </template></el-table-column>
      </el-table>
      <div class="pager">
        <el-button :disabled="cursors.length < 2" @click="prevPage">上一页</el-button>
        <span class="muted">第 {{ cursors.length }} 页</span>
        <el-button :disabled="!next" @click="nextPage">下一页</el-button>
      </div>
    </section>`,
};
