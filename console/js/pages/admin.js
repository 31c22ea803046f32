// Administration: staff accounts (create with flags, list), the lawyer-verification queue,
// and the system administrator's reconciliation of a day with WeChat Pay (对账).

import { api, get, query } from '../api.js';
import { store, courtName } from '../store.js';
import {
  fieldErrors, fmtTime, courtDay, addDays, usePages, yuan, ROLE_NAMES, PAYMENT_STATUS, REFUND_STATUS,
} from '../util.js';

// WeChat Pay's trade and refund states, as a person reads them
const WECHAT_STATES = {
  SUCCESS: '支付成功', REFUND: '转入退款', NOTPAY: '未支付', CLOSED: '已关闭', REVOKED: '已撤销',
  USERPAYING: '用户支付中', PAYERROR: '支付失败', PROCESSING: '退款处理中', ABNORMAL: '退款异常',
};
const stateName = (table, v) => (v ? `${table[v] || v}` : '—');

const { ref, reactive, onMounted } = Vue;

export const StaffAdmin = {
  setup() {
    const system = !store.user.court_id;
    const roleFilter = ref('');
    const pages = usePages(
      (cursor) => get(`/admin/staff${query({ limit: 20, cursor, role: roleFilter.value })}`),
      { onError: (e) => ElementPlus.ElMessage.error(e.message) },
    );
    const open = ref(false);
    const form = reactive({
      username: '', password: '', name: '', role: 'clerk', court_id: store.user.court_id || '',
      supervisor: false, division_head: false, service_desk: false, team_phone: '',
    });
    const errors = ref({});
    const failure = ref('');
    const busy = ref(false);
    async function create() {
      errors.value = {};
      failure.value = '';
      busy.value = true;
      try {
        const user = await api('POST', '/admin/staff', { ...form, team_phone: form.team_phone || null });
        open.value = false;
        ElementPlus.ElMessage.success(`已创建账号 ${user.username}`);
        Object.assign(form, {
          username: '', password: '', name: '', supervisor: false, division_head: false, service_desk: false, team_phone: '',
        });
        await pages.search();
      } catch (e) {
        errors.value = fieldErrors(e);
        if (e.code === 'username_taken' || e.status === 409) errors.value.username = e.message;
        failure.value = e.message;
      } finally {
        busy.value = false;
      }
    }
    // one account changed: name, flags, team number, a new password, 停用/启用
    const editing = ref(null);
    const edit = reactive({ name: '', supervisor: false, division_head: false, service_desk: false, team_phone: '', password: '' });
    const editErrors = ref({});
    const editFailure = ref('');
    function startEdit(row) {
      editing.value = row;
      editErrors.value = {};
      editFailure.value = '';
      Object.assign(edit, {
        name: row.name || '', supervisor: row.supervisor, division_head: row.division_head,
        service_desk: row.service_desk, team_phone: row.team_phone || '', password: '',
      });
    }
    async function patch(row, body, done) {
      try {
        await api('PATCH', `/admin/staff/${row.id}`, body);
        ElementPlus.ElMessage.success(done);
        await pages.search();
        return true;
      } catch (e) {
        editErrors.value = fieldErrors(e);
        editFailure.value = e.message;
        if (!editing.value) ElementPlus.ElMessage.error(e.message);
        return false;
      }
    }
    async function saveEdit() {
      const row = editing.value;
      const body = {
        name: edit.name, supervisor: edit.supervisor, division_head: edit.division_head,
        service_desk: edit.service_desk, team_phone: edit.team_phone || null,
      };
      if (edit.password) body.password = edit.password;
      busy.value = true;
      try {
        if (await patch(row, body, edit.password ? '已保存，原有登录已全部退出' : '已保存')) editing.value = null;
      } finally {
        busy.value = false;
      }
    }
    async function toggle(row) {
      const disabling = row.active;
      if (disabling) {
        try {
          await ElementPlus.ElMessageBox.confirm(
            `停用后 ${row.name || row.username} 将立即退出登录且无法再登录，已分配的案件和工单需另行改派。`,
            '停用账号', { confirmButtonText: '停用', cancelButtonText: '取消', type: 'warning' },
          );
        } catch {
          return;
        }
      }
      await patch(row, { active: !disabling }, disabling ? '账号已停用' : '账号已启用');
    }
    onMounted(pages.load);
    return {
      ...pages, system, open, form, errors, failure, busy, roleFilter, create, fmtTime,
      courtName, ROLE_NAMES, store, editing, edit, editErrors, editFailure, startEdit, saveEdit, toggle,
    };
  },
  template: `
    <section class="page">
      <div class="page-head">
        <h2>人员管理 <small>{{ system ? '全部法院' : courtName(store.user.court_id) }}的工作人员账号</small></h2>
        <el-button type="primary" @click="open = true" data-test="new-staff">新建账号</el-button>
      </div>
      <div class="filters">
        <el-select v-model="roleFilter" placeholder="全部角色" clearable @change="search" aria-label="角色">
          <el-option v-for="r in ['clerk', 'judge', 'admin']" :key="r" :label="ROLE_NAMES[r]" :value="r" />
        </el-select>
      </div>
      <el-table :data="items" v-loading="loading" stripe data-test="staff">
        <el-table-column prop="username" label="用户名" />
        <el-table-column prop="name" label="姓名" />
        <el-table-column label="角色"><template #default="{ row }">{{ ROLE_NAMES[row.role] }}</template></el-table-column>
        <el-table-column label="法院" min-width="160"><template #default="{ row }">{{ courtName(row.court_id) }}</template></el-table-column>
        <el-table-column label="职责标记"><template #default="{ row }">
          <el-tag v-if="row.supervisor" size="small" type="warning">督办</el-tag>
          <el-tag v-if="row.division_head" size="small" type="danger">庭长</el-tag>
          <el-tag v-if="row.service_desk" size="small">服务台</el-tag>
          <span v-if="row.team_phone" class="muted"> 团队号码 {{ row.team_phone }}</span>
        </template></el-table-column>
        <el-table-column label="状态" width="80"><template #default="{ row }">
          <el-tag size="small" :type="row.active ? 'success' : 'info'" :data-test="'state-' + row.username">{{ row.active ? '在用' : '已停用' }}</el-tag>
        </template></el-table-column>
        <el-table-column label="创建时间" width="150"><template #default="{ row }">{{ fmtTime(row.created_at) }}</template></el-table-column>
        <el-table-column label="操作" width="150"><template #default="{ row }">
          <el-button link type="primary" @click="startEdit(row)" :data-test="'edit-' + row.username">修改</el-button>
          <el-button v-if="row.id !== store.user.id" link :type="row.active ? 'danger' : 'success'" @click="toggle(row)" :data-test="'toggle-' + row.username">{{ row.active ? '停用' : '启用' }}</el-button>
        </template></el-table-column>
      </el-table>
      <div class="pager">
        <el-button :disabled="cursors.length < 2" @click="prevPage">上一页</el-button>
        <span class="muted">第 {{ cursors.length }} 页</span>
        <el-button :disabled="!next" @click="nextPage">下一页</el-button>
      </div>
      <el-dialog v-model="open" title="新建工作人员账号" width="480px">
        <el-alert v-if="failure" :title="failure" type="error" :closable="false" class="flash" data-test="staff-error" />
        <el-form label-position="top" @submit.prevent="create">
          <el-form-item label="用户名（小写字母开头，3–32 位）" :error="errors.username"><el-input v-model="form.username" data-test="f-username" /></el-form-item>
          <el-form-item label="初始密码（至少 10 位）" :error="errors.password"><el-input v-model="form.password" type="password" show-password data-test="f-password" /></el-form-item>
          <el-form-item label="姓名" :error="errors.name"><el-input v-model="form.name" data-test="f-name" /></el-form-item>
          <el-form-item label="角色" :error="errors.role">
            <el-radio-group v-model="form.role">
              <el-radio value="clerk">书记员/立案员</el-radio><el-radio value="judge">法官</el-radio><el-radio value="admin">管理员</el-radio>
            </el-radio-group>
          </el-form-item>
          <el-form-item v-if="system" label="所属法院" :error="errors.court_id">
            <el-select v-model="form.court_id" placeholder="选择法院">
              <el-option v-for="c in store.courts" :key="c.id" :label="c.name" :value="c.id" />
            </el-select>
          </el-form-item>
          <el-form-item label="职责">
            <el-checkbox v-model="form.supervisor">督办（工单超期提醒、看板、改派）</el-checkbox>
            <el-checkbox v-model="form.division_head">庭长（二级督办）</el-checkbox>
            <el-checkbox v-model="form.service_desk">服务台（12368 等渠道代登记工单）</el-checkbox>
          </el-form-item>
          <el-form-item v-if="form.role === 'judge'" label="团队号码（N号码，可不填）" :error="errors.team_phone"><el-input v-model="form.team_phone" data-test="f-team-phone" /></el-form-item>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="create-staff">创建</el-button>
        </el-form>
      </el-dialog>
      <el-dialog :model-value="Boolean(editing)" @update:model-value="(v) => { if (!v) editing = null; }" :title="editing ? '修改账号 ' + editing.username : ''" width="480px">
        <el-alert v-if="editFailure" :title="editFailure" type="error" :closable="false" class="flash" data-test="edit-error" />
        <el-form label-position="top" @submit.prevent="saveEdit">
          <el-form-item label="姓名" :error="editErrors.name"><el-input v-model="edit.name" data-test="e-name" /></el-form-item>
          <el-form-item label="职责">
            <el-checkbox v-model="edit.supervisor" data-test="e-supervisor">督办</el-checkbox>
            <el-checkbox v-model="edit.division_head" data-test="e-division-head">庭长</el-checkbox>
            <el-checkbox v-model="edit.service_desk" data-test="e-service-desk">服务台</el-checkbox>
          </el-form-item>
          <el-form-item v-if="editing && editing.role === 'judge'" label="团队号码（N号码，清空即删除）" :error="editErrors.team_phone"><el-input v-model="edit.team_phone" data-test="e-team-phone" /></el-form-item>
          <el-form-item label="重置密码（不改请留空；重置后该账号所有登录立即退出）" :error="editErrors.password"><el-input v-model="edit.password" type="password" show-password autocomplete="new-password" data-test="e-password" /></el-form-item>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="save-staff">保存</el-button>
        </el-form>
      </el-dialog>
    </section>`,
};

