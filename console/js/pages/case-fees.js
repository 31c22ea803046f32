// A case's fee notices, payments and refunds; a refund for one of the law's reasons, with the
// amount computed (by the same fee schedule, through GET /fees/estimate) and shown before it
// is confirmed. The server computes it again and is the one that decides.

import { api, get, query } from '../api.js';
import {
  fieldErrors, fmtTime, fmtDate, yuan, toFen, FEE_KIND_NAMES, NOTICE_STATUS, PAYMENT_STATUS,
  REFUND_STATUS, REFUND_REASONS, RELIEF_NAMES,
} from '../util.js';

const { ref, reactive, watch, onMounted } = Vue;

async function feeOn(notice, amountFen, courtId) {
  const res = await get(`/fees/estimate${query({
    kind: notice.fee_kind, amount_fen: amountFen, procedure: notice.procedure, court_id: courtId,
  })}`);
  return res.fee_fen;
}

export default {
  props: { caseId: { type: String, required: true }, courtId: { type: String, required: true } },
  setup(props) {
    const fees = ref(null);
    const error = ref('');
    const open = ref(false);
    const form = reactive({ payment: null, reason: 'withdrawal', new_amount: '', amount: '', note: '' });
    const preview = ref(null);
    const previewError = ref('');
    const errors = ref({});
    const failure = ref('');
    const busy = ref(false);

    async function load() {
      try {
        fees.value = await get(`/cases/${props.caseId}/fees`);
      } catch (e) {
        error.value = e.message;
      }
    }
    function startRefund(payment) {
      Object.assign(form, { payment, reason: 'withdrawal', new_amount: '', amount: '', note: '' });
      errors.value = {};
      failure.value = '';
      open.value = true;
    }
    async function compute() {
      preview.value = null;
      previewError.value = '';
      const p = form.payment;
      if (!p) return;
      const held = p.amount_fen - p.refunded_fen;
      if (form.reason === 'dismissed') preview.value = held;
      else if (form.reason === 'withdrawal' || form.reason === 'mediation') preview.value = Math.floor(held / 2);
      else if (form.reason === 'other') {
        const fen = toFen(form.amount);
        preview.value = fen && !Number.isNaN(fen) ? fen : null;
      } else if (form.reason === 'reduced_claim') {
        const notice = fees.value.notices.find((n) => n.id === p.fee_notice_id);
        const fen = toFen(form.new_amount);
        if (!notice || notice.basis_amount_fen === null) {
          previewError.value = '本案没有争议金额，不适用减少诉讼请求退费';
        } else if (fen !== null && !Number.isNaN(fen)) {
          try {
            preview.value = (await feeOn(notice, notice.basis_amount_fen, props.courtId))
              - (await feeOn(notice, fen, props.courtId));
          } catch (e) {
            previewError.value = e.message;
          }
        }
      }
    }
    watch(() => [form.reason, form.new_amount, form.amount, form.payment], compute);

    async function submit() {
      const body = { reason: form.reason, note: form.note || undefined };
      if (form.reason === 'other') body.amount_fen = toFen(form.amount);
      if (form.reason === 'reduced_claim') body.new_amount_fen = toFen(form.new_amount);
      try {
        await ElementPlus.ElMessageBox.confirm(
          `退费原因：${REFUND_REASONS[form.reason]}\n退费金额：${preview.value === null ? '以系统计算为准' : yuan(preview.value)}\n退回原支付账户，确定办理？`,
          '确认退费', { confirmButtonText: '确定退费', cancelButtonText: '取消', type: 'warning' },
        );
      } catch {
        return;
      }
      busy.value = true;
      errors.value = {};
      failure.value = '';
      try {
        const refund = await api('POST', `/payments/${form.payment.payment_id}/refunds`, body, { idempotent: true });
        open.value = false;
        ElementPlus.ElMessage.success(`已提交退费 ${yuan(refund.amount_fen)}`);
        await load();
      } catch (e) {
        errors.value = fieldErrors(e);
        failure.value = e.message;
      } finally {
        busy.value = false;
      }
    }
    onMounted(load);
    return {
      fees, error, open, form, preview, previewError, errors, failure, busy, startRefund, submit,
      fmtTime, fmtDate, yuan, FEE_KIND_NAMES, NOTICE_STATUS, PAYMENT_STATUS, REFUND_STATUS,
      REFUND_REASONS, RELIEF_NAMES,
    };
  },
  template: `
    <div v-if="fees" data-test="fees">
      <h3>缴费通知</h3>
      <el-table :data="fees.notices" size="small" border empty-text="尚未发出缴费通知" class="block">
        <el-table-column label="收费类别"><template #default="{ row }">{{ FEE_KIND_NAMES[row.fee_kind] || row.fee_kind }}</template></el-table-column>
        <el-table-column label="应交"><template #default="{ row }">{{ yuan(row.amount_fen) }}<div v-if="row.full_fee_fen !== row.amount_fen" class="muted">全额 {{ yuan(row.full_fee_fen) }}</div></template></el-table-column>
        <el-table-column label="已交"><template #default="{ row }">{{ yuan(row.paid_fen) }}</template></el-table-column>
        <el-table-column label="司法救助" width="90"><template #default="{ row }">{{ row.relief ? RELIEF_NAMES[row.relief] : '—' }}</template></el-table-column>
        <el-table-column label="缴费期限" width="110"><template #default="{ row }">{{ fmtDate(row.due_at) }}</template></el-table-column>
        <el-table-column label="状态" width="110"><template #default="{ row }">
          <el-tag size="small" :type="row.status === 'paid' ? 'success' : (row.overdue ? 'danger' : 'warning')">{{ NOTICE_STATUS[row.status] || row.status }}</el-tag>
          <el-tag v-if="row.overdue" size="small" type="danger" effect="dark">逾期</el-tag>
        </template></el-table-column>
      </el-table>
      <h3>支付记录</h3>
      <el-table :data="fees.payments" size="small" border empty-text="暂无支付" class="block">
        <el-table-column label="金额"><template #default="{ row }">{{ yuan(row.amount_fen) }}</template></el-table-column>
        <el-table-column label="状态"><template #default="{ row }">{{ PAYMENT_STATUS[row.status] || row.status }}</template></el-table-column>
        <el-table-column label="支付时间"><template #default="{ row }">{{ fmtTime(row.paid_at) }}</template></el-table-column>
        <el-table-column label="已退"><template #default="{ row }">{{ yuan(row.refunded_fen) }}</template></el-table-column>
        <el-table-column label="操作" width="100"><template #default="{ row }">
          <el-button v-if="row.paid_at && row.refunded_fen < row.amount_fen" size="small" @click="startRefund(row)" data-test="refund">退费</el-button>
        </template></el-table-column>
      </el-table>
      <h3>退费记录</h3>
      <el-table :data="fees.refunds" size="small" border empty-text="暂无退费">
        <el-table-column label="金额"><template #default="{ row }">{{ yuan(row.amount_fen) }}</template></el-table-column>
        <el-table-column label="原因" min-width="200"><template #default="{ row }">{{ REFUND_REASONS[row.reason] }}</template></el-table-column>
        <el-table-column label="状态"><template #default="{ row }">{{ REFUND_STATUS[row.status] || row.status }}</template></el-table-column>
        <el-table-column label="申请时间"><template #default="{ row }">{{ fmtTime(row.created_at) }}</template></el-table-column>
      </el-table>
      <el-dialog v-model="open" title="办理退费" width="480px" append-to-body>
        <el-alert v-if="failure" :title="failure" type="error" :closable="false" class="flash" />
        <el-form label-position="top" @submit.prevent="submit">
          <el-form-item label="退费原因（《诉讼费用交纳办法》）" :error="errors.reason">
            <el-select v-model="form.reason" data-test="refund-reason">
              <el-option v-for="(name, key) in REFUND_REASONS" :key="key" :label="name" :value="key" />
            </el-select>
          </el-form-item>
          <el-form-item v-if="form.reason === 'reduced_claim'" label="变更后的诉讼请求金额（元）" :error="errors.new_amount_fen">
            <el-input v-model="form.new_amount" inputmode="decimal" />
          </el-form-item>
          <el-form-item v-if="form.reason === 'other'" label="退费金额（元）" :error="errors.amount_fen">
            <el-input v-model="form.amount" inputmode="decimal" />
          </el-form-item>
          <el-form-item label="说明" :error="errors.note"><el-input v-model="form.note" /></el-form-item>
          <div class="refund-preview">应退金额：<strong data-test="refund-preview">{{ preview === null ? '—' : yuan(preview) }}</strong>
            <div v-if="previewError" class="warn">{{ previewError }}</div></div>
          <el-button type="primary" native-type="submit" :loading="busy" data-test="submit-refund">办理退费</el-button>
        </el-form>
      </el-dialog>
    </div>
    <el-alert v-else-if="error" :title="error" type="error" :closable="false" />
    <div v-else v-loading="true" style="min-height: 120px"></div>`,
};
