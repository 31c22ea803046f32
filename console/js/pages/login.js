// Sign-in with the staff account an administrator created (POST /auth/staff-login).

import { api } from '../api.js';
import { store, signIn } from '../store.js';
import { fieldErrors } from '../util.js';

const { ref, reactive, onMounted, nextTick } = Vue;

export default {
  setup() {
    const form = reactive({ username: '', password: '' });
    const errors = ref({});
    const failure = ref('');
    const busy = ref(false);
    const userInput = ref(null);

    async function submit() {
      errors.value = {};
      failure.value = '';
      if (!form.username) errors.value.username = '请输入用户名';
      if (!form.password) errors.value.password = '请输入密码';
      if (Object.keys(errors.value).length) return;
      busy.value = true;
      try {
        const out = await api('POST', '/auth/staff-login', { ...form }, { signingIn: true });
        if (!['clerk', 'judge', 'admin'].includes(out.user.role)) {
          failure.value = '该账号不是法院工作人员账号';
          return;
        }
        signIn(out);
      } catch (e) {
        errors.value = fieldErrors(e);
        failure.value = e.status === 401 ? '用户名或密码错误' : e.message;
      } finally {
        busy.value = false;
      }
    }
    onMounted(async () => {
      await nextTick();
      if (userInput.value) userInput.value.focus();
      performance.mark('login-ready');
    });
    return { form, errors, failure, busy, submit, store, userInput };
  },
  template: `
    <div class="login-page">
      <div class="login-card" role="main">
        <div class="login-head">
          <span class="emblem big" aria-hidden="true">法</span>
          <div>
            <h1>法院工作台</h1>
            <p>移动微法院 · 工作人员登录</p>
          </div>
        </div>
        <el-alert v-if="store.flash" :title="store.flash" type="warning" show-icon :closable="false"
          class="flash" data-test="flash" />
        <el-form label-position="top" @submit.prevent="submit" novalidate>
          <el-form-item label="用户名" :error="errors.username">
            <el-input ref="userInput" v-model="form.username" name="username" autocomplete="username"
              placeholder="请输入用户名" />
          </el-form-item>
          <el-form-item label="密码" :error="errors.password">
            <el-input v-model="form.password" name="password" type="password" show-password
              autocomplete="current-password" placeholder="请输入密码" />
          </el-form-item>
          <el-alert v-if="failure" :title="failure" type="error" :closable="false" class="flash"
            data-test="login-error" />
          <el-button type="primary" native-type="submit" :loading="busy" class="login-btn">登 录</el-button>
        </el-form>
        <p class="login-foot">仅限本院工作人员使用 · 账号由系统管理员创建</p>
      </div>
    </div>`,
};