export const LawyerQueue = {
  setup() {
    const items = ref([]);
    const loading = ref(false);
    const status = ref('pending');
    const next = ref(null);
    async function load(more = false) {
      loading.value = true;
      try {
        const page = await get(`/admin/lawyers${query({ status: status.value, limit: 20, cursor: more ? next.value : null })}`);
        items.value = more ? [...items.value, ...page.items] : page.items;
        next.value = page.next_cursor;
      } catch (e) {
        ElementPlus.ElMessage.error(e.message);
      } finally {
        loading.value = false;
      }
    }
    async function decide(user, approved) {
      let reason;
      if (!approved) {
        try {
          reason = (await ElementPlus.ElMessageBox.prompt('请填写不予通过的理由', '律师认证', {
            confirmButtonText: '确定', cancelButtonText: '取消', inputValidator: (v) => Boolean(v && v.trim()) || '请填写理由',
          })).value;
        } catch {
          return;
        }
      }
      try {
        await api('POST', `/admin/lawyers/${user.id}/verify`, { approved, reason });
        ElementPlus.ElMessage.success(approved ? '已通过认证' : '已驳回');
        await load();
      } catch (e) {
        ElementPlus.ElMessage.error(e.message);
      }
    }
    onMounted(load);
    return { items, loading, status, next, load, decide, fmtTime };
  },
  template: `
    <section class="page">
      <div class="page-head"><h2>律师认证审核</h2>
        <el-radio-group v-model="status" @change="load()">
          <el-radio-button value="pending">待审核</el-radio-button>
          <el-radio-button value="verified">已通过</el-radio-button>
          <el-radio-button value="rejected">已驳回</el-radio-button>
        </el-radio-group>
      </div>
      <el-table :data="items" v-loading="loading" stripe empty-text="暂无申请">
        <el-table-column label="姓名"><template #default="{ row }">{{ row.identity ? row.identity.name : row.name }}</template></el-table-column>
        <el-table-column label="身份证号"><template #default="{ row }">{{ row.identity ? row.identity.id_number_masked : '—' }}</template></el-table-column>
        <el-table-column label="执业证号"><template #default="{ row }">{{ row.lawyer.license_no }}</template></el-table-column>
        <el-table-column label="律师事务所" min-width="160"><template #default="{ row }">{{ row.lawyer.firm }}</template></el-table-column>
        <el-table-column label="操作" width="170"><template #default="{ row }">
          <template v-if="row.lawyer.status === 'pending'">
            <el-button size="small" type="primary" @click="decide(row, true)">通过</el-button>
            <el-button size="small" @click="decide(row, false)">驳回</el-button>
          </template>
          <span v-else class="muted">{{ row.lawyer.reason || '—' }}</span>
        </template></el-table-column>
      </el-table>
      <el-button v-if="next" text @click="load(true)">加载更多</el-button>
    </section>`,
};

