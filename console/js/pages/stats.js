// Work-order statistics over a date range (GET /workorders/stats): received and answered,
// on-time rate, time to first answer, by assignee, category or court; charts by ECharts
// (loaded only on this page) and a CSV export made in the browser from the same numbers.

import { get, query } from '../api.js';
import { isSupervisor } from '../store.js';
import { courtDay, addDays, duration, percent } from '../util.js';

const { ref, reactive, onMounted, onUnmounted, nextTick } = Vue;
const GROUPS = { assignee: '按承办人', category: '按类别', court: '按法院' };

let echartsLoading = null;
function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  if (!echartsLoading) {
    echartsLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = document.querySelector('meta[name="echarts-src"]').content;
      s.onload = () => resolve(window.echarts);
      s.onerror = () => reject(new Error('图表组件加载失败'));
      document.head.appendChild(s);
    });
  }
  return echartsLoading;
}

function csvCell(v) {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export default {
  setup() {
    const today = courtDay();
    const form = reactive({ range: [addDays(today, -29), today], group_by: 'assignee' });
    const stats = ref(null);
    const error = ref('');
    const loading = ref(false);
    const volumeEl = ref(null);
    const speedEl = ref(null);
    const charts = [];

    function draw() {
      const rows = stats.value.rows;
      const names = rows.map((r) => r.name || r.key || '未分派');
      const base = {
        animation: false, // drawn at once: the numbers matter, not the motion
        textStyle: { fontFamily: 'Noto Sans CJK SC, sans-serif' },
        grid: { left: 50, right: 60, top: 64, bottom: 40 },
      };
      charts[0].setOption({
        ...base,
        title: { text: '收件与答复', left: 'left', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        legend: { data: ['收到', '已答复', '按时答复率'], top: 26, left: 'center' },
        xAxis: { type: 'category', data: names },
        yAxis: [{ type: 'value', name: '件', minInterval: 1 }, { type: 'value', name: '按时率', max: 100, axisLabel: { formatter: '{value}%' } }],
        series: [
          { name: '收到', type: 'bar', data: rows.map((r) => r.received), itemStyle: { color: '#2457a5' } },
          { name: '已答复', type: 'bar', data: rows.map((r) => r.replied), itemStyle: { color: '#3fa66b' } },
          { name: '按时答复率', type: 'line', yAxisIndex: 1, data: rows.map((r) => (r.on_time_rate === null ? null : Math.round(r.on_time_rate * 1000) / 10)), itemStyle: { color: '#b8272c' } },
        ],
      }, true);
      charts[1].setOption({
        ...base,
        title: { text: '首次答复用时（小时）', left: 'left', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        legend: { data: ['中位数', '90% 分位'], top: 26, left: 'center' },
        xAxis: { type: 'category', data: names },
        yAxis: { type: 'value', name: '小时' },
        series: [
          { name: '中位数', type: 'bar', data: rows.map((r) => (r.median_first_reply_seconds === null ? null : +(r.median_first_reply_seconds / 3600).toFixed(2))), itemStyle: { color: '#5b8bd6' } },
          { name: '90% 分位', type: 'bar', data: rows.map((r) => (r.p90_first_reply_seconds === null ? null : +(r.p90_first_reply_seconds / 3600).toFixed(2))), itemStyle: { color: '#f0a020' } },
        ],
      }, true);
    }
    async function load() {
      loading.value = true;
      error.value = '';
      try {
        const [from, to] = form.range || [];
        const [data, echarts] = await Promise.all([
          get(`/workorders/stats${query({ from, to, group_by: form.group_by })}`),
          loadECharts(),
        ]);
        stats.value = data;
        await nextTick();
        if (!charts.length) {
          charts.push(echarts.init(volumeEl.value), echarts.init(speedEl.value));
          window.__consoleCharts = charts;
        }
        draw();
      } catch (e) {
        error.value = e.message;
      } finally {
        loading.value = false;
      }
    }
    function exportCsv() {
      const head = ['分组', '收到', '已答复', '已办结', '答复率', '应答复', '按时答复', '按时答复率',
        '首次答复用时中位数(秒)', '首次答复用时P90(秒)', '当前超期', '已评价', '平均评分'];
      const line = (r, name) => [name, r.received, r.replied, r.closed, r.reply_rate, r.due, r.on_time,
        r.on_time_rate, r.median_first_reply_seconds, r.p90_first_reply_seconds, r.overdue_now,
        r.rated, r.average_rating];
      const rows = [head, ...stats.value.rows.map((r) => line(r, r.name || r.key || '未分派')), line(stats.value.total, '合计')];
      const text = '\ufeff' + rows.map((r) => r.map(csvCell).join(',')).join('\r\n');
      const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = `工单统计_${stats.value.date_from}_${stats.value.date_to}.csv`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    }
    const resize = () => charts.forEach((c) => c.resize());
    onMounted(() => {
      window.addEventListener('resize', resize);
      load();
    });
    onUnmounted(() => {
      window.removeEventListener('resize', resize);
      charts.forEach((c) => c.dispose());
      window.__consoleCharts = [];
    });
    return {
      form, stats, error, loading, volumeEl, speedEl, load, exportCsv, duration, percent,
      GROUPS, supervisor: isSupervisor(),
    };
  },
  template: `
    <section class="page">
      <div class="page-head">
        <h2>工单统计 <small>{{ supervisor ? '本院' : '本人' }}联系法官工单</small></h2>
        <el-button :disabled="!stats" @click="exportCsv" data-test="csv">导出 CSV</el-button>
      </div>
      <form class="filters" @submit.prevent="load">
        <el-date-picker v-model="form.range" type="daterange" value-format="YYYY-MM-DD"
          start-placeholder="开始日期" end-placeholder="结束日期" :clearable="false" />
        <el-radio-group v-model="form.group_by">
          <el-radio-button v-for="(name, key) in GROUPS" :key="key" :value="key">{{ name }}</el-radio-button>
        </el-radio-group>
        <el-button type="primary" native-type="submit" :loading="loading">统计</el-button>
      </form>
      <el-alert v-if="error" :title="error" type="error" :closable="false" class="flash" />
      <div v-if="stats" class="kpis" data-test="kpis">
        <div class="kpi"><div class="v">{{ stats.total.received }}</div><div class="k">收到工单</div></div>
        <div class="kpi"><div class="v">{{ stats.total.replied }}</div><div class="k">已答复（{{ percent(stats.total.reply_rate) }}）</div></div>
        <div class="kpi"><div class="v">{{ percent(stats.total.on_time_rate) }}</div><div class="k">按时答复率</div></div>
        <div class="kpi"><div class="v">{{ duration(stats.total.median_first_reply_seconds) }}</div><div class="k">首次答复用时中位数</div></div>
        <div class="kpi"><div class="v">{{ stats.total.overdue_now }}</div><div class="k">当前超期</div></div>
        <div class="kpi"><div class="v">{{ stats.total.average_rating === null ? '—' : stats.total.average_rating.toFixed(1) }}</div><div class="k">平均评分</div></div>
      </div>
      <div class="cols2" v-loading="loading">
        <div ref="volumeEl" class="chart" data-test="chart-volume" role="img" aria-label="收件与答复图表"></div>
        <div ref="speedEl" class="chart" data-test="chart-speed" role="img" aria-label="首次答复用时图表"></div>
      </div>
      <el-table v-if="stats" :data="stats.rows" size="small" border>
        <el-table-column label="分组" min-width="120"><template #default="{ row }">{{ row.name || row.key || '未分派' }}</template></el-table-column>
        <el-table-column prop="received" label="收到" />
        <el-table-column prop="replied" label="已答复" />
        <el-table-column prop="closed" label="已办结" />
        <el-table-column label="按时答复率"><template #default="{ row }">{{ percent(row.on_time_rate) }}</template></el-table-column>
        <el-table-column label="答复用时中位数"><template #default="{ row }">{{ duration(row.median_first_reply_seconds) }}</template></el-table-column>
        <el-table-column label="P90"><template #default="{ row }">{{ duration(row.p90_first_reply_seconds) }}</template></el-table-column>
        <el-table-column prop="overdue_now" label="当前超期" />
      </el-table>
    </section>`,
};
