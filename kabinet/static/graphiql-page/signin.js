/*
 * kabinet GraphiQL: the sign-in helper (window.kabinetSignIn).
 *
 * The bar above GraphiQL signs in with the public `login` mutation and keeps the access and refresh
 * tokens in sessionStorage (this tab only: they do not outlive it and other tabs do not see them).
 * page.js asks `authorization()` for the `Authorization: Bearer …` value of every operation (HTTP, and
 * the WebSocket's connection_init payload) and awaits `fresh()` before each one. The access token is
 * exchanged with `refreshToken` before accessTokenExpiresAt (a timer, and `fresh()` when a timer came
 * late: a background tab's timers are throttled); listeners (`onChange`) hear of every new token, so
 * the socket reconnects with it. "Sign out" sends `logout`, which ends the login on the server.
 *
 * A refresh token works once and reusing one revokes the login: one refresh runs at a time. A tab
 * duplicated by the browser copies sessionStorage, so the two tabs share a refresh token; the first to
 * refresh wins and the other is told to sign in again.
 */
(function () {
  "use strict";

  var STORAGE_KEY = "kabinet.graphiql.signIn";
  var HTTP_URL = location.protocol + "//" + location.host + "/graphql";
  var MIN_LEAD_MS = 5 * 1000; // refresh at least this long before the access token expires
  var MAX_LEAD_MS = 60 * 1000; // and at most this long (a fifth of its life in between)
  var RETRY_MS = 10 * 1000; // a refresh that failed on the network is tried again

  // The three operations, each one string literal: tests/test_graphiql_signin.py reads them from here,
  // validates them against the served schema and runs them.
  var LOGIN =
    "mutation GraphiQLSignIn($input: LoginInput!) { login(input: $input) { accessToken accessTokenExpiresAt refreshToken mustChangePassword user { fullName email phone memberships { role organization { id name } } } userErrors { code message } } }";
  var REFRESH =
    "mutation GraphiQLRefresh($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { accessToken accessTokenExpiresAt refreshToken mustChangePassword user { fullName email phone memberships { role organization { id name } } } userErrors { code message } } }";
  var LOGOUT =
    "mutation GraphiQLSignOut($refreshToken: String!) { logout(refreshToken: $refreshToken) { ok userErrors { code message } } }";

  var session = load();
  var listeners = [];
  var refreshing = null; // the one refresh in flight (a Promise)
  var timer = null;

  // ------------------------------------------------------------------------------ the stored session

  function load() {
    try {
      var value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      return value && value.accessToken && value.refreshToken ? value : null;
    } catch (e) {
      return null;
    }
  }

  function save(value) {
    session = value;
    try {
      if (value) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
      else sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      /* storage refused (private mode): the session lives in this page only */
    }
    schedule();
    render();
    listeners.slice().forEach(function (listener) {
      try {
        listener(session);
      } catch (e) {
        console.error(e);
      }
    });
  }

  function fromPayload(payload, previous) {
    var expiresAt = Date.parse(payload.accessTokenExpiresAt);
    var now = Date.now();
    var life = isNaN(expiresAt) ? 15 * 60 * 1000 : Math.max(0, expiresAt - now);
    return {
      accessToken: payload.accessToken,
      refreshToken: payload.refreshToken,
      expiresAt: isNaN(expiresAt) ? now + life : expiresAt,
      leadMs: Math.min(MAX_LEAD_MS, Math.max(MIN_LEAD_MS, life / 5)),
      mustChangePassword: Boolean(payload.mustChangePassword),
      user: payload.user || (previous && previous.user) || null,
    };
  }

  function refreshDueAt() {
    return session ? session.expiresAt - session.leadMs : Infinity;
  }

  // ------------------------------------------------------------------------------ talking to /graphql

  function post(query, variables, operationName) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    return fetch(HTTP_URL, {
      method: "POST",
      headers: headers,
      credentials: "same-origin",
      body: JSON.stringify({ query: query, variables: variables, operationName: operationName }),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (body.errors && body.errors.length) {
          var error = new Error(body.errors[0].message || "GraphQL error");
          error.code = (body.errors[0].extensions || {}).code;
          throw error;
        }
        return body.data;
      });
    });
  }

  function userError(payload) {
    var errors = (payload && payload.userErrors) || [];
    if (!errors.length) return null;
    var error = new Error(errors[0].message || errors[0].code);
    error.code = errors[0].code;
    error.refused = true;
    return error;
  }

  // --------------------------------------------------------------------------------------- actions

  function signIn(login, password) {
    return post(LOGIN, { input: { login: login, password: password } }, "GraphiQLSignIn").then(function (data) {
      var payload = data.login;
      var refused = userError(payload);
      if (refused) throw refused;
      if (!payload.accessToken) throw new Error("The login answered without a token.");
      save(fromPayload(payload, null));
      return session;
    });
  }

  // Exchange the refresh token for new tokens; one exchange at a time.
  function refresh() {
    if (!session) return Promise.resolve(null);
    if (refreshing) return refreshing;
    var used = session.refreshToken;
    refreshing = post(REFRESH, { refreshToken: used }, "GraphiQLRefresh")
      .then(function (data) {
        var payload = data.refreshToken;
        var refused = userError(payload);
        if (refused || !payload.accessToken) {
          // the login has ended (signed out elsewhere, expired, or this refresh token was used already)
          if (session && session.refreshToken === used) save(null);
          showStatus("Сессия закончилась, войдите снова. / The sign-in has ended: sign in again.", true);
          return null;
        }
        save(fromPayload(payload, session));
        return session;
      })
      .catch(function (error) {
        // the network or the server failed: keep the tokens and try again soon
        showStatus("Не удалось обновить токен / Token refresh failed: " + error.message, true);
        clearTimeout(timer);
        timer = setTimeout(refreshIfDue, RETRY_MS);
        return session;
      })
      .then(function (value) {
        refreshing = null;
        return value;
      });
    return refreshing;
  }

  function refreshIfDue() {
    if (session && Date.now() >= refreshDueAt()) return refresh();
    schedule();
    return Promise.resolve(session);
  }

  function signOut() {
    var ending = session;
    if (!ending) return Promise.resolve();
    return post(LOGOUT, { refreshToken: ending.refreshToken }, "GraphiQLSignOut")
      .catch(function (error) {
        showStatus("Выход на сервере не удался / Sign-out failed on the server: " + error.message, true);
      })
      .then(function () {
        save(null);
      });
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!session) return;
    // setTimeout holds at most ~24.8 days; a token is refreshed long before that
    var wait = Math.min(Math.max(0, refreshDueAt() - Date.now()), 2147483647);
    timer = setTimeout(refreshIfDue, wait);
  }

  // ------------------------------------------------------------------------------------ the bar

  var elements = {};

  function $(id) {
    return document.getElementById(id);
  }

  function showStatus(text, isError) {
    var status = elements.status;
    if (!status) return;
    status.textContent = text || "";
    status.classList.toggle("kabinet-error", Boolean(isError));
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function render() {
    if (!elements.form) return;
    elements.form.hidden = Boolean(session);
    elements.signedIn.hidden = !session;
    if (session) {
      var user = session.user || {};
      elements.who.textContent = user.fullName
        ? user.fullName + (user.email || user.phone ? " <" + (user.email || user.phone) + ">" : "")
        : "—";
      var at = new Date(session.expiresAt);
      elements.expiry.textContent =
        "токен до / token until " + pad(at.getHours()) + ":" + pad(at.getMinutes()) + ":" + pad(at.getSeconds()) +
        (session.mustChangePassword ? " · сначала смените пароль (changePassword) / change the password first" : "");
    }
  }

  function bind() {
    elements = {
      form: $("kabinet-signin"),
      login: $("kabinet-login"),
      password: $("kabinet-password"),
      submit: $("kabinet-submit"),
      signedIn: $("kabinet-signed-in"),
      who: $("kabinet-who"),
      expiry: $("kabinet-expiry"),
      signOut: $("kabinet-signout"),
      status: $("kabinet-status"),
    };
    if (!elements.form) return;
    elements.submit.disabled = false;
    elements.form.addEventListener("submit", function (event) {
      event.preventDefault();
      elements.submit.disabled = true;
      showStatus("Вход… / Signing in…", false);
      signIn(elements.login.value.trim(), elements.password.value)
        .then(function () {
          elements.password.value = "";
          showStatus("", false);
        })
        .catch(function (error) {
          showStatus((error.code ? error.code + ": " : "") + error.message, true);
        })
        .then(function () {
          elements.submit.disabled = false;
        });
    });
    elements.signOut.addEventListener("click", function () {
      elements.signOut.disabled = true;
      signOut().then(function () {
        elements.signOut.disabled = false;
        showStatus("Вы вышли / Signed out", false);
      });
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") refreshIfDue();
    });
    render();
  }

  // ------------------------------------------------------------------------------------ public face

  window.kabinetSignIn = {
    /** "Bearer <access token>" of the signed-in user, or null. */
    authorization: function () {
      return session ? "Bearer " + session.accessToken : null;
    },
    /** Resolves once the access token (if any) is good for a while: refreshes first when due. */
    fresh: function () {
      return refreshIfDue().catch(function () {
        return session;
      });
    },
    /** The signed-in session ({user, expiresAt, …}) or null. */
    session: function () {
      return session;
    },
    /** listener(session or null) after every sign-in, refresh and sign-out. */
    onChange: function (listener) {
      listeners.push(listener);
    },
    signIn: signIn,
    signOut: signOut,
    refresh: refresh,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", bind);
  else bind();
  if (session) refreshIfDue();
})();
