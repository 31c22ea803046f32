// One case for the court's staff: parties, judge and clerk, timeline, hearings, served
// documents with delivery and read times, fees; and the actions the API offers: assign,
// schedule / move / cancel hearings, serve a document, record paper service, milestones and
// early closing, refunds.

import { api, get, upload } from '../api.js';
import { onFeed } from '../feed.js';
import { go, route } from '../router.js';
import {
  fieldErrors, fmtTime, fmtDate, yuan, CASE_STATUS, PROCEDURE_NAMES, DOCUMENT_KINDS,
  PAPER_WAYS, HEARING_KINDS,
} from '../util.js';
import { colleagues } from './colleagues.js';
import CaseFees from './case-fees.js';
import Evidence from './evidence.js';
import FilePick from './file-pick.js';

const { ref, reactive, computed, onMounted, onUnmounted } = Vue;
const MILESTONES = ['庭审', '宣判', '结案', '归档'];
const HEARING_STATUS = { scheduled: '待开庭', cancelled: '已取消', held: '已开庭' };

/** A local court time picked in the form ("YYYY-MM-DDTHH:mm:ss") as ISO with +08:00. */
const courtTime = (value) => (value ? `${value}+08:00` : null);

export default {
  components: { CaseFees, Evidence, FilePick },
  setup() {
    const id = computed(() => route.params.id);
    const kase = ref(null);
    const loadError = ref('');
    const tab = ref('overview');
    const judges = ref([]);
    const clerks = ref([]);
    const dialog = ref(''); // which action form is open
    const errors = ref({});
    const failure = ref('');
    const busy = ref(false);
    const forms = reactive({
      assign: { judge_id: '', clerk_id: '', note: '' },
      hearing: { id: null, at: '', room: '', kind: '开庭', online: false, duration_minutes: 60 },
      cancel: { id: null, reason: '' },
      serve: { file: null, kind: '传票', title: '', recipients: [] },
      paper: { doc_id: null, party_id: '', way: '邮寄送达', delivered_at: '', note: '' },
      event: { kind: '庭审', note: '' },
    });
    const parties = computed(() => (kase.value
      ? [...kase.value.plaintiffs.map((p) => ({ ...p, group: '原告' })),
        ...kase.value.defendants.map((p) => ({ ...p, group: '被告' })),
        ...kase.value.third_parties.map((p) => ({ ...p, group: '第三人' }))]
      : []));

    async function load() {
      try {
        kase.value = await get(`/cases/${id.value}`);
        loadError.value = '';
      } catch (e) {
        loadError.value = e.status === 404 ? '案件不存在或不属于本院' : e.message;
      }
    }
    function open(name, preset = {}) {
      errors.value = {};
      failure.value = '';
      Object.assign(forms[name], preset);
      dialog.value = name;
    }
    async function act(work, done) {
      errors.value = {};
      failure.value = '';
      busy.value = true;
      try {
        await work();
        dialog.value = '';
        ElementPlus.ElMessage.success(done);
        await load();
      } catch (e) {
        errors.value = fieldErrors(e);
        failure.value = e.code === 'hearing_room_taken' ? `${e.message}：该法庭此时段已有安排，请换时间或法庭` : e.message;
      } finally {
        busy.value = false;
      }
    }
    const base = () => `/cases/${id.value}`;
    const assign = () => act(() => api('POST', `${base()}/assign`, {
      judge_id: forms.assign.judge_id || null, clerk_id: forms.assign.clerk_id || null,
      note: forms.assign.note || undefined,
    }, { idempotent: true }), '分案成功');
    const saveHearing = () => act(() => {
      const h = forms.hearing;
      if (h.id) {
        return api('PATCH', `${base()}/hearings/${h.id}`, {
          at: courtTime(h.at), room: h.room || undefined, duration_minutes: h.duration_minutes,
        });
      }
      return api('POST', `${base()}/hearings`, {
        at: courtTime(h.at), room: h.room, kind: h.kind, online: h.online,
        duration_minutes: h.duration_minutes,
      }, { idempotent: true });
    }, forms.hearing.id ? '庭审时间已变更，已通知当事人' : '已排期，已通知当事人');
    const cancelHearing = () => act(() => api('POST',
      `${base()}/hearings/${forms.cancel.id}/cancel`, { reason: forms.cancel.reason }), '庭审已取消');
    const serve = () => act(async () => {
      const f = forms.serve;
      if (!f.file) {
        const err = new Error('请选择要送达的 PDF 文件');
        err.status = 422;
        err.details = [{ loc: ['file_id'], type: 'missing' }];
        throw err;
      }
      const stored = await upload(f.file, 'other');
      return api('POST', `${base()}/documents`, {
        file_id: stored.id, kind: f.kind, title: f.title || undefined,
        recipients: f.recipients.length ? f.recipients : undefined,
      }, { idempotent: true });
    }, '文书已送达');
    const paper = () => act(() => api('POST',
      `${base()}/documents/${forms.paper.doc_id}/paper-service`, {
        party_id: forms.paper.party_id, way: forms.paper.way,
        delivered_at: courtTime(forms.paper.delivered_at), note: forms.paper.note || undefined,
      }, { idempotent: true }), '已记录纸质送达');
    const recordEvent = () => act(() => api('POST', `${base()}/events`, {
      kind: forms.event.kind, note: forms.event.note || undefined,
    }, { idempotent: true }), `已记录：${forms.event.kind}`);

    function pickFile(files) {
      forms.serve.file = files[0] || null;
    }
    const off = onFeed((msg) => {
      if (msg.type === 'ready' || (msg.notification.data && msg.notification.data.case_id === id.value)) load();
    });
    onMounted(async () => {
      await load();
      try {
        [judges.value, clerks.value] = await Promise.all([colleagues('judge'), colleagues('clerk')]);
      } catch {
        /* pickers stay empty; the API still checks */
      }
    });
    onUnmounted(off);
    return {
      kase, loadError, tab, judges, clerks, dialog, errors, failure, busy, forms, parties, open,
      assign, saveHearing, cancelHearing, serve, paper, recordEvent, pickFile, go, fmtTime, fmtDate,
      yuan, CASE_STATUS, PROCEDURE_NAMES, DOCUMENT_KINDS, PAPER_WAYS, HEARING_KINDS, MILESTONES,
      HEARING_STATUS,
    };
  },
  template: `
    <section class="page" v-if="loadError">
      <el-result icon="warning" :title="loadError">
        <template #extra><el-button @click="go('/cases')">返回案件列表</el-button></template>
      </el-result>
    </section>
    <section class="page" v-else-if="kase">
      <div class="page-head">
        <h2><span data-test="case-title">{{ kase.case_no }}</span> <el-tag>{{ kase.status_name }}</el-tag>
          <el-tag v-if="kase.fees.status === 'pending'" type="warning">待缴费</el-tag></h2>
        <div>
          <el-button type="primary" @click="open('assign', { judge_id: kase.judge ? kase.judge.id : '', clerk_id: kase.clerk ? kase.clerk.id : '' })" data-test="assign">分案</el-button>
          <el-button @click="open('hearing', { id: null, at: '', room: '' })" data-test="schedule">排期</el-button>
          <el-button @click="open('serve', { file: null, title: '', recipients: [] })" data-test="serve">送达文书</el-button>
          <el-button @click="open('event', { kind: '庭审', note: '' })">记录节点 / 结案</el-button>
          <el-button @click="go('/cases')">返回</el-button>
        </div>
      </div>
      <el-descriptions :column="3" border size="small" class="block">
        <el-descriptions-item label="案由">{{ kase.cause }}</el-descriptions-item>
        <el-descriptions-item label="审理程序">{{ PROCEDURE_NAMES[kase.procedure] }}</el-descriptions-item>
        <el-descriptions-item label="立案日期">{{ fmtDate(kase.accepted_at) }}</el-descriptions-item>
        <el-descriptions-item label="承办法官"><span data-test="judge">{{ kase.judge ? kase.judge.name : '未分案' }}</span></el-descriptions-item>
        <el-descriptions-item label="书记员">{{ kase.clerk ? kase.clerk.name : '—' }}</el-descriptions-item>
        <el-descriptions-item label="标的额">{{ yuan(kase.amount_fen) }}</el-descriptions-item>
      </el-descriptions>
      <el-tabs v-model="tab">
        <el-tab-pane label="概况与时间线" name="overview">
          <h3>当事人</h3>
          <el-table :data="parties" size="small" border class="block">
            <el-table-column prop="group" label="诉讼地位" width="90" />
            <el-table-column prop="name" label="姓名/名称" />
            <el-table-column label="证件号码"><template #default="{ row }">{{ row.id_number_masked || row.credit_code || '—' }}</template></el-table-column>
            <el-table-column prop="phone" label="电话" />
            <el-table-column prop="address" label="地址" min-width="160" />
          </el-table>
          <h3>时间线</h3>
          <el-timeline>
            <el-timeline-item v-for="(e, i) in [...kase.timeline].reverse()" :key="i" :timestamp="fmtTime(e.at)">
              <strong>{{ e.kind }}</strong><span v-if="e.note">：{{ e.note }}</span>
            </el-timeline-item>
          </el-timeline>
        </el-tab-pane>
        <el-tab-pane :label="'庭审 (' + kase.hearings.length + ')'" name="hearings">
          <el-table :data="kase.hearings" size="small" border empty-text="尚未排期" data-test="hearings">
            <el-table-column prop="kind" label="类型" width="70" />
            <el-table-column label="时间" width="230"><template #default="{ row }">{{ fmtTime(row.starts_at) }} – {{ fmtTime(row.ends_at).slice(-5) }}</template></el-table-column>
            <el-table-column prop="room" label="法庭" />
            <el-table-column label="方式" width="70"><template #default="{ row }">{{ row.online ? '在线' : '现场' }}</template></el-table-column>
            <el-table-column label="状态" min-width="200"><template #default="{ row }">{{ HEARING_STATUS[row.status] }}<div v-if="row.cancel_reason" class="muted">取消理由：{{ row.cancel_reason }}</div></template></el-table-column>
            <el-table-column label="操作" width="170">
              <template #default="{ row }">
                <template v-if="row.status === 'scheduled'">
                  <el-button size="small" @click="open('hearing', { id: row.id, at: '', room: row.room, duration_minutes: row.duration_minutes })" :data-test="'move-' + row.id">改期</el-button>
                  <el-button size="small" type="danger" plain @click="open('cancel', { id: row.id, reason: '' })" :data-test="'cancel-' + row.id">取消</el-button>
                </template>
              </template>
            </el-table-column>
          </el-table>
        </el-tab-pane>
        <el-tab-pane :label="'送达 (' + kase.documents.length + ')'" name="documents">
          <div v-for="d in kase.documents" :key="d.id" class="block doc-card">
            <div class="doc-head"><strong>{{ d.kind }}</strong> {{ d.title !== d.kind ? d.title : "" }} <span class="muted">{{ fmtTime(d.served_at) }} · {{ d.served_by }}</span></div>
            <el-table :data="d.recipients" size="small" border>
              <el-table-column prop="role" label="地位" width="70" />
              <el-table-column prop="name" label="受送达人" />
              <el-table-column label="方式" width="110"><template #default="{ row }">{{ row.method === 'electronic' ? '电子送达' : (row.paper_way || '待纸质送达') }}</template></el-table-column>
              <el-table-column label="送达时间" width="150"><template #default="{ row }">{{ fmtTime(row.delivered_at) }}</template></el-table-column>
              <el-table-column label="阅知时间" width="150"><template #default="{ row }"><span :data-test="'read-' + row.party_id">{{ row.read_at ? fmtTime(row.read_at) : '未阅' }}</span></template></el-table-column>
              <el-table-column label="操作" width="110">
                <template #default="{ row }">
                  <el-button v-if="!row.delivered_at" size="small" @click="open('paper', { doc_id: d.id, party_id: row.party_id, delivered_at: '', note: '' })" :data-test="'paper-' + d.id + '-' + row.party_id">记录送达</el-button>
                </template>
              </el-table-column>
            </el-table>
          </div>
          <el-empty v-if="!kase.documents.length" description="尚未送达文书" />
        </el-tab-pane>
        <el-tab-pane label="诉讼费" name="fees">
          <CaseFees v-if="tab === 'fees'" :case-id="kase.id" :court-id="kase.court_id" />
        </el-tab-pane>
      </el-tabs>

      <el-dialog :model-value="dialog !== ''" @update:model-value="dialog = ''" width="520px"
        :title="({assign: '分案', hearing: forms.hearing.id ? '变更庭审时间' : '排期', cancel: '取消庭审', serve: '送达文书', paper: '记录纸质送达', event: '记录节点 / 结案'})[dialog]">
        <el-alert v-if="failure" :title="failure" type="error" :closable="false" class="flash" data-test="dialog-error" />
        <el-form v-if="dialog === 'assign'" label-position="top" @submit.prevent="assign">
          <el-form-item label="承办法官" :error="errors.judge_id">
            <el-select v-model="forms.assign.judge_id" placeholder="选择法官" data-test="pick-judge">
              <el-option v-for="j in judges" :key="j.id" :label="j.name" :value="j.id" />
            </el-select>
          </el-form-item>
          <el-form-item label="书记员" :error="errors.clerk_id">
            <el-select v-model="forms.assign.clerk_id" placeholder="选择书记员" data-test="pick-clerk">
              <el-option v-for="c in clerks" :key="c.id" :label="c.name" :value="c.id" />
            </el-select>
          </el-form-item>
          <el-form-item label="备注" :error="errors.note"><el-input v-model="forms.assign.note" /></el-form-item>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="submit-assign">确定分案</el-button>
        </el-form>
        <el-form v-if="dialog === 'hearing'" label-position="top" @submit.prevent="saveHearing">
          <el-form-item label="开始时间（北京时间，工作日开庭时段内）" :error="errors.at">
            <div data-test="hearing-at"><el-date-picker v-model="forms.hearing.at" type="datetime" value-format="YYYY-MM-DDTHH:mm:ss" format="YYYY-MM-DD HH:mm" /></div>
          </el-form-item>
          <el-form-item label="法庭" :error="errors.room"><el-input v-model="forms.hearing.room" placeholder="如：第三法庭" data-test="hearing-room" /></el-form-item>
          <el-form-item v-if="!forms.hearing.id" label="类型" :error="errors.kind">
            <el-radio-group v-model="forms.hearing.kind"><el-radio v-for="k in HEARING_KINDS" :key="k" :value="k">{{ k }}</el-radio></el-radio-group>
          </el-form-item>
          <el-form-item label="时长（分钟）" :error="errors.duration_minutes"><el-input-number v-model="forms.hearing.duration_minutes" :min="15" :max="480" :step="15" /></el-form-item>
          <el-form-item v-if="!forms.hearing.id"><el-checkbox v-model="forms.hearing.online">在线庭审</el-checkbox></el-form-item>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="submit-hearing">保存</el-button>
        </el-form>
        <el-form v-if="dialog === 'cancel'" label-position="top" @submit.prevent="cancelHearing">
          <el-form-item label="取消理由" :error="errors.reason"><el-input v-model="forms.cancel.reason" data-test="cancel-reason" /></el-form-item>
          <el-button type="danger" native-type="submit" :loading="busy" data-test="submit-cancel">取消庭审</el-button>
        </el-form>
        <el-form v-if="dialog === 'serve'" label-position="top" @submit.prevent="serve">
          <el-form-item label="文书（PDF）" :error="errors.file_id">
            <FilePick accept="application/pdf" test-id="serve-file" @pick="pickFile" />
          </el-form-item>
          <el-form-item label="文书种类" :error="errors.kind">
            <el-select v-model="forms.serve.kind"><el-option v-for="k in DOCUMENT_KINDS" :key="k" :label="k" :value="k" /></el-select>
          </el-form-item>
          <el-form-item label="标题" :error="errors.title"><el-input v-model="forms.serve.title" placeholder="默认为文书种类" /></el-form-item>
          <el-form-item label="受送达人（不选则送达全部当事人）" :error="errors.recipients">
            <el-checkbox-group v-model="forms.serve.recipients">
              <el-checkbox v-for="p in parties" :key="p.party_id" :value="p.party_id">{{ p.group }}·{{ p.name }}</el-checkbox>
            </el-checkbox-group>
          </el-form-item>
          <p class="muted">已同意电子送达的当事人即时送达至其账户；其余列入纸质送达。</p>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="submit-serve">送达</el-button>
        </el-form>
        <el-form v-if="dialog === 'paper'" label-position="top" @submit.prevent="paper">
          <el-form-item label="送达方式" :error="errors.way">
            <el-select v-model="forms.paper.way" data-test="paper-way"><el-option v-for="w in PAPER_WAYS" :key="w" :label="w" :value="w" /></el-select>
          </el-form-item>
          <el-form-item label="签收时间" :error="errors.delivered_at">
            <div data-test="paper-at"><el-date-picker v-model="forms.paper.delivered_at" type="datetime" value-format="YYYY-MM-DDTHH:mm:ss" format="YYYY-MM-DD HH:mm" /></div>
          </el-form-item>
          <el-form-item label="备注" :error="errors.note"><el-input v-model="forms.paper.note" data-test="paper-note" /></el-form-item>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="submit-paper">记录</el-button>
        </el-form>
        <el-form v-if="dialog === 'event'" label-position="top" @submit.prevent="recordEvent">
          <el-form-item label="节点" :error="errors.kind">
            <el-radio-group v-model="forms.event.kind">
              <el-radio v-for="k in MILESTONES" :key="k" :value="k">{{ k }}</el-radio>
              <el-radio value="撤诉结案">撤诉结案</el-radio>
              <el-radio value="调解结案">调解结案</el-radio>
            </el-radio-group>
          </el-form-item>
          <el-form-item label="说明" :error="errors.note"><el-input v-model="forms.event.note" /></el-form-item>
          <p v-if="forms.event.kind.endsWith('结案') && forms.event.kind.length > 2" class="muted">提前结案：未开的庭审将被取消；减半退费请在“诉讼费”中办理。</p>
          <el-button type="primary" native-type="submit" :loading="busy">确定</el-button>
        </el-form>
      </el-dialog>
    </section>
    <section class="page" v-else v-loading="true" style="min-height: 200px"></section>`,
};
