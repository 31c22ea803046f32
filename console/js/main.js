// The console's shell: sign-in, the navigation of each role, the inbox with its unread
// badge, the live-feed indicator, and the page of the current route.

import { api, get, query } from './api.js';
import { startFeed, stopFeed, reconnectNow } from './feed.js';
import { defineRoutes, go, match, route } from './router.js';
import { store, signOut, onSessionChange, savePrefs, courtName, isSupervisor } from './store.js';
import { fmtTime, ROLE_NAMES } from './util.js';
import LoginPage from './pages/login.js';
import ReviewQueue from './pages/review-queue.js';
import FilingDetail from './pages/filing-detail.js';
import CaseList from './pages/cases.js';
import CaseDetail from './pages/case-detail.js';
import WorkOrders from './pages/workorders.js';
import WorkOrderDetail from './pages/workorder-detail.js';
import StatsPage from './pages/stats.js';
import { StaffAdmin, LawyerQueue, Reconcile } from './pages/admin.js';

const { createApp, computed, ref, watch, onMounted } = Vue;

const STAFF = ['clerk', 'judge', 'admin'];
defineRoutes([
  { path: '/login', component: LoginPage, public: true },
  { path: '/review', component: ReviewQueue, roles: ['clerk', 'admin'], court: true },
  { path: '/review/:id', component: FilingDetail, roles: ['clerk', 'admin'], court: true },
  { path: '/cases', component: CaseList, roles: STAFF, court: true },
  { path: '/cases/:id', component: CaseDetail, roles: STAFF, court: true },
  { path: '/workorders', component: WorkOrders, roles: STAFF },
  { path: '/workorders/:id', component: WorkOrderDetail, roles: STAFF },
  { path: '/stats', component: StatsPage, roles: STAFF },
  { path: '/admin/staff', component: StaffAdmin, roles: ['admin'] },
  { path: '/admin/lawyers', component: LawyerQueue, roles: ['admin'] },
  { path: '/admin/reconcile', component: Reconcile, roles: ['admin'], system: true },
]);

function navFor(user) {
  if (!user) return [];
  const items = [];
  const court = Boolean(user.court_id);
  if (court && (user.role === 'clerk' || user.role === 'admin')) {
    items.push({ path: '/review', label: '立案审查' });
  }
  if (court) items.push({ path: '/cases', label: '案件管理' });
  items.push({ path: '/workorders', label: isSupervisor() ? '工单看板' : '我的工单' });
  items.push({ path: '/stats', label: '工单统计' });
  if (user.role === 'admin') {
    items.push({ path: '/admin/staff', label: '人员管理' });
    items.push({ path: '/admin/lawyers', label: '律师审核' });
    if (!court) items.push({ path: '/admin/reconcile', label: '支付对账' });
  }
  return items;
}

function homeFor(user) {
  if (!user) return '/login';
  if (user.role === 'clerk' && user.court_id) return '/review';
  if (user.role === 'judge') return '/cases';
  if (user.role === 'admin') return '/admin/staff';
  return '/workorders';
}

function allowed(record, user) {
  if (record.public) return true;
  if (!user || !STAFF.includes(user.role)) return false;
  if (record.roles && !record.roles.includes(user.role)) return false;
  if (record.court && !user.court_id) return false;
  if (record.system && user.court_id) return false;
  return true;
}

const NOTICE_LINKS = [
  ['filing_id', (d) => `/review/${d.filing_id}`],
  ['workorder_id', (d) => `/workorders/${d.workorder_id}`],
  ['case_id', (d) => `/cases/${d.case_id}`],
];

const Inbox = {
  props: { open: Boolean },
  emits: ['update:open'],
  setup(props, { emit }) {
    const items = ref([]);
    const loading = ref(false);
    const next = ref(null);
    async function load(more = false) {
      loading.value = true;
      try {
        const page = await get(`/notifications${query({ limit: 20, cursor: more ? next.value : null })}`);
        items.value = more ? [...items.value, ...page.items] : page.items;
        next.value = page.next_cursor;
        store.unread = page.unread;
      } finally {
        loading.value = false;
      }
    }
    watch(() => props.open, (v) => v && load());
    async function openNotice(n) {
      if (!n.read) {
        await api('POST', `/notifications/${n.id}/read`);
        n.read = true;
        store.unread = Math.max(0, store.unread - 1);
      }
      const link = NOTICE_LINKS.find(([key]) => n.data && n.data[key]);
      if (link) {
        emit('update:open', false);
        go(link[1](n.data));
      }
    }
    return { items, loading, next, load, openNotice, fmtTime };
  },
  template: `
    <el-drawer :model-value="open" @update:model-value="$emit('update:open', $event)"
      title="消息通知" size="420px" direction="rtl">
      <div v-loading="loading" class="inbox">
        <el-empty v-if="!items.length && !loading" description="暂无消息" />
        <button v-for="n in items" :key="n.id" type="button" class="inbox-item"
          :class="{ unread: !n.read }" @click="openNotice(n)">
          <span class="inbox-title"><span v-if="!n.read" class="dot" aria-label="未读"></span>{{ n.title }}</span>
          <span class="inbox-body">{{ n.body }}</span>
          <span class="inbox-time">{{ fmtTime(n.created_at) }}</span>
        </button>
        <el-button v-if="next" text @click="load(true)">加载更多</el-button>
      </div>
    </el-drawer>`,
};

