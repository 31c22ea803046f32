// A PDF drawn inside the page by pdf.js (vendored, loaded on first use): one page at a time on
// a canvas, with page navigation and zoom. No browser plugin is needed, so it works the same in
// every browser, headless ones included, and nothing leaves the page.

const { ref, computed, watch, onMounted, onUnmounted, nextTick } = Vue;

let pdfjsLoading = null;
function loadPdfjs() {
  if (!pdfjsLoading) {
    const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
    pdfjsLoading = import(meta('pdfjs-src')).then((lib) => {
      lib.GlobalWorkerOptions.workerSrc = meta('pdfjs-worker');
      return lib;
    });
    pdfjsLoading.catch(() => {
      pdfjsLoading = null; // a later attempt may succeed
    });
  }
  return pdfjsLoading;
}

const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];

export default {
  props: { data: { type: ArrayBuffer, required: true }, name: { type: String, default: '' } },
  setup(props) {
    const box = ref(null);
    const canvas = ref(null);
    const pages = ref(0);
    const page = ref(1);
    const zoom = ref(null); // null: fit the width of the viewer
    const scale = ref(1);
    const error = ref('');
    const loading = ref(true);
    // pdf.js objects stay outside Vue's reactivity (they hold private fields)
    let doc = null;
    let task = null;
    let closed = false;

    async function render() {
      if (!doc || closed) return;
      if (task) task.cancel();
      const p = await doc.getPage(page.value);
      const natural = p.getViewport({ scale: 1 });
      const width = box.value ? box.value.clientWidth - 32 : 800;
      scale.value = zoom.value || Math.max(0.5, Math.min(2, width / natural.width));
      const viewport = p.getViewport({ scale: scale.value });
      const ratio = window.devicePixelRatio || 1;
      const c = canvas.value;
      c.width = Math.floor(viewport.width * ratio);
      c.height = Math.floor(viewport.height * ratio);
      c.style.width = `${Math.floor(viewport.width)}px`;
      c.style.height = `${Math.floor(viewport.height)}px`;
      task = p.render({
        canvas: c,
        canvasContext: c.getContext('2d'),
        viewport,
        transform: ratio !== 1 ? [ratio, 0, 0, ratio, 0, 0] : null,
      });
      try {
        await task.promise;
      } catch (e) {
        if (e && e.name === 'RenderingCancelledException') return;
        throw e;
      }
      const text = await p.getTextContent();
      // what the browser tests read: the page on screen and its text
      window.__consolePdf = {
        name: props.name, numPages: doc.numPages, page: page.value, scale: scale.value,
        text: text.items.map((i) => i.str).join(' '),
      };
      c.dataset.renderedPage = String(page.value);
    }

    async function open() {
      loading.value = true;
      error.value = '';
      try {
        const lib = await loadPdfjs();
        // pdf.js takes the bytes over to its worker: give it a copy
        doc = await lib.getDocument({ data: new Uint8Array(props.data.slice(0)), isEvalSupported: false }).promise;
        if (closed) return;
        pages.value = doc.numPages;
        page.value = 1;
        loading.value = false;
        await nextTick();
        await render();
      } catch (e) {
        error.value = e && e.name === 'PasswordException' ? '该 PDF 已加密，请下载后查看' : '无法显示该 PDF，请下载后查看';
      } finally {
        loading.value = false;
      }
    }

    const zoomLabel = computed(() => `${Math.round(scale.value * 100)}%`);
    function step(n) {
      const next = page.value + n;
      if (next >= 1 && next <= pages.value) page.value = next;
    }
    function zoomBy(dir) {
      const now = scale.value;
      const found = dir > 0 ? ZOOMS.find((z) => z > now + 0.01) : [...ZOOMS].reverse().find((z) => z < now - 0.01);
      if (found) zoom.value = found;
    }
    watch([page, zoom], () => render().catch(() => { error.value = '该页无法显示'; }));
    onMounted(open);
    onUnmounted(() => {
      closed = true;
      if (task) task.cancel();
      if (doc) doc.destroy();
      doc = null;
    });
    return { box, canvas, pages, page, zoom, error, loading, zoomLabel, step, zoomBy };
  },
  template: `
    <div class="pdf-view" ref="box" data-test="pdf-view">
      <div class="pdf-tools" role="toolbar" aria-label="PDF 浏览">
        <el-button size="small" :disabled="page <= 1" @click="step(-1)" data-test="pdf-prev">上一页</el-button>
        <span class="pdf-page" aria-live="polite" data-test="pdf-page">第 {{ page }} / {{ pages || '…' }} 页</span>
        <el-button size="small" :disabled="page >= pages" @click="step(1)" data-test="pdf-next">下一页</el-button>
        <span class="pdf-sep"></span>
        <el-button size="small" @click="zoomBy(-1)" aria-label="缩小" data-test="pdf-zoom-out">缩小</el-button>
        <span class="pdf-zoom" data-test="pdf-zoom">{{ zoomLabel }}</span>
        <el-button size="small" @click="zoomBy(1)" aria-label="放大" data-test="pdf-zoom-in">放大</el-button>
        <el-button size="small" :type="zoom === null ? 'primary' : 'default'" plain @click="zoom = null">适合宽度</el-button>
      </div>
      <el-alert v-if="error" :title="error" type="error" :closable="false" />
      <div v-show="!error" class="pdf-stage" v-loading="loading">
        <canvas ref="canvas" class="pdf-canvas" data-test="pdf-canvas" role="img" :aria-label="name + ' 第 ' + page + ' 页'"></canvas>
      </div>
    </div>`,
};
