// The page's only door to kabinet: the public GraphQL API, over HTTP (POST /graphql) and over the
// WebSocket on /graphql (graphql-transport-ws, the vendored graphql-ws client) — what any client uses.
//
// Tokens: the access token lives in memory only; the refresh token in sessionStorage (this tab,
// gone when it closes), so a reload keeps you signed in. The access token is refreshed a minute
// before it expires (refreshToken rotates the refresh token: one refresh at a time).

const HTTP_URL = "/graphql";
const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
const REFRESH_KEY = "kabinet.front.refreshToken";
const AUTH = "accessToken refreshToken accessTokenExpiresAt user { id fullName email } userErrors { code message field }";

let access = null;
let expiresAt = 0;
let timer = null;
let refreshing = null;
let ws = null;
let signedOut = () => {};

export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code;
  }
}

export function onSignedOut(callback) {
  signedOut = callback;
}

async function post(query, variables, token) {
  const headers = { "Content-Type": "application/json", Accept: "application/graphql-response+json, application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(HTTP_URL, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  try {
    return await response.json();
  } catch {
    throw new ApiError([{ message: `Сервер ответил ${response.status}` }]);
  }
}

const unauthenticated = (body) => (body.errors || []).some((e) => e.extensions?.code === "UNAUTHENTICATED");

// A query or mutation as the signed-in user: {data, errors}. data may be partial: a field the role may
// not see is a FORBIDDEN error on that field alone (errors[].path says which).
export async function request(query, variables = {}) {
  await fresh();
  let body = await post(query, variables, access);
  if (unauthenticated(body) && (await refresh())) body = await post(query, variables, access);
  if (unauthenticated(body)) forget(true);
  if (!body.data) throw new ApiError(body.errors || [{ message: "Пустой ответ сервера" }]);
  return body;
}

function keep(payload) {
  access = payload.accessToken;
  expiresAt = Date.parse(payload.accessTokenExpiresAt);
  sessionStorage.setItem(REFRESH_KEY, payload.refreshToken);
  clearTimeout(timer);
  const left = expiresAt - Date.now();
  timer = setTimeout(refresh, Math.max(1000, left - Math.min(60_000, left / 2)));
}

function forget(tell) {
  access = null;
  expiresAt = 0;
  clearTimeout(timer);
  sessionStorage.removeItem(REFRESH_KEY);
  if (ws) ws.dispose();
  ws = null;
  if (tell) signedOut();
}

async function fresh() {
  if (!access || expiresAt - Date.now() < 10_000) await refresh();
}

// Exchange the refresh token for new tokens; false when there is none or it no longer works.
export function refresh() {
  if (!refreshing) refreshing = exchange().finally(() => (refreshing = null));
  return refreshing;
}

async function exchange() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (!token) return false;
  const body = await post(`mutation FrontRefresh($token: String!) { refreshToken(refreshToken: $token) { ${AUTH} } }`, { token });
  const payload = body.data?.refreshToken;
  if (!payload?.accessToken) {
    forget(Boolean(access));
    return false;
  }
  keep(payload);
  return true;
}

// {user} on success, {userErrors} when the login or password is refused.
export async function signIn(login, password) {
  const body = await post(`mutation FrontLogin($input: LoginInput!) { login(input: $input) { ${AUTH} } }`, { input: { login, password } });
  const payload = body.data?.login;
  if (!payload) throw new ApiError(body.errors || [{ message: "Пустой ответ сервера" }]);
  if (payload.userErrors.length || !payload.accessToken) return { userErrors: payload.userErrors };
  keep(payload);
  return { user: payload.user };
}

export async function signOut() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (token) await post("mutation FrontLogout($token: String!) { logout(refreshToken: $token) { ok } }", { token }).catch(() => null);
  forget(true);
}

// A subscription over the WebSocket; returns the function that ends it. The socket sends the current
// access token when it (re)connects.
export function subscribe(query, variables, onData, onError) {
  if (!ws) {
    ws = window.graphqlWs.createClient({
      url: WS_URL,
      lazy: true,
      retryAttempts: 5,
      shouldRetry: () => Boolean(sessionStorage.getItem(REFRESH_KEY)),
      connectionParams: async () => {
        await fresh();
        return { authorization: `Bearer ${access}` };
      },
    });
  }
  return ws.subscribe(
    { query, variables },
    {
      next: (result) => (result.errors ? onError(new ApiError(result.errors)) : onData(result.data)),
      error: (error) => onError(Array.isArray(error) ? new ApiError(error) : new ApiError([{ message: closeMessage(error) }])),
      complete: () => {},
    },
  );
}

function closeMessage(error) {
  if (error && typeof error.code === "number") return `Соединение закрыто (${error.code}${error.reason ? ": " + error.reason : ""})`;
  return "Нет соединения с сервером";
}
