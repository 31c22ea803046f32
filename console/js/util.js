// Formatting, error and paging helpers shared by every page. Times are shown in the court's time
// zone (Asia/Shanghai), money in yuan (the API speaks fen).

const TZ = 'Asia/Shanghai';
const dateTimeFmt = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hour12: false,
});
const dateFmt = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
});

export function fmtTime(iso) {
  return iso ? dateTimeFmt.format(new Date(iso)) : '—';
}

export function fmtDate(iso) {
  return iso ? dateFmt.format(new Date(iso)) : '—';
}

/** A calendar day (YYYY-MM-DD) in the court's time zone. */
export function courtDay(date = new Date()) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TZ }).format(date);
  return parts; // en-CA formats as YYYY-MM-DD
}

export function addDays(day, n) {
  const d = new Date(day + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function yuan(fen) {
  if (fen === null || fen === undefined) return '—';
  const sign = fen < 0 ? '-' : '';
  const abs = Math.abs(fen);
  const int = Math.floor(abs / 100).toLocaleString('zh-CN');
  return `${sign}${int}.${String(abs % 100).padStart(2, '0')} 元`;
}

/** Yuan typed by a person -> integer fen (null when empty or not a number). */
export function toFen(text) {
  if (text === null || text === undefined || String(text).trim() === '') return null;
  const m = String(text).trim().match(/^(\d+)(?:\.(\d{1,2}))?$/);
  if (!m) return NaN;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds % 3600) / 60);
  return h ? `${h} 小时 ${m} 分` : `${m} 分钟`;
}

export function percent(rate) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)}%`;
}

export const ROLE_NAMES = { clerk: '书记员/立案员', judge: '法官', admin: '管理员', litigant: '当事人', lawyer: '律师' };
export const GREEN_NAMES = {
  elderly: '老年人', disabled: '残疾人', migrant_wages: '农民工讨薪', military: '涉军',
  minor: '未成年人', enterprise: '涉企',
};
export const FEE_KIND_NAMES = {
  property: '财产案件', divorce: '离婚案件', personality_rights: '人格权案件',
  non_property: '其他非财产案件', ip_no_amount: '知识产权（无争议金额）', labor: '劳动争议',
  administrative: '行政案件', administrative_special: '商标、专利、海事行政案件',
  execution: '申请执行', preservation: '申请保全', payment_order: '申请支付令',
};
export const RELIEF_NAMES = { defer: '缓交', reduce: '减交', waive: '免交', deny: '不予准许' };
export const FILING_STATUS = {
  draft: '草稿', submitted: '待审查', correction_requested: '待补正', accepted: '已立案',
  rejected: '不予受理', withdrawn: '已撤回',
};
export const PROCEDURE_NAMES = { ordinary: '普通程序', simplified: '简易程序' };

// pydantic's error types -> what a clerk reads beside the field
const PYDANTIC_MESSAGES = {
  missing: '此项必填',
  string_too_short: '内容过短或为空',
  string_too_long: '内容过长',
  too_short: '至少填写一项',
  too_long: '条目过多',
  greater_than: '数值过小',
  greater_than_equal: '数值过小',
  less_than: '数值过大',
  less_than_equal: '数值过大',
  int_parsing: '请输入整数',
  int_type: '请输入整数',
  date_from_datetime_parsing: '日期格式有误',
  date_parsing: '日期格式有误',
  datetime_parsing: '时间格式有误',
  enum: '请选择有效的选项',
  string_pattern_mismatch: '格式不正确',
  extra_forbidden: '不允许的字段',
  value_error: '内容不符合要求',
  bool_type: '请选择是或否',
};

/**
 * Field errors of a 422 answer, keyed by the body path ("items", "fee_relief.amount_fen"):
 * every prefix of a location gets the message too, so a form item can show the errors of
 * its nested fields ("items.0" shows under "items").
 */
export function fieldErrors(err) {
  const out = {};
  const details = err && err.status === 422 && Array.isArray(err.details) ? err.details : [];
  for (const d of details) {
    if (!d || !Array.isArray(d.loc)) continue;
    // the API's own checks explain themselves in Chinese; pydantic's are translated by type
    const text = /[\u4e00-\u9fff]/.test(d.msg || '') ? d.msg : PYDANTIC_MESSAGES[d.type] || '内容有误';
    const loc = d.loc.filter((p) => p !== 'body');
    for (let i = loc.length; i >= 1; i -= 1) {
      const key = loc.slice(0, i).join('.');
      if (!out[key]) out[key] = text;
    }
    if (!loc.length && !out._) out._ = text;
  }
  return out;
}

export function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export const CASE_STATUS = {
  accepted: '已立案', assigned: '已分案', scheduled: '已排期', heard: '已开庭',
  judged: '已宣判', closed: '已结案', archived: '已归档',
};
export const NOTICE_STATUS = { pending: '待缴费', paid: '已缴费', waived: '已免交', cancelled: '已撤销' };
export const PAYMENT_STATUS = {
  pending: '待支付', paid: '已支付', closed: '已关闭', partially_refunded: '部分退款', refunded: '已全额退款',
};
export const REFUND_STATUS = { processing: '退款处理中', succeeded: '已退款', failed: '退款失败', abnormal: '退款异常（待处理）' };
export const REFUND_REASONS = {
  dismissed: '驳回起诉或不予受理，退还受理费',
  withdrawal: '撤诉，减半收取受理费',
  mediation: '调解结案，减半收取受理费',
  reduced_claim: '减少诉讼请求金额，退还差额',
  other: '其他（须填写金额）',
};
export const DOCUMENT_KINDS = ['受理通知书', '缴费通知书', '传票', '举证通知书', '诉讼权利义务告知书', '判决书', '裁定书', '调解书', '其他'];
export const PAPER_WAYS = ['直接送达', '邮寄送达', '留置送达', '委托送达', '公告送达'];
export const HEARING_KINDS = ['开庭', '调解', '询问', '宣判'];
export const WO_CATEGORIES = ['进度查询', '庭审安排', '证据材料', '缴费退费', '执行', '投诉', '其他'];
export const WO_STATUS = { pending: '待分派', assigned: '待答复', replied: '已答复', closed: '已办结' };

// One list read a page at a time by cursor: ``fetchPage(cursor)`` answers ``{items,
// next_cursor}``. ``cursors`` holds the cursor of each page seen so far (the last is the one
// shown), so going back needs no cursor from the server. ``onPage`` sees each page read;
// ``onError`` each failure (by default the message goes to ``error``).
export function usePages(fetchPage, { onPage = () => {}, onError = null } = {}) {
  const { ref } = Vue;
  const items = ref([]);
  const cursors = ref([null]);
  const next = ref(null);
  const loading = ref(false);
  const error = ref('');
  async function load() {
    loading.value = true;
    try {
      const page = await fetchPage(cursors.value[cursors.value.length - 1]);
      onPage(page);
      items.value = page.items;
      next.value = page.next_cursor;
      error.value = '';
    } catch (e) {
      if (onError) onError(e);
      else error.value = e.message;
    } finally {
      loading.value = false;
    }
  }
  return {
    items, cursors, next, loading, error, load,
    search() { cursors.value = [null]; return load(); },
    nextPage() { cursors.value = [...cursors.value, next.value]; return load(); },
    prevPage() { cursors.value = cursors.value.slice(0, -1); return load(); },
  };
}
