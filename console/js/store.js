// The signed-in session and what the shell shows (unread count, live-feed state).
// The session is kept in sessionStorage: it survives a reload, not the closing of the tab.

const { reactive } = Vue;
const KEY = 'microcourt.console.session';
const PREFS = 'microcourt.console.prefs';

function load(key, storage) {
  try {
    return JSON.parse(storage.getItem(key) || 'null');
  } catch {
    return null;
  }
}

const saved = load(KEY, sessionStorage) || {};
const prefs = load(PREFS, localStorage) || {};

export const store = reactive({
  token: saved.token || null,
  user: saved.user || null,
  expiresAt: saved.expiresAt || null,
  flash: '', // shown on the sign-in page (why the session ended)
  unread: 0,
  feed: 'offline', // offline | connecting | online
  courts: [],
  sound: Boolean(prefs.sound),
  desktop: Boolean(prefs.desktop),
});

let expiryTimer = null;
const listeners = new Set();

/** Call fn(signedIn) whenever someone signs in or out. */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function armExpiry() {
  clearTimeout(expiryTimer);
  if (!store.expiresAt) return;
  const ms = new Date(store.expiresAt).getTime() - Date.now();
  if (ms <= 0) {
    signOut('登录已过期，请重新登录');
  } else if (ms < 2 ** 31 - 1) {
    expiryTimer = setTimeout(() => signOut('登录已过期，请重新登录'), ms);
  }
}

export function signIn(tokenOut) {
  store.token = tokenOut.token;
  store.user = tokenOut.user;
  store.expiresAt = tokenOut.expires_at;
  store.flash = '';
  sessionStorage.setItem(
    KEY, JSON.stringify({ token: store.token, user: store.user, expiresAt: store.expiresAt }),
  );
  armExpiry();
  listeners.forEach((fn) => fn(true));
}

export function signOut(message = '') {
  const was = Boolean(store.token);
  store.token = null;
  store.user = null;
  store.expiresAt = null;
  store.unread = 0;
  store.flash = message;
  sessionStorage.removeItem(KEY);
  clearTimeout(expiryTimer);
  if (was) listeners.forEach((fn) => fn(false));
  if (location.hash !== '#/login') location.hash = '#/login';
}

export function savePrefs() {
  localStorage.setItem(PREFS, JSON.stringify({ sound: store.sound, desktop: store.desktop }));
}

export function courtName(courtId) {
  const c = store.courts.find((x) => x.id === courtId);
  return c ? c.name : courtId || '全部法院';
}

export function isSupervisor() {
  const u = store.user;
  return Boolean(u && (u.supervisor || u.division_head || u.role === 'admin'));
}

armExpiry();
