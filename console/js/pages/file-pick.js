// A file chooser in Chinese (the browser's own button speaks the browser's language):
// a real <input type=file>, visually hidden but focusable, inside a button-like label.

const { ref } = Vue;

export default {
  props: { accept: { type: String, default: '' }, multiple: Boolean, testId: { type: String, default: '' } },
  emits: ['pick'],
  setup(props, { emit, expose }) {
    const names = ref([]);
    const input = ref(null);
    function change(event) {
      const files = [...event.target.files];
      names.value = files.map((f) => f.name);
      emit('pick', files);
    }
    function clear() {
      names.value = [];
      if (input.value) input.value.value = '';
    }
    expose({ clear });
    return { names, input, change };
  },
  template: `
    <span class="file-pick">
      <label class="el-button el-button--default file-pick-btn">
        <input ref="input" type="file" :accept="accept" :multiple="multiple" @change="change"
          class="visually-hidden" :data-test="testId || null" />
        <span>选择文件</span>
      </label>
      <span class="muted">{{ names.length ? names.join('、') : '未选择文件' }}</span>
    </span>`,
};
