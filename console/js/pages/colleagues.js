// The staff of the caller's court (GET /colleagues), loaded once per page that needs them.

import { get, query } from '../api.js';

export async function colleagues(role) {
  const out = [];
  let cursor = null;
  do {
    const page = await get(`/colleagues${query({ role, limit: 100, cursor })}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < 1000);
  return out;
}
