// The console's one door to the server: the documented /v1 API, with the
// operator's session cookie (sent by the browser, HttpOnly) and, on every
// state-changing request, the CSRF token the server gave with /v1/console/me.
// A script with an API key calls the very same routes.

let csrfToken = '';

export function setCsrfToken(token) {
  csrfToken = token || '';
}

/** A refused request: `status` and the problem JSON the server sent. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

/**
 * `api('/v1/sessions', { query: { status: 'waiting' } })`,
 * `api('/v1/reviews/x/decide', { method: 'POST', body: {...} })`.
 * Resolves to the parsed JSON (or text for non-JSON answers); a 401 sends
 * the operator to the login page; any other refusal throws ApiError.
 */
export async function api(path, { method = 'GET', body, query, signal } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken;
  const resp = await fetch(withQuery(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  });
  const type = resp.headers.get('content-type') || '';
  const data = type.includes('json') && !type.includes('jsonl')
    ? await resp.json().catch(() => null)
    : await resp.text();
  if (resp.status === 401) {
    location.assign(`/console/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}
