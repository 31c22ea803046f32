// One filing under review: parties (ID numbers masked by the API), claims, facts, template
// elements, evidence in the page, the fee estimate and any fee-relief request; and the
// decision: accept, one complete correction list, or rejection.

import { api, get, query } from '../api.js';
import { onFeed } from '../feed.js';
import { go, route } from '../router.js';
import {
  fieldErrors, fmtTime, fmtDate, yuan, toFen, FEE_KIND_NAMES, RELIEF_NAMES, FILING_STATUS,
  GREEN_NAMES, PROCEDURE_NAMES,
} from '../util.js';
import Evidence from './evidence.js';

const { ref, reactive, computed, watch, onMounted, onUnmounted } = Vue;

const PARTY_GROUPS = [
  ['plaintiffs', '原告'], ['defendants', '被告'], ['third_parties', '第三人'],
];

export default {
  components: { Evidence },
  setup() {
    const id = computed(() => route.params.id);
    const filing = ref(null);
    const template = ref(null);
    const loadError = ref('');
    const tab = ref('accept');
    const accept = reactive({ procedure: 'ordinary', fee_kind: '', grant: '', amount: '', due_date: '', reason: '' });
    const correction = reactive({ items: [''], due_days: 15 });
    const reject = reactive({ reason: '' });
    const errors = ref({});
    const failure = ref('');
    const busy = ref(false);
    const accepted = ref(null);
    const estimate = ref(null);
    const estimateError = ref('');

    const parties = computed(() => {
      if (!filing.value) return [];
      return PARTY_GROUPS.flatMap(([key, label]) =>
        filing.value[key].map((p) => ({ ...p, group: label })));
    });
    const elements = computed(() => {
      if (!filing.value) return [];
      const defs = template.value ? template.value.elements : [];
      return Object.entries(filing.value.elements || {}).map(([key, value]) => {
        const def = defs.find((d) => d.key === key);
        const shown = typeof value === 'boolean' ? (value ? '是' : '否')
          : (def && def.type === 'money' && typeof value === 'number') ? yuan(value) : value;
        return { key, label: def ? def.label : key, value: shown ?? '—' };
      });
    });
    const defaultKind = computed(() =>
      filing.value && filing.value.amount_fen ? 'property' : 'non_property');

    async function load() {
      try {
        filing.value = await get(`/filings/${id.value}`);
        loadError.value = '';
        if (filing.value.template_id && !template.value) {
          get(`/templates/${filing.value.template_id}`).then((t) => (template.value = t)).catch(() => {});
        }
      } catch (e) {
        loadError.value = e.status === 404 ? '该申请不存在或不属于本院' : e.message;
      }
    }
    async function loadEstimate() {
      if (!filing.value) return;
      try {
        estimate.value = await get(`/fees/estimate${query({
          kind: accept.fee_kind || defaultKind.value,
          amount_fen: filing.value.amount_fen,
          procedure: accept.procedure,
          court_id: filing.value.court_id,
        })}`);
        estimateError.value = '';
      } catch (e) {
        estimate.value = null;
        estimateError.value = e.message;
      }
    }
    watch([filing, () => accept.fee_kind, () => accept.procedure], loadEstimate);

    function begin() {
      errors.value = {};
      failure.value = '';
      busy.value = true;
    }
    function fail(e) {
      errors.value = fieldErrors(e);
      failure.value = e.status === 422 && Object.keys(errors.value).length
        ? `${e.message}：请按提示修改标红的项目` : e.message;
    }
    async function doAccept() {
      const body = { procedure: accept.procedure };
      if (accept.fee_kind) body.fee_kind = accept.fee_kind;
      if (filing.value.fee_relief || accept.grant) {
        const relief = { grant: accept.grant || undefined };
        if (accept.grant === 'reduce') {
          const fen = toFen(accept.amount);
          if (fen === null || Number.isNaN(fen)) {
            errors.value = { 'fee_relief.amount_fen': '请输入减交后应交的金额（元）' };
            return;
          }
          relief.amount_fen = fen;
        }
        if (accept.grant === 'defer') relief.due_date = accept.due_date || null;
        if (accept.reason) relief.reason = accept.reason;
        body.fee_relief = accept.grant ? relief : null;
      }
      begin();
      try {
        accepted.value = await api('POST', `/review/filings/${id.value}/accept`, body, { idempotent: true });
        filing.value = accepted.value.filing;
      } catch (e) {
        fail(e);
      } finally {
        busy.value = false;
      }
    }
    async function doCorrection() {
      begin();
      try {
        const items = correction.items.map((s) => s.trim()).filter(Boolean);
        filing.value = await api('POST', `/review/filings/${id.value}/request-correction`,
          { items, due_days: Number(correction.due_days) }, { idempotent: true });
        ElementPlus.ElMessage.success('补正通知已发送');
      } catch (e) {
        fail(e);
      } finally {
        busy.value = false;
      }
    }
    async function doReject() {
      begin();
      try {
        filing.value = await api('POST', `/review/filings/${id.value}/reject`,
          { reason: reject.reason }, { idempotent: true });
        ElementPlus.ElMessage.success('已作出不予受理决定');
      } catch (e) {
        fail(e);
      } finally {
        busy.value = false;
      }
    }
    const off = onFeed((msg) => {
      if (msg.type === 'ready') load();
      else if (msg.notification.data && msg.notification.data.filing_id === id.value) load();
    });
    onMounted(load);
    onUnmounted(off);
    return {
      filing, template, loadError, parties, elements, tab, accept, correction, reject, errors,
      failure, busy, accepted, estimate, estimateError, defaultKind, doAccept, doCorrection,
      doReject, go, fmtTime, fmtDate, yuan, FEE_KIND_NAMES, RELIEF_NAMES, FILING_STATUS,
      GREEN_NAMES, PROCEDURE_NAMES,
    };
  },
  template: `
    <section class="page" v-if="loadError">
      <el-result icon="warning" :title="loadError">
        <template #extra><el-button @click="go('/review')">返回审查队列</el-button></template>
      </el-result>
    </section>
    <section class="page filing" v-else-if="filing">
      <div class="page-head">
        <h2>{{ filing.cause || '立案申请' }}
          <el-tag :type="filing.status === 'submitted' ? 'warning' : 'info'" data-test="status">{{ FILING_STATUS[filing.status] }}</el-tag>
          <el-tag v-for="g in filing.green_channel" :key="g" type="success" effect="dark" class="tag">绿色通道·{{ GREEN_NAMES[g] }}</el-tag>
        </h2>
        <el-button @click="go('/review')">返回队列</el-button>
      </div>
      <el-descriptions :column="3" border size="small" class="block">
        <el-descriptions-item label="提交时间">{{ fmtTime(filing.submitted_at) }}</el-descriptions-item>
        <el-descriptions-item label="审查期限">{{ fmtDate(filing.review_deadline) }}</el-descriptions-item>
        <el-descriptions-item label="诉讼标的额">{{ yuan(filing.amount_fen) }}</el-descriptions-item>
        <el-descriptions-item label="代理立案">{{ filing.as_agent ? '律师代为立案' : '本人立案' }}</el-descriptions-item>
        <el-descriptions-item label="电子送达">{{ filing.consent_electronic_service ? '同意' : '未同意' }}</el-descriptions-item>
        <el-descriptions-item label="案号">{{ filing.case_no || '—' }}</el-descriptions-item>
      </el-descriptions>

      <el-result v-if="filing.case_no" icon="success" title="已登记立案" class="block accepted">
        <template #sub-title>
          <div>案号 <strong class="case-no" data-test="case-no">{{ filing.case_no }}</strong></div>
          <div class="muted">受理通知书、缴费通知书已送达原告</div>
        </template>
        <template #extra>
          <el-button type="primary" @click="go('/cases/' + filing.case_id)">查看案件</el-button>
          <el-button @click="go('/review')">返回队列</el-button>
        </template>
      </el-result>

      <div class="cols">
        <div class="col-main">
          <h3>当事人</h3>
          <el-table :data="parties" size="small" border class="block">
            <el-table-column prop="group" label="诉讼地位" width="80" />
            <el-table-column prop="name" label="姓名/名称" />
            <el-table-column label="证件号码" min-width="170">
              <template #default="{ row }">{{ row.id_number_masked || row.credit_code || '—' }}</template>
            </el-table-column>
            <el-table-column prop="phone" label="电话" width="120" />
            <el-table-column prop="address" label="地址" min-width="160" />
          </el-table>
          <h3>诉讼请求</h3>
          <ol class="claims block"><li v-for="c in filing.claims" :key="c">{{ c }}</li></ol>
          <h3>事实与理由</h3>
          <p class="facts block">{{ filing.facts || '—' }}</p>
          <template v-if="elements.length">
            <h3>要素式起诉状 <small v-if="template">{{ template.name }}</small></h3>
            <el-descriptions :column="2" border size="small" class="block">
              <el-descriptions-item v-for="e in elements" :key="e.key" :label="e.label">{{ e.value }}</el-descriptions-item>
            </el-descriptions>
          </template>
          <h3>证据材料</h3>
          <Evidence :files="filing.evidence" class="block" />
          <template v-if="filing.decisions.length">
            <h3>审查记录</h3>
            <el-timeline class="block">
              <el-timeline-item v-for="d in filing.decisions" :key="d.at" :timestamp="fmtTime(d.at)">
                {{ ({submitted: '提交申请', resubmitted: '补正后重新提交', accepted: '受理立案', correction_requested: '一次性补正', rejected: '不予受理', withdrawn: '撤回申请'})[d.action] || d.action }}
                <span v-if="d.reason">：{{ d.reason }}</span>
                <span v-if="d.items">：{{ d.items.join('；') }}</span>
              </el-timeline-item>
            </el-timeline>
          </template>
        </div>
        <div class="col-side">
          <el-card shadow="never" class="block">
            <template #header>诉讼费预估</template>
            <div v-if="estimate" data-test="estimate">
              <div class="fee-total">{{ yuan(estimate.fee_fen) }}</div>
              <div class="muted">{{ FEE_KIND_NAMES[estimate.kind] }} · {{ PROCEDURE_NAMES[estimate.procedure] }}</div>
              <ul class="fee-lines">
                <li v-for="l in estimate.lines" :key="l.label">{{ l.label }}（{{ l.rate }}）</li>
                <li v-for="s in estimate.steps" :key="s.label">{{ s.label }}</li>
              </ul>
            </div>
            <el-alert v-else-if="estimateError" :title="estimateError" type="info" :closable="false" />
          </el-card>
          <el-card v-if="filing.fee_relief" shadow="never" class="block relief">
            <template #header>司法救助申请</template>
            <p><el-tag type="warning">申请{{ RELIEF_NAMES[filing.fee_relief.type] }}</el-tag></p>
            <p>{{ filing.fee_relief.reason }}</p>
          </el-card>
          <el-card v-if="filing.correction && filing.status !== 'submitted'" shadow="never" class="block">
            <template #header>补正通知</template>
            <ol><li v-for="i in filing.correction.items" :key="i">{{ i }}</li></ol>
            <p class="muted">补正期限：{{ fmtDate(filing.correction.due_at) }}</p>
          </el-card>
          <el-card v-if="filing.status === 'submitted'" shadow="never" class="block decide">
            <template #header>审查决定</template>
            <el-alert v-if="failure" :title="failure" type="error" :closable="false" class="flash" data-test="decision-error" />
            <el-tabs v-model="tab">
              <el-tab-pane label="受理立案" name="accept">
                <el-form label-position="top" @submit.prevent="doAccept">
                  <el-form-item label="审理程序" :error="errors.procedure">
                    <el-radio-group v-model="accept.procedure">
                      <el-radio value="ordinary">普通程序</el-radio>
                      <el-radio value="simplified">简易程序（减半收费）</el-radio>
                    </el-radio-group>
                  </el-form-item>
                  <el-form-item label="收费类别" :error="errors.fee_kind">
                    <el-select v-model="accept.fee_kind" placeholder="按案件类型自动确定" clearable>
                      <el-option v-for="(name, key) in FEE_KIND_NAMES" :key="key" :label="name" :value="key" />
                    </el-select>
                  </el-form-item>
                  <template v-if="filing.fee_relief">
                    <el-form-item label="司法救助决定" :error="errors.fee_relief && !errors['fee_relief.amount_fen'] && !errors['fee_relief.due_date'] ? errors.fee_relief : ''">
                      <el-select v-model="accept.grant" placeholder="请选择" data-test="grant">
                        <el-option v-for="(name, key) in RELIEF_NAMES" :key="key" :label="name" :value="key" />
                      </el-select>
                    </el-form-item>
                    <el-form-item v-if="accept.grant === 'reduce'" label="减交后应交金额（元）" :error="errors['fee_relief.amount_fen']">
                      <el-input v-model="accept.amount" inputmode="decimal" />
                    </el-form-item>
                    <el-form-item v-if="accept.grant === 'defer'" label="缓交至" :error="errors['fee_relief.due_date']">
                      <el-date-picker v-model="accept.due_date" type="date" value-format="YYYY-MM-DD" />
                    </el-form-item>
                    <el-form-item label="决定理由" :error="errors['fee_relief.reason']">
                      <el-input v-model="accept.reason" />
                    </el-form-item>
                  </template>
                  <el-button type="primary" native-type="submit" :loading="busy" data-test="accept">受理立案</el-button>
                </el-form>
              </el-tab-pane>
              <el-tab-pane label="一次性补正" name="correct">
                <el-form label-position="top" @submit.prevent="doCorrection">
                  <el-form-item label="需补正的事项（一次性列明全部）" :error="errors.items">
                    <div v-for="(item, i) in correction.items" :key="i" class="item-row">
                      <el-input v-model="correction.items[i]" :placeholder="'补正事项 ' + (i + 1)"
                        :data-test="'item-' + i" />
                      <el-button v-if="correction.items.length > 1" @click="correction.items.splice(i, 1)"
                        :aria-label="'删除事项 ' + (i + 1)">删除</el-button>
                    </div>
                    <el-button text type="primary" @click="correction.items.push('')" data-test="add-item">+ 增加事项</el-button>
                  </el-form-item>
                  <el-form-item label="补正期限（日）" :error="errors.due_days">
                    <el-input-number v-model="correction.due_days" :min="1" :max="30" />
                  </el-form-item>
                  <el-button type="warning" native-type="submit" :loading="busy" data-test="send-correction">发送补正通知</el-button>
                </el-form>
              </el-tab-pane>
              <el-tab-pane label="不予受理" name="reject">
                <el-form label-position="top" @submit.prevent="doReject">
                  <el-form-item label="不予受理的理由" :error="errors.reason">
                    <el-input v-model="reject.reason" type="textarea" :rows="4" data-test="reject-reason" />
                  </el-form-item>
                  <el-button type="danger" native-type="submit" :loading="busy" data-test="reject">不予受理</el-button>
                </el-form>
              </el-tab-pane>
            </el-tabs>
          </el-card>
        </div>
      </div>
    </section>
    <section class="page" v-else v-loading="true" style="min-height: 200px"></section>`,
};
