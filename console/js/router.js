// A hash router (#/review/abc?x=1): no server routes beyond /console/, works from a file
// bookmark, and the back button moves between pages.

const { reactive } = Vue;

export const route = reactive({ path: '/', params: {}, query: {}, full: '/' });
const table = [];

export function defineRoutes(list) {
  for (const r of list) {
    const names = [];
    const re = new RegExp(
      '^' + r.path.replace(/:(\w+)/g, (_, n) => (names.push(n), '([^/]+)')) + '$',
    );
    table.push({ ...r, re, names });
  }
}

export function match(path) {
  for (const r of table) {
    const m = path.match(r.re);
    if (m) {
      const params = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
      return { record: r, params };
    }
  }
  return null;
}

function parse() {
  const full = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = full.split('?');
  route.path = path;
  route.full = full;
  route.query = Object.fromEntries(new URLSearchParams(qs || ''));
  const found = match(path);
  route.params = found ? found.params : {};
}

export function go(path) {
  if (location.hash === `#${path}`) parse();
  else location.hash = `#${path}`;
}

window.addEventListener('hashchange', parse);
parse();