const App = {
  components: { LoginPage, Inbox },
  setup() {
    const inboxOpen = ref(false);
    const current = computed(() => {
      const found = match(route.path);
      return found ? found.record : null;
    });
    const nav = computed(() => navFor(store.user));
    const feedLabel = computed(
      () => ({ online: '实时推送已连接', connecting: '正在连接…', offline: '实时推送已断开，正在重连' })[store.feed],
    );

    function guard() {
      const rec = current.value;
      if (!store.token) {
        if (route.path !== '/login') go('/login');
        return;
      }
      if (!rec || route.path === '/login' || !allowed(rec, store.user)) go(homeFor(store.user));
    }
    watch(() => [route.path, store.token], guard, { immediate: true });

    async function logout() {
      try {
        await api('POST', '/auth/logout');
      } catch {
        /* the token is forgotten here either way */
      }
      stopFeed();
      signOut('您已安全退出');
    }

    async function toggleDesktop(on) {
      if (on && 'Notification' in window && Notification.permission !== 'granted') {
        const result = await Notification.requestPermission();
        if (result !== 'granted') {
          ElementPlus.ElMessage.warning('浏览器未允许桌面通知');
          store.desktop = false;
          savePrefs();
          return;
        }
      }
      store.desktop = on;
      savePrefs();
    }
    function toggleSound(on) {
      store.sound = on;
      savePrefs();
    }

    onMounted(() => {
      performance.mark('console-mounted');
      window.__consoleMounted = true;
    });

    return {
      store, route, current, nav, inboxOpen, feedLabel, logout, toggleDesktop, toggleSound,
      reconnectNow, courtName, ROLE_NAMES,
    };
  },
  template: `
    <LoginPage v-if="!store.token" />
    <el-container v-else class="shell">
      <el-header class="topbar" height="56px">
        <div class="brand">
          <span class="emblem" aria-hidden="true">法</span>
          <span class="brand-name">法院工作台</span>
          <span class="court-name">{{ courtName(store.user.court_id) }}</span>
        </div>
        <div class="top-actions">
          <button type="button" class="feed-state" :class="store.feed" :title="feedLabel"
            @click="reconnectNow" :aria-label="feedLabel">
            <span class="dot"></span>{{ store.feed === 'online' ? '实时' : '离线' }}
          </button>
          <el-popover trigger="click" width="220" placement="bottom-end">
            <template #reference>
              <el-button text class="top-btn" aria-label="提醒设置">提醒设置</el-button>
            </template>
            <div class="prefs">
              <el-checkbox :model-value="store.sound" @change="toggleSound">新消息提示音</el-checkbox>
              <el-checkbox :model-value="store.desktop" @change="toggleDesktop">桌面通知</el-checkbox>
            </div>
          </el-popover>
          <el-badge :value="store.unread" :hidden="!store.unread" :max="99" class="bell">
            <el-button text class="top-btn" data-test="inbox" @click="inboxOpen = true"
              :aria-label="'消息通知，未读 ' + store.unread + ' 条'">消息</el-button>
          </el-badge>
          <span class="who">{{ store.user.name || store.user.username }} · {{ ROLE_NAMES[store.user.role] }}<span v-if="store.user.supervisor"> · 督办</span></span>
          <el-button text class="top-btn" data-test="logout" @click="logout">退出</el-button>
        </div>
      </el-header>
      <el-container>
        <el-aside width="188px" class="side">
          <nav aria-label="主菜单">
            <a v-for="item in nav" :key="item.path" :href="'#' + item.path" class="nav-link"
              :class="{ active: route.path === item.path || route.path.startsWith(item.path + '/') }">
              {{ item.label }}
            </a>
          </nav>
        </el-aside>
        <el-main class="main">
          <component v-if="current && !current.public" :is="current.component" :key="route.full" />
        </el-main>
      </el-container>
      <Inbox v-model:open="inboxOpen" />
    </el-container>`,
};

async function boot() {
  const app = createApp(App);
  app.use(ElementPlus, { locale: ElementPlusLocaleZhCn });
  app.mount('#app');
  onSessionChange((signedIn) => (signedIn ? startFeed() : stopFeed()));
  if (store.token) startFeed();
  try {
    store.courts = (await get('/courts')).items;
  } catch {
    /* names fall back to ids */
  }
}

boot();
