// The one way the console talks to the API: JSON, the Bearer token, errors as ApiError with
// the API's Chinese message. A 401 on a signed-in call ends the session (expired or revoked).

import { store, signOut } from './store.js';
import { newIdempotencyKey } from './util.js';

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (status ? `请求失败（${status}）` : '网络连接失败，请检查网络后重试'));
    this.status = status;
    this.code = error.code || (status ? 'http_error' : 'network_error');
    this.details = error.details;
  }
}

/** Requests made, for the browser tests (path and query only). */
export const requestLog = [];
window.__consoleRequests = requestLog;

export async function api(method, path, body, { idempotent = false, signingIn = false } = {}) {
  const headers = {};
  if (store.token && !signingIn) headers.Authorization = `Bearer ${store.token}`;
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  if (idempotent) headers['Idempotency-Key'] = newIdempotencyKey();
  requestLog.push(`${method} ${path}`);
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError(0, null);
  }
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.status === 401 && headers.Authorization) {
    signOut('登录已失效（已过期或已在别处退出），请重新登录');
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body, opts) => api('POST', path, body === undefined ? {} : body, opts);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A file the caller may read, as a Blob (pdf.js reads its bytes; <img> an object URL). */
export async function fileBlob(fileId) {
  requestLog.push(`GET /files/${fileId}`);
  const res = await fetch(`/api/v1/files/${fileId}`, {
    headers: { Authorization: `Bearer ${store.token}` },
    cache: 'no-store',
  });
  if (res.status === 401) signOut('登录已失效，请重新登录');
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    throw new ApiError(res.status, data);
  }
  const type = (res.headers.get('Content-Type') || '').split(';')[0];
  const disposition = res.headers.get('Content-Disposition') || '';
  const m = disposition.match(/filename\*=UTF-8''([^;]+)/i);
  const name = m ? decodeURIComponent(m[1]) : fileId;
  const bytes = await res.arrayBuffer();
  return { blob: new Blob([bytes], { type }), type, name };
}

export async function upload(file, purpose = 'other') {
  const form = new FormData();
  form.append('file', file, file.name);
  form.append('purpose', purpose);
  return api('POST', '/files', form);
}
