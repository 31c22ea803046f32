// My court's cases (a judge: filtered to their own by default), newest activity first,
// cursor-paged, filtered by status, judge and acceptance dates.

import { get, query } from '../api.js';
import { go } from '../router.js';
import { store } from '../store.js';
import { fmtTime, fmtDate, usePages, CASE_STATUS, PROCEDURE_NAMES } from '../util.js';
import { colleagues } from './colleagues.js';

const { ref, reactive, onMounted } = Vue;

export default {
  setup() {
    const filters = reactive({
      status: '',
      judge_id: store.user.role === 'judge' ? store.user.id : '',
      dates: null,
    });
    const judges = ref([]);
    const pages = usePages((cursor) => {
      const [from, to] = filters.dates || [];
      return get(`/cases${query({
        limit: 20, cursor, status: filters.status,
        judge_id: filters.judge_id, accepted_from: from, accepted_to: to,
      })}`);
    });
    const { load } = pages;
    onMounted(async () => {
      load();
      try {
        judges.value = await colleagues('judge');
      } catch {
        judges.value = [];
      }
    });
    return {
      ...pages, filters, judges, go, fmtTime, fmtDate, CASE_STATUS, PROCEDURE_NAMES,
    };
  },
  template: `
    <section class="page">
      <div class="page-head"><h2>案件管理 <small>本院案件，按最近动态排序</small></h2></div>
      <form class="filters" @submit.prevent="search">
        <el-select v-model="filters.status" placeholder="全部状态" clearable aria-label="案件状态">
          <el-option v-for="(name, key) in CASE_STATUS" :key="key" :label="name" :value="key" />
        </el-select>
        <el-select v-model="filters.judge_id" placeholder="全部法官" clearable aria-label="承办法官">
          <el-option v-for="j in judges" :key="j.id" :label="j.name" :value="j.id" />
        </el-select>
        <el-date-picker v-model="filters.dates" type="daterange" value-format="YYYY-MM-DD"
          start-placeholder="立案日期起" end-placeholder="立案日期止" />
        <el-button type="primary" native-type="submit">查询</el-button>
      </form>
      <el-alert v-if="error" :title="error" type="error" :closable="false" />
      <el-table :data="items" v-loading="loading" stripe empty-text="暂无案件" data-test="cases">
        <el-table-column label="案号" min-width="190">
          <template #default="{ row }">
            <a :href="'#/cases/' + row.id" class="link">{{ row.case_no }}</a>
          </template>
        </el-table-column>
        <el-table-column prop="cause" label="案由" min-width="130" />
        <el-table-column label="当事人" min-width="180">
          <template #default="{ row }">{{ row.plaintiff_names.join('、') }} 诉 {{ row.defendant_names.join('、') }}</template>
        </el-table-column>
        <el-table-column label="程序" width="90">
          <template #default="{ row }">{{ PROCEDURE_NAMES[row.procedure] }}</template>
        </el-table-column>
        <el-table-column label="状态" width="90">
          <template #default="{ row }"><el-tag size="small" disable-transitions>{{ row.status_name }}</el-tag></template>
        </el-table-column>
        <el-table-column label="立案日期" width="110">
          <template #default="{ row }">{{ fmtDate(row.accepted_at) }}</template>
        </el-table-column>
        <el-table-column label="最近动态" width="150">
          <template #default="{ row }">{{ fmtTime(row.last_activity_at) }}</template>
        </el-table-column>
      </el-table>
      <div class="pager">
        <el-button :disabled="cursors.length < 2" @click="prevPage">上一页</el-button>
        <span class="muted">第 {{ cursors.length }} 页</span>
        <el-button :disabled="!next" @click="nextPage">下一页</el-button>
      </div>
    </section>`,
};
