// One work order: the thread, deadlines and escalations; answer (with attachments), close,
// and for supervisors reassignment.

import { api, upload } from '../api.js';
import { onFeed } from '../feed.js';
import { go, route } from '../router.js';
import { isSupervisor } from '../store.js';
import { fieldErrors, fmtTime } from '../util.js';
import { colleagues } from './colleagues.js';
import Evidence from './evidence.js';
import FilePick from './file-pick.js';

const { ref, reactive, computed, onMounted, onUnmounted } = Vue;

export default {
  components: { Evidence, FilePick },
  setup() {
    const id = computed(() => route.params.id);
    const order = ref(null);
    const loadError = ref('');
    const reply = reactive({ content: '', files: [] });
    const closeNote = ref('');
    const assignee = ref('');
    const staff = ref([]);
    const errors = ref({});
    const failure = ref('');
    const busy = ref(false);
    const fileInput = ref(null);
    const supervisor = isSupervisor();

    async function load() {
      try {
        order.value = await api('GET', `/messages/${id.value}`);
        loadError.value = '';
      } catch (e) {
        loadError.value = e.status === 404 ? '工单不存在或无权查看' : e.message;
      }
    }
    async function act(work, done) {
      errors.value = {};
      failure.value = '';
      busy.value = true;
      try {
        order.value = await work();
        ElementPlus.ElMessage.success(done);
        return true;
      } catch (e) {
        errors.value = fieldErrors(e);
        failure.value = e.message;
        return false;
      } finally {
        busy.value = false;
      }
    }
    async function sendReply() {
      const ok = await act(async () => {
        const attachments = [];
        for (const f of reply.files) attachments.push((await upload(f, 'other')).id);
        return api('POST', `/messages/${id.value}/replies`, { content: reply.content, attachments }, { idempotent: true });
      }, '答复已发送，当事人将收到通知');
      if (ok) {
        reply.content = '';
        reply.files = [];
        if (fileInput.value) fileInput.value.clear();
      }
    }
    const close = () => act(() => api('POST', `/workorders/${id.value}/close`,
      { note: closeNote.value || undefined }, { idempotent: true }), '工单已办结');
    const reassign = () => act(() => api('POST', `/workorders/${id.value}/assign`,
      { assignee_id: assignee.value }, { idempotent: true }), '已改派');
    function pick(files) {
      reply.files = files;
    }
    const off = onFeed((msg) => {
      if (msg.type === 'ready' || (msg.notification.data && msg.notification.data.workorder_id === id.value)) load();
    });
    onMounted(async () => {
      await load();
      if (supervisor) {
        try {
          staff.value = await colleagues();
        } catch {
          staff.value = [];
        }
      }
    });
    onUnmounted(off);
    return {
      order, loadError, reply, closeNote, assignee, staff, errors, failure, busy, fileInput,
      supervisor, sendReply, close, reassign, pick, go, fmtTime,
    };
  },
  template: `
    <section class="page" v-if="loadError">
      <el-result icon="warning" :title="loadError">
        <template #extra><el-button @click="go('/workorders')">返回工单</el-button></template>
      </el-result>
    </section>
    <section class="page" v-else-if="order">
      <div class="page-head">
        <h2>{{ order.no }} <el-tag data-test="wo-status">{{ order.status_name }}</el-tag>
          <el-tag v-if="order.overdue" type="danger" effect="dark">已超期</el-tag>
          <el-tag v-if="order.escalation_level" type="danger">{{ order.escalation_level === 1 ? '督办' : '庭长督办' }}</el-tag></h2>
        <el-button @click="go('/workorders')">返回</el-button>
      </div>
      <el-descriptions :column="3" border size="small" class="block">
        <el-descriptions-item label="类别">{{ order.category }}</el-descriptions-item>
        <el-descriptions-item label="来信人">{{ order.sender_name || '—' }}</el-descriptions-item>
        <el-descriptions-item label="案号"><a v-if="order.case_id" :href="'#/cases/' + order.case_id" class="link">{{ order.case_no }}</a><span v-else>—</span></el-descriptions-item>
        <el-descriptions-item label="承办人">{{ order.assignee ? order.assignee.name : '待分派' }}</el-descriptions-item>
        <el-descriptions-item label="首次答复期限">{{ fmtTime(order.first_reply_due_at) }}</el-descriptions-item>
        <el-descriptions-item label="办结期限">{{ fmtTime(order.close_due_at) }}</el-descriptions-item>
        <el-descriptions-item v-if="order.rating" label="回访评价">{{ order.rating.score }} 分 {{ order.rating.comment || '' }}</el-descriptions-item>
      </el-descriptions>
      <div class="cols">
        <div class="col-main">
          <h3>沟通记录</h3>
          <div class="thread block" data-test="thread">
            <div v-for="t in order.thread" :key="t.id" class="bubble" :class="t.side">
              <div class="meta">{{ t.side === 'court' ? ('法院 · ' + (t.name || '工作人员')) : ('来信人 · ' + (order.sender_name || '当事人')) }} · {{ fmtTime(t.at) }}</div>
              <div class="text">{{ t.content }}</div>
              <Evidence v-if="t.attachments.length" :files="t.attachments" />
            </div>
          </div>
          <el-card v-if="order.status !== 'closed'" shadow="never">
            <template #header>答复</template>
            <el-alert v-if="failure" :title="failure" type="error" :closable="false" class="flash" data-test="wo-error" />
            <el-form label-position="top" @submit.prevent="sendReply">
              <el-form-item label="答复内容" :error="errors.content">
                <el-input v-model="reply.content" type="textarea" :rows="4" maxlength="1000" show-word-limit data-test="reply-content" />
              </el-form-item>
              <el-form-item label="附件（PDF/图片，可多选）" :error="errors.attachments">
                <FilePick ref="fileInput" multiple accept="application/pdf,image/jpeg,image/png" test-id="reply-files" @pick="pick" />
              </el-form-item>
              <el-button type="primary" native-type="submit" :loading="busy" data-test="send-reply">发送答复</el-button>
            </el-form>
          </el-card>
        </div>
        <div class="col-side">
          <el-card v-if="order.status !== 'closed'" shadow="never" class="block">
            <template #header>办结</template>
            <el-input v-model="closeNote" placeholder="办结说明（选填）" class="block" />
            <el-button type="success" :disabled="!order.replied" :loading="busy" @click="close" data-test="close">办结工单</el-button>
            <p v-if="!order.replied" class="muted">答复后方可办结</p>
          </el-card>
          <el-card v-if="supervisor && order.status !== 'closed'" shadow="never" class="block">
            <template #header>分派 / 改派</template>
            <el-select v-model="assignee" placeholder="选择承办人" class="block" data-test="reassign-to">
              <el-option v-for="s in staff" :key="s.id" :label="s.name + '（' + (s.role === 'judge' ? '法官' : s.role === 'clerk' ? '书记员' : '管理员') + '）'" :value="s.id" />
            </el-select>
            <el-button :disabled="!assignee" :loading="busy" @click="reassign" data-test="reassign">确定</el-button>
          </el-card>
          <el-card v-if="order.escalations && order.escalations.length" shadow="never">
            <template #header>督办记录</template>
            <p v-for="e in order.escalations" :key="e.at">{{ fmtTime(e.at) }} {{ e.level === 1 ? '督办' : '庭长督办' }}</p>
          </el-card>
        </div>
      </div>
    </section>
    <section class="page" v-else v-loading="true" style="min-height: 200px"></section>`,
};
