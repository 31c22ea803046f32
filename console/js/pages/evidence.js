// Evidence and documents viewed inside the page: the file is fetched with the Bearer token;
// a PDF is drawn by pdf.js on a canvas (PdfView), an image shown from a blob: URL; nothing
// opens elsewhere, and no browser plugin is needed.

import { fileBlob } from '../api.js';
import PdfView from './pdf-view.js';

const { ref, onUnmounted, watch } = Vue;

export default {
  components: { PdfView },
  props: { files: { type: Array, required: true }, labels: { type: Object, default: () => ({}) } },
  setup(props) {
    const selected = ref(null);
    const shown = ref(null); // {url, type, name}
    const loading = ref(false);
    const error = ref('');

    function release() {
      if (shown.value) URL.revokeObjectURL(shown.value.url);
      shown.value = null;
    }
    async function open(id) {
      selected.value = id;
      release();
      error.value = '';
      loading.value = true;
      try {
        const { blob, type, name } = await fileBlob(id);
        const data = type === 'application/pdf' ? await blob.arrayBuffer() : null;
        shown.value = { url: URL.createObjectURL(blob), type, name, data };
      } catch (e) {
        error.value = e.message;
      } finally {
        loading.value = false;
      }
    }
    watch(() => props.files, () => {
      release();
      selected.value = null;
    });
    onUnmounted(release);
    return { selected, shown, loading, error, open };
  },
  template: `
    <div class="evidence">
      <div class="evidence-list">
        <span v-if="!files.length" class="muted">未提交材料</span>
        <span v-else-if="!selected" class="muted">点击材料在页面内查看：</span>
        <el-button v-for="(id, i) in files" :key="id" :type="selected === id ? 'primary' : 'default'"
          size="small" @click="open(id)" :data-test="'evidence-' + i">
          {{ labels[id] || ('材料 ' + (i + 1)) }}
        </el-button>
      </div>
      <div v-if="selected" class="viewer" v-loading="loading">
        <el-alert v-if="error" :title="error" type="error" :closable="false" />
        <template v-else-if="shown">
          <div class="viewer-head">{{ shown.name }}
            <a :href="shown.url" :download="shown.name" class="viewer-dl">下载</a></div>
          <PdfView v-if="shown.type === 'application/pdf'" :key="shown.url" :data="shown.data" :name="shown.name" />
          <img v-else-if="shown.type.startsWith('image/')" :src="shown.url" :alt="shown.name"
            class="img-view" data-test="img-view" />
          <p v-else class="muted">该类型无法预览，请下载查看。</p>
        </template>
      </div>
    </div>`,
};
