// The live feed (/api/v1/ws): every new notice of the signed-in user as it happens.
// It reconnects by itself with exponential backoff (0.5 s doubling to 30 s, jittered); each
// (re)connection says "ready", on which pages re-fetch what they show, so a notice pushed
// while the socket was down is caught up.

import { store, signOut } from './store.js';

const SESSION_ENDED = 4401;
const subscribers = new Set();
let socket = null;
let attempt = 0;
let retryTimer = null;
let wanted = false;

/** fn({type: 'ready'}) after each (re)connect, fn({type: 'notification', notification}). */
export function onFeed(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

function emit(message) {
  for (const fn of [...subscribers]) {
    try {
      fn(message);
    } catch (e) {
      console.error(e);
    }
  }
}

function connect() {
  if (!wanted || !store.token) return;
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  // Browsers cannot set headers on a WebSocket: the token goes in the query string, which
  // the server never logs.
  const url = `${proto}://${location.host}/api/v1/ws?token=${encodeURIComponent(store.token)}`;
  store.feed = 'connecting';
  const ws = new WebSocket(url);
  socket = ws;
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === 'ready') {
      attempt = 0;
      store.feed = 'online';
      store.unread = msg.unread;
      emit(msg);
    } else if (msg.type === 'notification') {
      store.unread += 1;
      alertUser(msg.notification);
      emit(msg);
    }
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;
    socket = null;
    store.feed = 'offline';
    if (event.code === SESSION_ENDED) {
      signOut('登录已失效（已过期或已在别处退出），请重新登录');
      return;
    }
    if (!wanted) return;
    const delay = Math.min(30000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    retryTimer = setTimeout(connect, delay);
  };
}

export function startFeed() {
  wanted = true;
  if (!socket) connect();
}

export function stopFeed() {
  wanted = false;
  clearTimeout(retryTimer);
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close(1000);
  }
  store.feed = 'offline';
}

/** Drop the connection as a network failure would (used by the tests and the retry button). */
export function reconnectNow() {
  attempt = 0;
  clearTimeout(retryTimer);
  if (socket) socket.close(4000);
  else connect();
}
window.__consoleFeed = { reconnectNow, get state() { return store.feed; } };

// ---- opt-in alerts: a short tone and a desktop notification

let audio = null;

function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  } catch {
    /* no audio device: the badge still counts */
  }
}

function alertUser(n) {
  if (store.sound) beep();
  if (store.desktop && 'Notification' in window && Notification.permission === 'granted') {
    try {
      new Notification(n.title, { body: n.body, tag: n.id });
    } catch {
      /* some platforms only allow notifications from a service worker */
    }
  }
}
