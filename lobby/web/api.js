// The lobby's REST API (/api/v1): tokens kept per tab, one refresh on an expired
// access token, errors thrown as ApiError with the problem's stable `code`.

const PREFIX = "/api/v1";
const STORE = "tradearena.session";

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export const session = {
  load() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE) || "null");
    } catch {
      return null;
    }
  },
  save(pair) {
    const value = {
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
      user: pair.user,
    };
    sessionStorage.setItem(STORE, JSON.stringify(value));
    return value;
  },
  clear() {
    sessionStorage.removeItem(STORE);
  },
};

async function parse(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text };
  }
}

async function raw(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(PREFIX + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await parse(resp);
  if (!resp.ok) {
    const code = (data && data.code) || `http_${resp.status}`;
    const message = (data && (data.detail || data.title)) || resp.statusText;
    throw new ApiError(resp.status, code, message, data);
  }
  return data;
}

let refreshing = null;

export async function refresh() {
  const current = session.load();
  if (!current) throw new ApiError(401, "not_signed_in", "sign in first");
  refreshing ??= raw("POST", "/auth/refresh", { refresh_token: current.refresh_token })
    .then((pair) => session.save(pair))
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** An authenticated call; an expired access token is refreshed once. */
export async function call(method, path, body) {
  const current = session.load();
  try {
    return await raw(method, path, body, current?.access_token);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && current?.refresh_token) {
      const renewed = await refresh();
      return raw(method, path, body, renewed.access_token);
    }
    throw err;
  }
}

export async function register(username, password) {
  return session.save(await raw("POST", "/auth/register", { username, password }));
}

export async function login(username, password) {
  return session.save(await raw("POST", "/auth/login", { username, password }));
}

export async function logout() {
  const current = session.load();
  session.clear();
  if (current?.refresh_token) {
    try {
      await raw("POST", "/auth/logout", { refresh_token: current.refresh_token }, current.access_token);
    } catch {
      // already signed out locally
    }
  }
}

export async function openapi() {
  return raw("GET", "/openapi.json");
}