export const Reconcile = {
  setup() {
    const form = reactive({ date: addDays(courtDay(), -1), mend: true });
    const report = ref(null);
    const error = ref('');
    const busy = ref(false);
    async function run() {
      busy.value = true;
      error.value = '';
      try {
        report.value = await api('POST', '/admin/reconcile', { date: form.date, mend: form.mend });
      } catch (e) {
        report.value = null;
        error.value = e.message;
      } finally {
        busy.value = false;
      }
    }
    const theirs = (v) => stateName(WECHAT_STATES, v);
    const ours = (v) => stateName({ ...REFUND_STATUS, ...PAYMENT_STATUS }, v);
    return { form, report, error, busy, run, yuan, theirs, ours };
  },
  template: `
    <section class="page">
      <div class="page-head"><h2>支付对账 <small>微信支付账单与本系统记录逐笔核对</small></h2></div>
      <form class="filters" @submit.prevent="run">
        <el-date-picker v-model="form.date" type="date" value-format="YYYY-MM-DD" :clearable="false" aria-label="对账日期" placeholder="对账日期" />
        <el-checkbox v-model="form.mend">自动补记微信已收、本系统未记的款项</el-checkbox>
        <el-button type="primary" native-type="submit" :loading="busy" data-test="reconcile">开始对账</el-button>
      </form>
      <p class="muted">微信支付在次日 10:00 后生成前一日账单。</p>
      <el-alert v-if="error" :title="error" type="error" :closable="false" class="flash" />
      <template v-if="report">
        <el-result :icon="report.only_wechat.length || report.only_ours.length ? 'warning' : 'success'"
          :title="report.only_wechat.length || report.only_ours.length ? '发现差异' : '账实相符'"
          :sub-title="report.day + '：微信账单 ' + report.wechat_paid + ' 笔，本系统 ' + report.ours_paid + ' 笔'" />
        <h3>微信有、本系统无（{{ report.only_wechat.length }}）</h3>
        <el-table :data="report.only_wechat" size="small" border empty-text="无" data-test="only-wechat">
          <el-table-column prop="out_trade_no" label="商户订单号" min-width="180" />
          <el-table-column prop="out_refund_no" label="退款单号" />
          <el-table-column label="金额"><template #default="{ row }">{{ yuan(row.amount_fen) }}</template></el-table-column>
          <el-table-column label="微信状态"><template #default="{ row }">{{ theirs(row.theirs) }}</template></el-table-column>
          <el-table-column label="本系统（对账时）"><template #default="{ row }">{{ ours(row.ours) }}</template></el-table-column>
          <el-table-column label="处理"><template #default="{ row }">{{ row.action === 'mended' ? '已补记' : '待核查' }} {{ row.note }}</template></el-table-column>
        </el-table>
        <h3>本系统有、微信无（{{ report.only_ours.length }}）</h3>
        <el-table :data="report.only_ours" size="small" border empty-text="无" data-test="only-ours">
          <el-table-column prop="out_trade_no" label="商户订单号" min-width="180" />
          <el-table-column label="金额"><template #default="{ row }">{{ yuan(row.amount_fen) }}</template></el-table-column>
          <el-table-column label="本系统"><template #default="{ row }">{{ ours(row.ours) }}</template></el-table-column>
          <el-table-column label="微信当前状态"><template #default="{ row }">{{ theirs(row.theirs) }}</template></el-table-column>
          <el-table-column label="说明"><template #default="{ row }">{{ row.note || '请人工核查' }}</template></el-table-column>
        </el-table>
      </template>
    </section>`,
};
